//! An in-memory "socket" for the bridge: bounded channels in both directions, and a client
//! that reads it the way the browser does.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use berth_core::bridge::Message;
use futures_channel::mpsc;
use futures_util::{Sink, SinkExt, StreamExt};
use serde_json::Value;

/// The server's half: what the bridge runs over.
pub type ServerSink = mpsc::Sender<Message>;
pub type ServerStream = mpsc::Receiver<Result<Message, Infallible>>;

/// The client's half.
pub struct Client {
    pub tx: mpsc::Sender<Result<Message, Infallible>>,
    pub rx: mpsc::Receiver<Message>,
}

pub fn socket() -> (Client, ServerSink, ServerStream) {
    let (to_server, server_stream) = mpsc::channel(8);
    let (server_sink, from_server) = mpsc::channel(8);
    (
        Client {
            tx: to_server,
            rx: from_server,
        },
        server_sink,
        server_stream,
    )
}

impl Client {
    pub async fn send(&mut self, message: Message) {
        self.tx.send(Ok(message)).await.unwrap();
    }

    pub async fn type_text(&mut self, text: &str) {
        self.send(Message::Binary(text.as_bytes().to_vec().into()))
            .await;
    }

    pub async fn control(&mut self, json: Value) {
        self.send(Message::Text(json.to_string())).await;
    }

    /// The next message, failing after 30 s.
    pub async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(Duration::from_secs(30), self.rx.next())
            .await
            .expect("no message from the server within 30 s")
    }

    /// The next text (JSON) message, skipping output.
    pub async fn next_json(&mut self) -> Value {
        loop {
            match self.next().await {
                Some(Message::Text(text)) => return serde_json::from_str(&text).unwrap(),
                Some(Message::Binary(_)) => {}
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }

    /// The next JSON message of `kind`, skipping output and other messages.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let value = self.next_json().await;
            if value["type"] == kind {
                return value;
            }
        }
    }

    /// Output until `needle` shows up, failing after 30 s with what was read.
    pub async fn read_until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.next()).await {
                Ok(Some(Message::Binary(bytes))) => {
                    seen.extend_from_slice(&bytes);
                    if String::from_utf8_lossy(&seen).contains(needle) {
                        return String::from_utf8_lossy(&seen).into_owned();
                    }
                }
                Ok(Some(Message::Text(_))) => {}
                other => panic!(
                    "no {needle:?} in terminal output ({other:?}); read: {:?}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
    }

    /// Everything until the server closes: (output bytes, JSON messages, close frame).
    pub async fn drain(&mut self) -> (Vec<u8>, Vec<Value>, Option<(u16, String)>) {
        let mut output = Vec::new();
        let mut texts = Vec::new();
        while let Some(message) = self.next().await {
            match message {
                Message::Binary(bytes) => output.extend_from_slice(&bytes),
                Message::Text(text) => texts.push(serde_json::from_str(&text).unwrap()),
                Message::Close(code, reason) => return (output, texts, Some((code, reason))),
            }
        }
        (output, texts, None)
    }
}

/// A client that stops reading: it accepts frames until `budget` bytes went through,
/// then never again (its `poll_ready` stays pending).
#[derive(Debug, Clone)]
pub struct StallingSink {
    pub accepted: Arc<AtomicUsize>,
    budget: usize,
}

impl StallingSink {
    pub fn new(budget: usize) -> Self {
        Self {
            accepted: Arc::default(),
            budget,
        }
    }

    pub fn stalled(&self) -> bool {
        self.accepted.load(Ordering::Relaxed) >= self.budget
    }
}

impl Sink<Message> for StallingSink {
    type Error = Infallible;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.stalled() {
            Poll::Pending // never woken: a client that went to sleep
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Infallible> {
        let len = match item {
            Message::Binary(bytes) => bytes.len(),
            Message::Text(text) => text.len(),
            Message::Close(..) => 0,
        };
        self.accepted.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
}
