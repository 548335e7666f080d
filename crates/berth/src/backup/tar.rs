//! Just enough of the tar format to write a Berth backup and to read one back with suspicion:
//! POSIX ustar headers, with pax `path` and `size` records for names over 100 bytes and files
//! of 8 GiB or more. `tar tvf` and `tar xf` read what [`Writer`] writes.
//!
//! [`Reader`] hands out each entry's header (name, type, mode, size) before any of its data,
//! so the caller can refuse it first; it checks every header's checksum, refuses an entry that
//! claims more data than the archive has left, and refuses an archive that ends without its
//! end-of-archive block (a truncated copy). It also reads GNU long names and the ustar prefix
//! field, which other tools write.

use std::io::{self, Read, Write};

use anyhow::{Context, bail};

/// Tar's unit: headers and data are padded to it.
pub const BLOCK: u64 = 512;
/// The largest size an octal ustar size field holds (11 digits).
const MAX_OCTAL_SIZE: u64 = 0o777_7777_7777;
/// Pax records (and GNU long names) longer than this are refused.
const MAX_EXTENSION: u64 = 1 << 20;

/// An entry's header: what it is, before its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as stored (a directory's may end with `/`), lossily UTF-8 when it is not
    /// (`utf8` says which).
    pub path: String,
    /// Whether the name was valid UTF-8.
    pub utf8: bool,
    /// The type flag byte (`b'0'` a file, `b'5'` a directory, `b'2'` a symbolic link, ...).
    pub kind: u8,
    /// Permission bits (and any set-id bits the archive claims).
    pub mode: u32,
    /// Bytes of data that follow.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// A link's target (empty for other entries).
    pub link: String,
}

impl Header {
    /// A regular file (`'0'`, or NUL as in old archives).
    pub fn is_file(&self) -> bool {
        matches!(self.kind, b'0' | b'\0')
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.kind == b'5'
    }

    /// What the type flag means, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            b'0' | b'\0' => "a file",
            b'1' => "a hard link",
            b'2' => "a symbolic link",
            b'3' => "a character device",
            b'4' => "a block device",
            b'5' => "a directory",
            b'6' => "a FIFO",
            b'7' => "a contiguous file",
            b'S' => "a sparse file",
            _ => "an entry of an unknown type",
        }
    }
}

/// Writes a tar archive to `out`; [`Writer::finish`] ends it.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// A directory entry (`path` without a trailing `/`).
    pub fn directory(&mut self, path: &str, mode: u32, mtime: u64) -> io::Result<()> {
        self.header(&format!("{path}/"), b'5', mode, 0, mtime)
    }

    /// A file of exactly `size` bytes read from `data`; fails if `data` ends sooner.
    pub fn file(
        &mut self,
        path: &str,
        mode: u32,
        mtime: u64,
        size: u64,
        data: &mut impl Read,
    ) -> io::Result<()> {
        self.header(path, b'0', mode, size, mtime)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path} ended after {copied} of its {size} bytes"),
            ));
        }
        self.pad(size)
    }

    /// Writes the end-of-archive blocks and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK as usize])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(&mut self, path: &str, kind: u8, mode: u32, size: u64, mtime: u64) -> io::Result<()> {
        let mut records = String::new();
        if path.len() > 100 {
            records.push_str(&pax_record("path", path));
        }
        if size > MAX_OCTAL_SIZE {
            records.push_str(&pax_record("size", &size.to_string()));
        }
        if !records.is_empty() {
            let name = format!("PaxHeaders/{path}");
            let block = header_block(
                truncate_to(&name, 99),
                b'x',
                0o600,
                records.len() as u64,
                mtime,
            );
            self.out.write_all(&block)?;
            self.out.write_all(records.as_bytes())?;
            self.pad(records.len() as u64)?;
        }
        let short = truncate_to(path, 100);
        // Past 11 octal digits the pax record is what counts; ustar readers without pax see 0.
        let field_size = if size > MAX_OCTAL_SIZE { 0 } else { size };
        self.out
            .write_all(&header_block(short, kind, mode, field_size, mtime))
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rest = padding(size);
        self.out.write_all(&[0; BLOCK as usize][..rest as usize])
    }
}

