//! A process on a PTY: output stream, input writer, control.
//!
//! Output is pulled only as fast as it is consumed, so a consumer that stops reading (a slow
//! WebSocket) stops the source from reading and, through the PTY, the process from writing:
//! nothing is buffered without bound. Dropping every part of a [`Pty`] hangs its process up.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWrite;

/// `TERM` given to terminals: what xterm.js and most terminals understand.
pub const DEFAULT_TERM: &str = "xterm-256color";

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TtySize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl TtySize {
    /// The size of a terminal before its client says otherwise.
    pub const DEFAULT: Self = Self { cols: 80, rows: 24 };
}

/// Why a terminal's output, input or control failed.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    /// The connection to the process failed (the engine or the SSH connection went away).
    #[error("the terminal's connection failed: {0}")]
    Lost(String),
    /// A control request (resize, wait, hang up) failed.
    #[error("{0}")]
    Control(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Resizes a running terminal, hangs it up and reports its exit code; implemented by each
/// source (and by fakes).
#[async_trait]
pub trait PtyControl: Send + Sync + std::fmt::Debug {
    /// Sets the PTY size (the process gets SIGWINCH).
    async fn resize(&self, size: TtySize) -> Result<(), TerminalError>;
    /// Waits until the process has exited and returns its exit code. Call it once the output
    /// has ended.
    async fn wait(&self) -> Result<i64, TerminalError>;
    /// Sends the process SIGHUP, as closing a terminal window does; nothing when it has exited.
    async fn hang_up(&self) -> Result<(), TerminalError>;
}

/// The output half of a terminal.
pub type PtyOutput = Pin<Box<dyn Stream<Item = Result<Bytes, TerminalError>> + Send>>;
/// The input half of a terminal; shutting it down closes the process's stdin.
pub type PtyInput = Pin<Box<dyn AsyncWrite + Send>>;

/// A started process: read its output (`Stream`), write its input (`AsyncWrite`), resize it and
/// wait for its exit code. [`Pty::into_parts`] splits it for two pumping tasks.
pub struct Pty {
    output: PtyOutput,
    input: PtyInput,
    control: Arc<dyn PtyControl>,
}

/// What a finished process produced, from [`Pty::collect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Output, up to the limit given.
    pub output: Vec<u8>,
    /// Whether output beyond the limit was dropped.
    pub truncated: bool,
    /// The process's exit code.
    pub exit_code: i64,
}

impl Pty {
    /// Assembles a terminal from its parts.
    pub fn new(output: PtyOutput, input: PtyInput, control: Arc<dyn PtyControl>) -> Self {
        Self {
            output,
            input,
            control,
        }
    }

    /// Output, input and control, to be moved into separate tasks.
    pub fn into_parts(self) -> (PtyOutput, PtyInput, Arc<dyn PtyControl>) {
        (self.output, self.input, self.control)
    }

    /// A handle to resize and wait, usable while the halves are elsewhere.
    pub fn control(&self) -> Arc<dyn PtyControl> {
        Arc::clone(&self.control)
    }

    /// Sets the PTY size.
    ///
    /// The future owns a handle to the control, not a borrow of the terminal: a `Pty` is not
    /// `Sync` (its halves are `Send` only), and a borrow held across the await would make the
    /// caller's future not `Send`.
    pub fn resize(
        &self,
        size: TtySize,
    ) -> impl Future<Output = Result<(), TerminalError>> + Send + 'static {
        let control = Arc::clone(&self.control);
        async move { control.resize(size).await }
    }

    /// Ends the process (SIGHUP) if it still runs; see [`PtyControl::hang_up`].
    pub fn hang_up(&self) -> impl Future<Output = Result<(), TerminalError>> + Send + 'static {
        let control = Arc::clone(&self.control);
        async move { control.hang_up().await }
    }

    /// Reads the output to its end, keeping at most `limit` bytes, then returns the exit code.
    pub async fn collect(mut self, limit: usize) -> Result<Collected, TerminalError> {
        let mut output = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = self.output.next().await {
            let chunk = chunk?;
            let room = limit.saturating_sub(output.len());
            truncated |= chunk.len() > room;
            output.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let exit_code = self.control.wait().await?;
        Ok(Collected {
            output,
            truncated,
            exit_code,
        })
    }
}

impl std::fmt::Debug for Pty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pty")
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

impl Stream for Pty {
    type Item = Result<Bytes, TerminalError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.output.as_mut().poll_next(cx)
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.input.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.input.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Exited(i64);

    #[async_trait]
    impl PtyControl for Exited {
        async fn resize(&self, _: TtySize) -> Result<(), TerminalError> {
            Ok(())
        }
        async fn wait(&self) -> Result<i64, TerminalError> {
            Ok(self.0)
        }
        async fn hang_up(&self) -> Result<(), TerminalError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn collect_keeps_at_most_the_limit() {
        let output = futures_util::stream::iter([
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"def")),
        ]);
        let pty = Pty::new(
            Box::pin(output),
            Box::pin(tokio::io::sink()),
            Arc::new(Exited(2)),
        );
        let collected = pty.collect(4).await.unwrap();
        assert_eq!(
            collected,
            Collected {
                output: b"abcd".to_vec(),
                truncated: true,
                exit_code: 2
            }
        );
    }

    #[tokio::test]
    async fn a_failing_output_fails_the_collect() {
        let output = futures_util::stream::iter([
            Ok(Bytes::from_static(b"abc")),
            Err(TerminalError::Lost("engine gone".into())),
        ]);
        let pty = Pty::new(
            Box::pin(output),
            Box::pin(tokio::io::sink()),
            Arc::new(Exited(0)),
        );
        let err = pty.collect(16).await.unwrap_err();
        assert!(err.to_string().contains("engine gone"), "{err}");
    }
}
