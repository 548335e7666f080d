//! The output kept of one stream of one machine: at most `fleet.max_output` bytes, the first
//! half and the last half, with a marker line where the middle was dropped.

use std::collections::VecDeque;

/// Keeps at most `max` bytes of a stream: the first `max - max / 2` (the head) and the last
/// `max / 2` (the tail, a ring). Bytes are bytes: nothing assumes UTF-8.
#[derive(Debug, Clone)]
pub struct OutputBuffer {
    head: Vec<u8>,
    head_max: usize,
    tail: VecDeque<u8>,
    tail_max: usize,
    /// Every byte pushed so far.
    total: usize,
}

impl OutputBuffer {
    /// An empty buffer keeping at most `max` bytes.
    #[must_use]
    pub fn new(max: usize) -> Self {
        let tail_max = max / 2;
        Self {
            head: Vec::new(),
            head_max: max - tail_max,
            tail: VecDeque::new(),
            tail_max,
            total: 0,
        }
    }

    /// Adds the next chunk of the stream. Answers how many of its leading bytes went into the
    /// head: those are kept whatever comes later, so a caller may store them as they arrive;
    /// the rest is known only at [`OutputBuffer::finish`].
    pub fn push(&mut self, chunk: &[u8]) -> usize {
        self.total = self.total.saturating_add(chunk.len());
        let kept = chunk.len().min(self.head_max - self.head.len());
        self.head.extend_from_slice(&chunk[..kept]);
        let rest = &chunk[kept..];
        // Of a chunk longer than the ring only its end can stay.
        let rest = &rest[rest.len().saturating_sub(self.tail_max)..];
        let overflow = (self.tail.len() + rest.len()).saturating_sub(self.tail_max);
        self.tail.drain(..overflow);
        self.tail.extend(rest);
        kept
    }

    /// Whether bytes in the middle were dropped.
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        self.total > self.head.len() + self.tail.len()
    }

    /// The kept bytes and whether the middle was dropped; a truncated result has a line
    /// `[... N bytes dropped by fleet.max_output ...]` between head and tail.
    #[must_use]
    pub fn finish(self) -> (Vec<u8>, bool) {
        let truncated = self.is_truncated();
        let dropped = self.total - self.head.len() - self.tail.len();
        let mut out = self.head;
        if truncated {
            out.extend_from_slice(marker(dropped).as_bytes());
        }
        out.extend(self.tail);
        (out, truncated)
    }
}

/// The line that stands for `dropped` bytes.
#[must_use]
pub fn marker(dropped: usize) -> String {
    format!("\n[... {dropped} bytes dropped by fleet.max_output ...]\n")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `input` cut at the (sorted, deduplicated) positions in `cuts`.
    fn chunks<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([input.len()]) {
            out.push(&input[start..cut]);
            start = cut;
        }
        out
    }

    proptest! {
        #[test]
        fn any_chunking_keeps_head_and_tail(
            input in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            max in 0usize..700,
        ) {
            let mut buffer = OutputBuffer::new(max);
            let mut kept = Vec::new();
            for chunk in chunks(&input, &cuts) {
                let n = buffer.push(chunk);
                kept.extend_from_slice(&chunk[..n]);
            }
            let (out, truncated) = buffer.finish();
            let h = max - max / 2;
            let t = max / 2;
            prop_assert_eq!(&kept[..], &input[..h.min(input.len())], "kept bytes are the head");
            if input.len() <= max {
                prop_assert!(!truncated);
                prop_assert_eq!(out, input);
            } else {
                prop_assert!(truncated);
                let middle = marker(input.len() - max);
                prop_assert_eq!(out.len(), max + middle.len());
                prop_assert_eq!(&out[..h], &input[..h]);
                prop_assert_eq!(&out[h..h + middle.len()], middle.as_bytes());
                prop_assert_eq!(&out[out.len() - t..], &input[input.len() - t..]);
            }
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_stay_as_they_are() {
        let mut buffer = OutputBuffer::new(4);
        assert_eq!(buffer.push(b"\xff\xfe"), 2);
        assert_eq!(buffer.push(b"\x00\x80\xc3"), 0);
        let (out, truncated) = buffer.finish();
        assert!(truncated);
        assert_eq!(
            out,
            [&b"\xff\xfe"[..], marker(1).as_bytes(), b"\x80\xc3"].concat()
        );
    }

    #[test]
    fn nothing_fits_in_nothing() {
        let mut buffer = OutputBuffer::new(0);
        assert_eq!(buffer.push(b""), 0);
        assert!(!buffer.is_truncated());
        assert_eq!(buffer.push(b"x"), 0);
        assert_eq!(
            buffer.finish(),
            (marker(1).into_bytes(), true),
            "even an empty result says what was dropped"
        );
    }
}
