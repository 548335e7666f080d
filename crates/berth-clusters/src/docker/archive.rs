//! The one file of a tar archive, as the engine's archive API (`GET /containers/{id}/archive`)
//! returns a single path: enough of ustar to find it, no more.

const BLOCK: usize = 512;

/// The contents of the first regular file in `tar`, skipping the extended headers (pax `x`/`g`,
/// GNU long names `L`/`K`) that may precede it.
pub(crate) fn first_file(tar: &[u8]) -> Result<&[u8], String> {
    let mut at = 0;
    while at + BLOCK <= tar.len() {
        let header = &tar[at..at + BLOCK];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let size = octal(&header[124..136]).ok_or("a tar header has a bad size field")?;
        let start = at + BLOCK;
        let end = start
            .checked_add(size)
            .filter(|end| *end <= tar.len())
            .ok_or("the tar archive is truncated")?;
        match header[156] {
            b'0' | 0 => return Ok(&tar[start..end]),
            b'x' | b'g' | b'L' | b'K' => {}
            b'2' => return Err("the file is a symbolic link".to_owned()),
            other => {
                return Err(format!(
                    "the path is not a regular file (tar type {:?})",
                    char::from(other)
                ));
            }
        }
        at = start + size.div_ceil(BLOCK) * BLOCK;
    }
    Err("the tar archive holds no file".to_owned())
}

fn octal(field: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    usize::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(name: &str, kind: u8, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h
    }

    fn entry(name: &str, kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = header(name, kind, body.len());
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    #[test]
    fn finds_the_file_after_extended_headers() {
        let mut tar = entry(
            "PaxHeaders/k3s.yaml",
            b'x',
            b"30 mtime=1700000000.123456789\n",
        );
        tar.extend(entry("k3s.yaml", b'0', b"apiVersion: v1\n"));
        tar.extend(vec![0; 2 * BLOCK]);
        assert_eq!(first_file(&tar).unwrap(), b"apiVersion: v1\n");
    }

    #[test]
    fn refuses_what_is_not_one_file() {
        assert!(first_file(&[]).unwrap_err().contains("no file"));
        assert!(
            first_file(&entry("k3s.yaml", b'5', b""))
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            first_file(&entry("k3s.yaml", b'2', b""))
                .unwrap_err()
                .contains("symbolic link")
        );
        let mut cut = entry("k3s.yaml", b'0', &[b'a'; 600]);
        cut.truncate(700);
        assert!(first_file(&cut).unwrap_err().contains("truncated"));
        let mut bad = header("k3s.yaml", b'0', 1);
        bad[124..136].copy_from_slice(b"zzzzzzzzzzz\0");
        assert!(first_file(&bad).unwrap_err().contains("size"));
    }
}