/// The bytes of `path`, at most `max`, cut at a character boundary.
fn truncate_to(path: &str, max: usize) -> &str {
    let mut end = path.len().min(max);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// Bytes of padding after `size` bytes of data.
fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// `LEN key=value\n`, where LEN counts the whole record, its own digits included.
fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // ' ', '=' and '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

/// One ustar header block.
fn header_block(name: &str, kind: u8, mode: u32, size: u64, mtime: u64) -> [u8; BLOCK as usize] {
    let mut block = [0_u8; BLOCK as usize];
    block[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut block[100..108], u64::from(mode & 0o7777));
    octal(&mut block[108..116], 0); // uid: a restore gives files to whoever restores
    octal(&mut block[116..124], 0); // gid
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], mtime.min(MAX_OCTAL_SIZE));
    block[156] = kind;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    let digits = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(digits.as_bytes());
    block
}

/// `value` in octal, zero-padded, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let digits = format!("{value:0width$o}");
    let digits = &digits.as_bytes()[digits.len().saturating_sub(width)..];
    field[..width].copy_from_slice(digits);
    field[width] = 0;
}

/// Reads a tar archive entry by entry.
pub struct Reader<R: Read> {
    input: R,
    /// Bytes of the archive not read yet, when its length is known.
    left: Option<u64>,
    /// Data (and padding) of the current entry not read yet.
    unread: u64,
    /// The current entry's padding.
    pad: u64,
    /// Set once the end-of-archive block was read.
    ended: bool,
}

impl<R: Read> Reader<R> {
    /// A reader of `input`, an archive of `length` bytes if known (then an entry that claims
    /// more data than is left is refused before any of it is read).
    pub fn new(input: R, length: Option<u64>) -> Self {
        Self {
            input,
            left: length,
            unread: 0,
            pad: 0,
            ended: false,
        }
    }

    /// The next entry's header, or `None` at the end-of-archive block. Skips what is left of
    /// the previous entry's data.
    pub fn next_header(&mut self) -> anyhow::Result<Option<Header>> {
        if self.ended {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut long_path: Option<(String, bool)> = None;
        let mut long_link: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            let mut block = [0_u8; BLOCK as usize];
            self.read_exact(&mut block).map_err(|e| {
                ended_early(
                    e,
                    "the archive ends without its end-of-archive block (truncated?)",
                )
            })?;
            if block.iter().all(|b| *b == 0) {
                self.ended = true;
                return Ok(None);
            }
            let raw = parse_block(&block)?;
            let size = match raw.kind {
                b'x' | b'g' | b'L' | b'K' => raw.size,
                _ => pax_size.take().unwrap_or(raw.size),
            };
            if let Some(left) = self.left
                && size.saturating_add(padding(size)) > left
            {
                bail!(
                    "entry {:?} says it holds {size} bytes, more than the {left} bytes left in \
                     the archive (truncated?)",
                    long_path
                        .as_ref()
                        .map_or(raw.path.as_str(), |(p, _)| p.as_str())
                );
            }
            self.unread = size;
            self.pad = padding(size);
            match raw.kind {
                b'x' | b'g' | b'L' | b'K' => {
                    if size > MAX_EXTENSION {
                        bail!("an extended header of {size} bytes: more than tar needs");
                    }
                    let data = self.data_to_vec(size)?;
                    self.skip_rest()?;
                    match raw.kind {
                        b'x' => {
                            for (key, value) in pax_records(&data)? {
                                match key.as_str() {
                                    "path" => long_path = Some(lossy(&value)),
                                    "linkpath" => long_link = Some(lossy(&value).0),
                                    "size" => {
                                        let text = String::from_utf8_lossy(&value);
                                        pax_size =
                                            Some(text.trim().parse().with_context(|| {
                                                format!("a pax size record {text:?}")
                                            })?);
                                    }
                                    _ => {}
                                }
                            }
                        }
                        b'L' => long_path = Some(lossy(trim_nul(&data))),
                        b'K' => long_link = Some(lossy(trim_nul(&data)).0),
                        _ => {} // global pax records: nothing Berth uses
                    }
                }
                _ => {
                    let (path, utf8) = long_path.take().unwrap_or((raw.path, raw.utf8));
                    return Ok(Some(Header {
                        path,
                        utf8,
                        kind: raw.kind,
                        mode: raw.mode,
                        size,
                        mtime: raw.mtime,
                        link: long_link.take().unwrap_or(raw.link),
                    }));
                }
            }
        }
    }

