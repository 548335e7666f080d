//! Fake terminals built with `Pty::new`, for tests of the bridge's logic (the runtime itself
//! is tested against the real engine in berth-runtime).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use berth_terminal::{Pty, PtyControl, TerminalError, TtySize};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWrite};

/// Records resizes and hang-ups; `wait` answers `exit_code`.
#[derive(Debug, Default)]
pub struct FakeControl {
    pub resizes: Mutex<Vec<TtySize>>,
    pub exit_code: i64,
    pub hung_up: AtomicBool,
}

#[async_trait]
impl PtyControl for FakeControl {
    async fn resize(&self, size: TtySize) -> Result<(), TerminalError> {
        self.resizes.lock().unwrap().push(size);
        Ok(())
    }
    async fn wait(&self) -> Result<i64, TerminalError> {
        Ok(self.exit_code)
    }
    async fn hang_up(&self) -> Result<(), TerminalError> {
        self.hung_up.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Input written to a fake session.
#[derive(Debug, Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A session whose output is `output`, whose input is captured, exiting with `exit_code`.
pub fn scripted(
    output: impl Stream<Item = Result<Bytes, TerminalError>> + Send + 'static,
    exit_code: i64,
) -> (Pty, Arc<FakeControl>, Captured) {
    let control = Arc::new(FakeControl {
        exit_code,
        ..FakeControl::default()
    });
    let input = Captured::default();
    let session = Pty::new(Box::pin(output), Box::pin(input.clone()), control.clone());
    (session, control, input)
}

/// A session that prints its input back, like `cat` on a raw terminal; its output ends (exit
/// `exit_code`) when its input is closed.
pub fn echo(exit_code: i64) -> (Pty, Arc<FakeControl>) {
    let (input, reader) = tokio::io::duplex(4096);
    let output = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0; 4096];
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), reader))
            }
        }
    });
    let control = Arc::new(FakeControl {
        exit_code,
        ..FakeControl::default()
    });
    let session = Pty::new(output.boxed(), Box::pin(input), control.clone());
    (session, control)
}
