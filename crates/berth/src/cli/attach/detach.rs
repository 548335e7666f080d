//! The detach keys: Ctrl-] then `d` leaves the session (the workspace keeps running). Ctrl-]
//! twice sends one Ctrl-]; Ctrl-] then any other key sends both.
//!
//! Ctrl-] rather than docker's Ctrl-P Ctrl-Q: Ctrl-P is the shell's "previous command", and
//! docker users know the pause it causes while docker waits for a Q. Ctrl-] is telnet's escape
//! key and has no common use in shells or editors.

/// Ctrl-].
pub const ESCAPE: u8 = 0x1d;
/// The key after [`ESCAPE`] that detaches.
pub const DETACH: u8 = b'd';

/// What to make of typed bytes.
#[derive(Debug, Default)]
pub struct DetachKeys {
    after_escape: bool,
}

impl DetachKeys {
    /// The bytes of `input` to send, and whether the detach keys were typed (bytes after them
    /// are dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut send = Vec::with_capacity(input.len());
        for &byte in input {
            if self.after_escape {
                self.after_escape = false;
                match byte {
                    DETACH => return (send, true),
                    ESCAPE => send.push(ESCAPE),
                    other => send.extend([ESCAPE, other]),
                }
            } else if byte == ESCAPE {
                self.after_escape = true;
            } else {
                send.push(byte);
            }
        }
        (send, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_bracket_then_d_detaches_and_anything_else_passes() {
        let mut keys = DetachKeys::default();
        assert_eq!(keys.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(keys.feed(b"ab\x1dd rest"), (b"ab".to_vec(), true));

        let mut keys = DetachKeys::default();
        // Split across reads, as a slow typist makes it.
        assert_eq!(keys.feed(b"x\x1d"), (b"x".to_vec(), false));
        assert_eq!(keys.feed(b"d"), (Vec::new(), true));

        let mut keys = DetachKeys::default();
        assert_eq!(keys.feed(b"\x1d\x1d"), (vec![ESCAPE], false));
        assert_eq!(keys.feed(b"\x1dq"), (vec![ESCAPE, b'q'], false));
        assert_eq!(keys.feed(b"d"), (b"d".to_vec(), false), "a lone d is typed");
    }
}
