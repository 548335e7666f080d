//! The byte streams of a started exec, read straight off the hijacked connection.
//!
//! bollard's reader decodes a PTY's raw stream as if it might be multiplexed: a read starting
//! with byte 0, 1 or 2 (binary output, `cat /bin/ls`) is taken for a frame header whose length
//! field then makes it buffer without bound. Here the PTY stream is passed through as it comes,
//! and the multiplexed stream of a command without PTY is split without ever holding more than
//! one read (32 KiB): payload is forwarded as it arrives, not per frame.

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;

use super::probe::connect_error;
use crate::error::{Result, RuntimeError};
use berth_terminal::{PtyInput, PtyOutput, TerminalError};

/// One read from the engine; also the most a consumer gets per item.
const CHUNK: usize = 32 * 1024;
/// Response headers (or an error body) larger than this are not the engine's.
const MAX_HEAD: usize = 16 * 1024;

/// Starts exec `exec_id` attached and returns its output and input.
pub(super) async fn start(
    socket: &Path,
    api: (usize, usize),
    exec_id: &str,
    tty: bool,
    timeout: Duration,
) -> Result<(PtyOutput, PtyInput)> {
    let operation = "start exec";
    let handshake = async {
        let mut stream = UnixStream::connect(socket).await?;
        let body = format!(r#"{{"Detach":false,"Tty":{tty}}}"#);
        let request = format!(
            "POST /v{}.{}/exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
            api.0,
            api.1,
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let end = loop {
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if head.len() > MAX_HEAD || stream.read_buf(&mut head).await? == 0 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "no HTTP answer"));
            }
        };
        Ok::<_, io::Error>((stream, head, end))
    };
    let (mut stream, head, end) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| RuntimeError::Timeout {
            socket: socket.to_owned(),
            operation,
            after: timeout,
        })?
        .map_err(|e| connect_error(socket, operation, &e))?;

    let status_line = String::from_utf8_lossy(&head[..end])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 101 && status != 200 {
        // An error answer is small JSON, `{"message": "..."}`; read what is there, bounded.
        let mut body = head[end + 4..].to_vec();
        let _ = tokio::time::timeout(
            timeout,
            (&mut stream).take(MAX_HEAD as u64).read_to_end(&mut body),
        )
        .await;
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or(status_line);
        return Err(RuntimeError::Engine {
            operation,
            status,
            message,
        });
    }

    let leftover = Bytes::copy_from_slice(&head[end + 4..]);
    let (read, write) = stream.into_split();
    let reader = Reader {
        read,
        pending: leftover,
        demux: (!tty).then(Demux::default),
        done: false,
    };
    Ok((Box::pin(output(reader, socket.to_owned())), Box::pin(write)))
}

fn output(
    reader: Reader,
    socket: std::path::PathBuf,
) -> impl Stream<Item = Result<Bytes, TerminalError>> + Send {
    futures_util::stream::unfold(reader, move |mut reader| {
        let socket = socket.clone();
        async move {
            if reader.done {
                return None;
            }
            match reader.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), reader)),
                Ok(None) => None,
                Err(e) => {
                    reader.done = true;
                    let detail = e.to_string();
                    let lost = RuntimeError::Transport {
                        socket,
                        operation: "exec output",
                        detail,
                    };
                    Some((Err(TerminalError::Lost(lost.to_string())), reader))
                }
            }
        }
    })
}

struct Reader {
    read: OwnedReadHalf,
    /// Bytes that arrived with the response headers.
    pending: Bytes,
    /// Splitting state for a stream without PTY.
    demux: Option<Demux>,
    done: bool,
}

impl Reader {
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let raw = if self.pending.is_empty() {
                let mut buf = BytesMut::with_capacity(CHUNK);
                if self.read.read_buf(&mut buf).await? == 0 {
                    return Ok(None);
                }
                buf.freeze()
            } else {
                std::mem::take(&mut self.pending)
            };
            let Some(demux) = &mut self.demux else {
                return Ok(Some(raw));
            };
            let payload = demux.feed(&raw)?;
            if !payload.is_empty() {
                return Ok(Some(payload));
            }
        }
    }
}

/// The engine's multiplexing: frames of an 8-byte header (stream type 0/1/2, three zero bytes,
/// big-endian length) and that many payload bytes. Stdout and stderr are merged.
#[derive(Debug, Default)]
struct Demux {
    header: [u8; 8],
    header_len: usize,
    /// Payload bytes of the current frame still to come.
    remaining: usize,
}

impl Demux {
    /// The payload contained in `raw`, headers removed.
    fn feed(&mut self, mut raw: &[u8]) -> io::Result<Bytes> {
        let mut payload = BytesMut::new();
        while !raw.is_empty() {
            if self.remaining == 0 {
                let take = (8 - self.header_len).min(raw.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&raw[..take]);
                self.header_len += take;
                raw = &raw[take..];
                if self.header_len == 8 {
                    if self.header[0] > 2 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "bad stream frame header",
                        ));
                    }
                    let len = u32::from_be_bytes([
                        self.header[4],
                        self.header[5],
                        self.header[6],
                        self.header[7],
                    ]);
                    self.remaining = len as usize;
                    self.header_len = 0;
                }
            } else {
                let take = self.remaining.min(raw.len());
                payload.extend_from_slice(&raw[..take]);
                self.remaining -= take;
                raw = &raw[take..];
            }
        }
        Ok(payload.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_split_anywhere_are_merged_in_order() {
        let mut wire = frame(1, b"hello ");
        wire.extend(frame(2, b"err "));
        wire.extend(frame(1, b""));
        wire.extend(frame(1, b"world"));
        for cut in 0..wire.len() {
            let mut demux = Demux::default();
            let mut out = demux.feed(&wire[..cut]).unwrap().to_vec();
            out.extend_from_slice(&demux.feed(&wire[cut..]).unwrap());
            assert_eq!(out, b"hello err world", "cut at {cut}");
        }
    }

    #[test]
    fn a_huge_declared_frame_is_forwarded_as_it_arrives() {
        let mut demux = Demux::default();
        let mut wire = vec![1, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
        wire.extend_from_slice(b"partial");
        assert_eq!(&demux.feed(&wire).unwrap()[..], b"partial");
        assert_eq!(demux.remaining, 0x7fff_ffff - 7);
    }

    #[test]
    fn garbage_is_refused() {
        let mut demux = Demux::default();
        assert!(demux.feed(b"\x7fELF\0\0\0\x01").is_err());
    }
}