    /// Copies the current entry's data to `out`.
    pub fn copy_data(&mut self, out: &mut impl Write) -> anyhow::Result<u64> {
        let mut copied = 0;
        let mut buf = vec![0_u8; 64 * 1024];
        while self.unread > 0 {
            let want = usize::try_from(self.unread.min(buf.len() as u64)).unwrap_or(buf.len());
            self.read_exact(&mut buf[..want])
                .map_err(|e| ended_early(e, MID_ENTRY))?;
            self.unread -= want as u64;
            out.write_all(&buf[..want])?;
            copied += want as u64;
        }
        Ok(copied)
    }

    /// After the end-of-archive block: whether anything but zeros follows.
    pub fn trailing_data(&mut self) -> anyhow::Result<bool> {
        let mut buf = [0_u8; BLOCK as usize];
        loop {
            let n = self.input.read(&mut buf)?;
            if n == 0 {
                return Ok(false);
            }
            if buf[..n].iter().any(|b| *b != 0) {
                return Ok(true);
            }
        }
    }

    fn data_to_vec(&mut self, size: u64) -> anyhow::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        self.copy_data(&mut data)?;
        Ok(data)
    }

    fn skip_rest(&mut self) -> anyhow::Result<()> {
        self.copy_data(&mut io::sink())?;
        let mut pad = [0_u8; BLOCK as usize];
        let n = usize::try_from(self.pad).unwrap_or(0);
        self.read_exact(&mut pad[..n])
            .map_err(|e| ended_early(e, MID_ENTRY))?;
        self.pad = 0;
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.input.read_exact(buf)?;
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(buf.len() as u64);
        }
        Ok(())
    }
}

const MID_ENTRY: &str = "the archive ends in the middle of an entry (truncated?)";

/// `what` for the end of the input, which the system words "failed to fill whole buffer"; other
/// read errors as they are, with `what` for context.
fn ended_early(error: io::Error, what: &'static str) -> anyhow::Error {
    if error.kind() == io::ErrorKind::UnexpectedEof {
        anyhow::anyhow!(what)
    } else {
        anyhow::Error::new(error).context(what)
    }
}

/// A header block's fields, before extensions apply.
struct RawHeader {
    path: String,
    utf8: bool,
    kind: u8,
    mode: u32,
    size: u64,
    mtime: u64,
    link: String,
}

fn parse_block(block: &[u8; BLOCK as usize]) -> anyhow::Result<RawHeader> {
    let stored = number(&block[148..156]).context("a header's checksum field")?;
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(*b)
            }
        })
        .sum();
    // Some old tools summed signed bytes.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(i8::from_ne_bytes([*b]))
            }
        })
        .sum();
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        bail!("a header's checksum is wrong: this is not a tar archive, or it is damaged");
    }
    let mut name = trim_nul(&block[..100]).to_vec();
    if &block[257..262] == b"ustar" {
        let prefix = trim_nul(&block[345..500]);
        if !prefix.is_empty() && block[263..265] == *b"00" {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    let (path, utf8) = lossy(&name);
    let mode = u32::try_from(number(&block[100..108]).context("a header's mode")?)
        .context("a header's mode")?;
    Ok(RawHeader {
        path,
        utf8,
        kind: block[156],
        mode,
        size: number(&block[124..136]).context("a header's size")?,
        mtime: number(&block[136..148]).unwrap_or(0),
        link: lossy(trim_nul(&block[157..257])).0,
    })
}

/// A numeric field: octal digits (space- or NUL-padded), or GNU's base-256 when its first
/// byte has the high bit set.
fn number(field: &[u8]) -> anyhow::Result<u64> {
    if let Some((first, rest)) = field.split_first()
        && first & 0x80 != 0
    {
        if first & 0x40 != 0 {
            bail!("a negative number");
        }
        let mut value = u64::from(first & 0x3f);
        for b in rest {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(*b)))
                .context("a number too large")?;
        }
        return Ok(value);
    }
    let text = std::str::from_utf8(field).context("a number that is not text")?;
    let digits = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if digits.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(digits, 8).with_context(|| format!("{digits:?} is not an octal number"))
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn lossy(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), true),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), false),
    }
}

