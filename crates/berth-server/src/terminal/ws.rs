//! axum's WebSocket as the bridge's `Sink<Message>` and `Stream<Item = Result<Message, _>>`.
//! Sends are awaited one by one, so a client that does not read stalls the bridge's writer
//! (its back-pressure), and nothing is buffered here. WebSocket pings are answered by axum.
//!
//! A frame the WebSocket layer refuses ends the stream with an error. For the two the RFC
//! names a close code for, the client is told so before the connection ends: a frame or
//! message whose header announces more than [`MAX_CLIENT_MESSAGE`] gets 1009 (refused from
//! the header, so the payload is never buffered), a text frame that is not UTF-8 gets 1007
//! ([`Refusal`]).

use std::future::ready;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use berth_core::bridge::{Message, close};
use futures_util::{Sink, SinkExt, Stream, StreamExt};

/// The largest frame a client may send: a little above the bridge's largest input frame, so
/// that the bridge, not the WebSocket layer, refuses oversized input with its own message.
pub(crate) const MAX_CLIENT_MESSAGE: usize = 2 * 1024 * 1024 + 64 * 1024;

pub(crate) type WsSink = Pin<Box<dyn Sink<Message, Error = axum::Error> + Send>>;
pub(crate) type WsStream = Pin<Box<dyn Stream<Item = Result<Message, axum::Error>> + Send>>;

/// Invalid frame payload data (RFC 6455, 7.4.1): a text frame that is not UTF-8.
pub(crate) const INVALID_PAYLOAD: u16 = 1007;

/// Splits `socket` into the bridge's halves, and the [`Refusal`] its stream may leave.
pub(crate) fn adapt(socket: WebSocket) -> (WsSink, WsStream, Refusal) {
    let (sink, stream) = socket.split();
    let refusal = Refusal::default();
    let seen = refusal.clone();
    let sink = sink.with(|m: Message| ready(Ok::<_, axum::Error>(outgoing(m))));
    let stream = stream.filter_map(move |m| {
        ready(match m {
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => None,
            Ok(m) => Some(Ok(incoming(m))),
            Err(err) => {
                seen.note(&err);
                Some(Err(err))
            }
        })
    });
    (Box::pin(sink), Box::pin(stream), refusal)
}

/// The close a client is owed when its stream ended on a frame the WebSocket layer refused
/// with a code of its own: noted by the stream, sent by [`Refusal::send`] once the session
/// over the stream has ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Refusal(Arc<Mutex<Option<(u16, &'static str)>>>);

impl Refusal {
    fn note(&self, err: &axum::Error) {
        let Some(close) = close_for(err) else {
            return;
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(close);
    }

    /// Sends the close noted, if any; a client that is gone already is only logged.
    pub(crate) async fn send(&self, sink: &mut WsSink) {
        let noted = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some((code, reason)) = noted else {
            return;
        };
        tracing::debug!(code, reason, "refused a WebSocket frame");
        if let Err(err) = sink.send(Message::Close(code, reason.to_owned())).await {
            tracing::debug!(error = %err, "could not tell a client why its frame was refused");
        }
    }
}

/// The close code and reason for a stream error, when the RFC has one for it.
fn close_for(err: &axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::Error as E;
    let inner = std::error::Error::source(err)?.downcast_ref::<E>()?;
    match inner {
        E::Capacity(_) => Some((close::TOO_BIG, "message too large")),
        E::Utf8(_) => Some((INVALID_PAYLOAD, "text frame is not UTF-8")),
        _ => None,
    }
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
