//! A Server-Sent Events parser, fed bytes as they arrive: `event:`, `id:`, `data:` and
//! `retry:` fields, comments (`:`) ignored, lines ended by LF, CRLF or CR (even split across
//! chunks), events ended by a blank line, several `data:` lines joined with `\n`, as the
//! HTML standard's event stream interpretation reads them. A line or an event larger than
//! its limit is an error rather than memory spent on a hostile or broken server.

/// The longest line accepted by default: output events carry a chunk of a script's output
/// as text and as base64, far below this.
pub const MAX_LINE: usize = 4 * 1024 * 1024;
/// The most data one event may carry by default.
pub const MAX_EVENT: usize = 4 * 1024 * 1024;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `event:` name; `message` when it has none.
    pub event: String,
    /// Its `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:` given in this event, if any.
    pub id: Option<String>,
}

/// A stream that breaks the limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line longer than the limit.
    #[error("the event stream sent a line longer than {limit} bytes")]
    LineTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// An event with more data than the limit.
    #[error("the event stream sent an event larger than {limit} bytes")]
    EventTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Parses an event stream incrementally.
#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    max_event: usize,
    line: Vec<u8>,
    after_cr: bool,
    at_start: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
    last_id: Option<String>,
    retry: Option<u64>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default limits ([`MAX_LINE`], [`MAX_EVENT`]).
    #[must_use]
    pub fn new() -> Self {
        Self::with_limits(MAX_LINE, MAX_EVENT)
    }

    /// A parser refusing lines longer than `max_line` bytes and events with more than
    /// `max_event` bytes of data.
    #[must_use]
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        Self {
            max_line,
            max_event,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: String::new(),
            data: String::new(),
            has_data: false,
            id: None,
            last_id: None,
            retry: None,
        }
    }

    /// The last `id:` the stream gave (in any event, dispatched or not): what
    /// `Last-Event-ID` says on reconnecting.
    #[must_use]
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The last `retry:` the stream gave, in milliseconds.
    #[must_use]
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Reads `bytes`, appending each event they complete to `out`. An error leaves the
    /// parser unusable: the stream is broken.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.push_line_part(&rest[..end])?;
                    self.after_cr = rest[end] == b'\r';
                    rest = &rest[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, out)?;
                }
                None => {
                    self.push_line_part(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    fn push_line_part(&mut self, part: &[u8]) -> Result<(), SseError> {
        if self.line.len() + part.len() > self.max_line {
            return Err(SseError::LineTooLong {
                limit: self.max_line,
            });
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut line = String::from_utf8_lossy(line);
        if std::mem::take(&mut self.at_start)
            && let Some(rest) = line.strip_prefix('\u{feff}')
        {
            line = rest.to_owned().into();
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event,
                    });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.id = Some(value.to_owned());
                self.last_id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let id = self.id.take();
        if std::mem::take(&mut self.has_data) {
            out.push(SseEvent {
                event: if event.is_empty() {
                    "message".to_owned()
                } else {
                    event
                },
                data,
                id,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(parser: &mut SseParser, chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).unwrap();
        }
        out
    }

    fn event(name: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: name.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn fields_comments_and_multi_line_data() {
        let mut parser = SseParser::new();
        let events = parse(
            &mut parser,
            &[
                b": keep-alive\n\nevent: output\nid: 7\ndata: {\"a\":\ndata:1}\n\n\
                data\n\nevent:machine\ndata:  two spaces\nretry: 3000\nbogus: x\n\n",
            ],
        );
        assert_eq!(
            events,
            [
                event("output", "{\"a\":\n1}", Some("7")),
                event("message", "", None),
                event("machine", " two spaces", None),
            ]
        );
        assert_eq!(parser.last_event_id(), Some("7"));
        assert_eq!(parser.retry(), Some(3000));
    }

    #[test]
    fn crlf_cr_and_lf_end_lines_even_split_across_chunks() {
        let whole: &[u8] = b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\n";
        let expected = [
            event("a", "1", None),
            event("b", "2", None),
            event("message", "3", None),
        ];
        assert_eq!(parse(&mut SseParser::new(), &[whole]), expected);
        // Every split, one byte at a time included: a CR at a chunk's end and its LF in the
        // next are one line end.
        for at in 0..whole.len() {
            let (a, b) = whole.split_at(at);
            assert_eq!(
                parse(&mut SseParser::new(), &[a, b]),
                expected,
                "split at {at}"
            );
        }
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(parse(&mut SseParser::new(), &bytes), expected);
    }

    #[test]
    fn events_without_data_are_not_dispatched_but_their_id_counts() {
        let mut parser = SseParser::new();
        let events = parse(&mut parser, &[b"id: 41\nevent: output\n\nid: 42\n\n"]);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(parser.last_event_id(), Some("42"));
        // An id with a NUL is ignored; an empty one clears.
        let events = parse(&mut parser, &[b"id: 4\x003\ndata: x\n\n"]);
        assert_eq!(events, [event("message", "x", None)]);
        assert_eq!(parser.last_event_id(), Some("42"));
        parse(&mut parser, &[b"id\ndata: y\n\n"]);
        assert_eq!(parser.last_event_id(), Some(""));
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        let mut parser = SseParser::new();
        assert!(parse(&mut parser, &[b"event: output\ndata: half"]).is_empty());
        assert!(parse(&mut parser, &[b"\n"]).is_empty());
        assert_eq!(
            parse(&mut parser, &[b"\n"]),
            [event("output", "half", None)]
        );
    }

    #[test]
    fn a_byte_order_mark_and_invalid_utf8_are_read_as_the_standard_says() {
        let mut parser = SseParser::new();
        let events = parse(&mut parser, &[b"\xef\xbb\xbfdata: \xff ok\n\n"]);
        assert_eq!(events, [event("message", "\u{fffd} ok", None)]);
        // Only at the very start.
        let events = parse(&mut parser, &[b"\xef\xbb\xbfdata: x\n\n"]);
        assert!(events.is_empty(), "{events:?}");
    }

    #[test]
    fn huge_lines_and_events_are_refused_not_buffered() {
        let mut parser = SseParser::with_limits(64, 100);
        let mut out = Vec::new();
        parser.feed(&[b'x'; 60], &mut out).unwrap();
        assert_eq!(
            parser.feed(&[b'x'; 10], &mut out),
            Err(SseError::LineTooLong { limit: 64 })
        );
        assert!(parser.line.len() <= 64);

        // A line of exactly the limit is fine, and many short data lines add up.
        let mut parser = SseParser::with_limits(64, 100);
        let line = format!("data: {}\n", "y".repeat(58));
        parser.feed(line.as_bytes(), &mut out).unwrap();
        assert_eq!(
            parser.feed(line.as_bytes(), &mut out),
            Err(SseError::EventTooLarge { limit: 100 })
        );
        assert!(out.is_empty());
    }
}
