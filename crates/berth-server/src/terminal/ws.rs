//! axum's WebSocket as the bridge's `Sink<Message>` and `Stream<Item = Result<Message, _>>`.
//! Sends are awaited one by one, so a client that does not read stalls the bridge's writer
//! (its back-pressure), and nothing is buffered here. WebSocket pings are answered by axum.

use std::future::ready;
use std::pin::Pin;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use berth_core::bridge::Message;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

/// The largest frame a client may send: a little above the bridge's largest input frame, so
/// that the bridge, not the WebSocket layer, refuses oversized input with its own message.
pub(crate) const MAX_CLIENT_MESSAGE: usize = 2 * 1024 * 1024 + 64 * 1024;

pub(crate) type WsSink = Pin<Box<dyn Sink<Message, Error = axum::Error> + Send>>;
pub(crate) type WsStream = Pin<Box<dyn Stream<Item = Result<Message, axum::Error>> + Send>>;

/// Splits `socket` into the bridge's halves.
pub(crate) fn adapt(socket: WebSocket) -> (WsSink, WsStream) {
    let (sink, stream) = socket.split();
    let sink = sink.with(|m: Message| ready(Ok::<_, axum::Error>(outgoing(m))));
    let stream = stream.filter_map(|m| {
        ready(match m {
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => None,
            Ok(m) => Some(Ok(incoming(m))),
            Err(err) => Some(Err(err)),
        })
    });
    (Box::pin(sink), Box::pin(stream))
}

fn outgoing(message: Message) -> WsMessage {
    match message {
        Message::Binary(bytes) => WsMessage::Binary(bytes),
        Message::Text(text) => WsMessage::Text(text.into()),
        Message::Close(code, reason) => WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
}

fn incoming(message: WsMessage) -> Message {
    match message {
        WsMessage::Binary(bytes) => Message::Binary(bytes),
        WsMessage::Text(text) => Message::Text(text.as_str().to_owned()),
        WsMessage::Close(Some(frame)) => {
            Message::Close(frame.code, frame.reason.as_str().to_owned())
        }
        // 1005: no status given; pings and pongs never get here.
        WsMessage::Close(None) | WsMessage::Ping(_) | WsMessage::Pong(_) => {
            Message::Close(1005, String::new())
        }
    }
}
