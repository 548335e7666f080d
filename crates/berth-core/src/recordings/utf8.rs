//! Terminal output as text for asciicast's JSON strings: a streaming UTF-8 decoder that keeps a
//! character split across two chunks whole and replaces invalid bytes with U+FFFD, exactly as
//! decoding the concatenated bytes with [`String::from_utf8_lossy`] would.

/// Decodes a byte stream chunk by chunk. Holds at most three bytes between calls (the start of
/// a character whose end has not arrived yet).
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// The text of `bytes`, after whatever was pending. An incomplete character at the end is
    /// kept for the next call.
    pub fn decode(&mut self, bytes: &[u8]) -> String {
        let joined;
        let input: &[u8] = if self.pending.is_empty() {
            bytes
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(bytes);
            joined = buf;
            &joined
        };
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    // Valid by construction: borrowed, never replaced.
                    out.push_str(&String::from_utf8_lossy(valid));
                    match err.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            self.pending = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// Ends the stream (or a gap in it): an incomplete character left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn streamed(chunks: &[Vec<u8>]) -> String {
        let mut decoder = Utf8Stream::default();
        let mut out: String = chunks.iter().map(|c| decoder.decode(c)).collect();
        out.push_str(&decoder.finish());
        out
    }

    #[test]
    fn a_character_split_across_chunks_stays_whole() {
        let euro = "€".as_bytes();
        assert_eq!(
            streamed(&[vec![b'a', euro[0]], vec![euro[1]], vec![euro[2], b'b']]),
            "a€b"
        );
        let mut decoder = Utf8Stream::default();
        assert_eq!(decoder.decode(&euro[..2]), "");
        assert_eq!(decoder.finish(), "\u{FFFD}", "cut short at the end");
        assert_eq!(decoder.finish(), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(streamed(&[vec![0xff, b'x', 0xc3]]), "\u{FFFD}x\u{FFFD}");
        assert_eq!(
            streamed(&[vec![0xed, 0xa0, 0x80]]),
            "\u{FFFD}\u{FFFD}\u{FFFD}"
        );
    }

    /// Bytes that are mostly UTF-8 (so characters do get split) with invalid bytes mixed in.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                any::<char>().prop_map(|c| c.to_string().into_bytes()),
                any::<u8>().prop_map(|b| vec![b]),
                Just("€".as_bytes()[..2].to_vec()),
            ],
            0..64,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn streaming_equals_decoding_everything_at_once(
            data in bytes(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(data[start..p].to_vec());
                start = p;
            }
            chunks.push(data[start..].to_vec());
            prop_assert_eq!(streamed(&chunks), String::from_utf8_lossy(&data).into_owned());
        }
    }
}