/// The `key=value` records of a pax extended header.
fn pax_records(data: &[u8]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|b| *b == b' ')
            .context("a pax record without its length")?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .context("a pax record with a bad length")?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            bail!("a malformed pax record");
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .context("a pax record without `=`")?;
        records.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            record[eq + 1..].to_vec(),
        ));
        rest = &rest[len..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn archive(build: impl FnOnce(&mut Writer<Vec<u8>>)) -> Vec<u8> {
        let mut writer = Writer::new(Vec::new());
        build(&mut writer);
        writer.finish().unwrap()
    }

    fn entries(bytes: &[u8]) -> anyhow::Result<Vec<(Header, Vec<u8>)>> {
        let mut reader = Reader::new(bytes, Some(bytes.len() as u64));
        let mut out = Vec::new();
        while let Some(header) = reader.next_header()? {
            let mut data = Vec::new();
            reader.copy_data(&mut data)?;
            out.push((header, data));
        }
        Ok(out)
    }

    #[test]
    fn what_is_written_reads_back() {
        let long = format!("recordings/machines/{}/x.cast", "m".repeat(120));
        let bytes = archive(|w| {
            w.directory("config", 0o700, 1_700_000_000).unwrap();
            w.file(
                "config/main.yaml",
                0o600,
                1_700_000_001,
                5,
                &mut &b"hello"[..],
            )
            .unwrap();
            w.file(&long, 0o640, 7, 3, &mut &b"abc"[..]).unwrap();
            w.file("empty", 0o600, 7, 0, &mut &b""[..]).unwrap();
        });
        assert_eq!(bytes.len() % BLOCK as usize, 0);
        let read = entries(&bytes).unwrap();
        let names: Vec<&str> = read.iter().map(|(h, _)| h.path.as_str()).collect();
        assert_eq!(
            names,
            ["config/", "config/main.yaml", long.as_str(), "empty"]
        );
        assert!(read[0].0.is_dir());
        assert_eq!(read[0].0.mode, 0o700);
        assert_eq!(read[1].0.mode, 0o600);
        assert_eq!(read[1].0.mtime, 1_700_000_001);
        assert_eq!(read[1].1, b"hello");
        assert_eq!(read[2].1, b"abc");
        assert_eq!(read[2].0.mode, 0o640);
        assert!(read[3].1.is_empty());
    }

    #[test]
    fn pax_lengths_count_their_own_digits() {
        for len in [1, 5, 90, 94, 95, 96, 990, 994, 995, 996] {
            let value = "v".repeat(len);
            let record = pax_record("path", &value);
            let (digits, _) = record.split_once(' ').unwrap();
            assert_eq!(digits.parse::<usize>().unwrap(), record.len(), "{record}");
        }
    }

    #[test]
    fn a_short_file_is_an_error_not_a_short_entry() {
        let mut writer = Writer::new(Vec::new());
        let err = writer
            .file("x", 0o600, 0, 10, &mut &b"abc"[..])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn damage_and_truncation_are_refused() {
        let bytes = archive(|w| {
            w.file("a", 0o600, 0, 600, &mut &[7_u8; 600][..]).unwrap();
        });
        let mut damaged = bytes.clone();
        damaged[10] ^= 1;
        let err = entries(&damaged).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        // Cut in the data: the entry claims more than is left.
        let err = entries(&bytes[..700]).unwrap_err().to_string();
        assert!(err.contains("more than the"), "{err}");
        // Cut before the end-of-archive block.
        let err = entries(&bytes[..1536]).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        // Without a known length, the cut is found while reading.
        let mut reader = Reader::new(&bytes[..700], None);
        reader.next_header().unwrap();
        let err = reader.copy_data(&mut io::sink()).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn numbers_in_octal_and_base_256() {
        assert_eq!(number(b"0000644\0").unwrap(), 0o644);
        assert_eq!(number(b"   755 \0").unwrap(), 0o755);
        assert_eq!(number(b"\0\0\0\0").unwrap(), 0);
        let mut big = [0_u8; 12];
        big[0] = 0x80;
        big[7] = 0x19; // 0x19 << 32 = 100 GiB
        assert_eq!(number(&big).unwrap(), 100 << 30);
        assert!(number(b"12x4\0").is_err());
    }

    #[test]
    fn a_huge_file_gets_a_pax_size() {
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out);
        writer
            .header("big", b'0', 0o600, MAX_OCTAL_SIZE + 1, 0)
            .unwrap();
        let mut reader = Reader::new(&out[..], None);
        let header = reader.next_header().unwrap().unwrap();
        assert_eq!(header.path, "big");
        assert_eq!(header.size, MAX_OCTAL_SIZE + 1);
    }
}
