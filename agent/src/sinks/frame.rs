//! The frame codec shared by the binary log and the socket: a preamble
//! (`"GTOPLOG\0"` + u16 version) then length-prefixed, CRC-checked frames
//! `[u32 len LE][u32 crc32c LE][payload]`. The scanner never panics on any input:
//! it yields each valid frame and reports damaged byte ranges with their offsets,
//! resuming at the next offset where a whole frame checks out. Byte by byte in
//! docs/log-format.md.

/// First 8 bytes of every log segment and socket stream.
pub const MAGIC: [u8; 8] = *b"GTOPLOG\0";
/// Magic plus the u16 version.
pub const PREAMBLE_LEN: usize = 10;
/// `len` and `crc` before each payload.
pub const FRAME_HEADER_LEN: usize = 8;
/// Largest payload a reader accepts (and a writer produces).
pub const MAX_PAYLOAD: usize = 16 << 20;

/// Format version, stored as `major << 8 | minor`. A reader reads every major it
/// knows and refuses newer majors; a newer minor of a known major only appends
/// fields at the end of payloads or adds record kinds, which older readers skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
}

impl Version {
    pub fn from_u16(raw: u16) -> Version {
        let [major, minor] = raw.to_be_bytes();
        Version { major, minor }
    }

    pub fn to_u16(self) -> u16 {
        u16::from_be_bytes([self.major, self.minor])
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a byte string does not start a log this reader can read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PreambleError {
    #[error("empty: no greentop log header")]
    Empty,
    #[error("only {0} bytes: the greentop log header is cut short")]
    Short(usize),
    #[error("not a greentop log (the first 8 bytes are not \"GTOPLOG\\0\")")]
    BadMagic,
    #[error(
        "log format {found} is newer than this greentop reads (up to {supported_major}.x): upgrade greentop to read it"
    )]
    Newer { found: Version, supported_major: u8 },
}

/// Appends the magic and the version.
pub fn write_preamble(out: &mut Vec<u8>, version: Version) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_u16().to_le_bytes());
}

/// Checks the magic and returns the version, refusing majors above `max_major`.
pub fn read_preamble(bytes: &[u8], max_major: u8) -> Result<Version, PreambleError> {
    match bytes.len() {
        0 => return Err(PreambleError::Empty),
        n if n < PREAMBLE_LEN => {
            return if MAGIC.starts_with(&bytes[..n.min(MAGIC.len())]) {
                Err(PreambleError::Short(n))
            } else {
                Err(PreambleError::BadMagic)
            };
        }
        _ => {}
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(PreambleError::BadMagic);
    }
    let version = Version::from_u16(u16::from_le_bytes([bytes[8], bytes[9]]));
    if version.major > max_major {
        return Err(PreambleError::Newer {
            found: version,
            supported_major: max_major,
        });
    }
    Ok(version)
}

/// Reserves a frame header in `out`; encode the payload after it, then call
/// `finish_frame` with the returned start.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    start
}

/// A payload the format cannot carry.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("frame payload of {0} bytes is outside 1..={MAX_PAYLOAD}")]
pub struct FrameTooLarge(pub usize);

/// Fills in the header of the frame begun at `start`: length and CRC. On error the
/// frame is removed from `out`.
pub fn finish_frame(out: &mut Vec<u8>, start: usize) -> Result<(), FrameTooLarge> {
    let len = out.len() - start - FRAME_HEADER_LEN;
    if len == 0 || len > MAX_PAYLOAD {
        out.truncate(start);
        return Err(FrameTooLarge(len));
    }
    let len_le = (len as u32).to_le_bytes();
    let crc = frame_crc(len_le, &out[start + FRAME_HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&len_le);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// CRC-32C (Castagnoli) of the length field followed by the payload.
fn frame_crc(len_le: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_le), payload)
}

/// Reads the next frame of a stream (a socket) into `payload`. `Ok(false)`: the
/// stream ended cleanly, before a frame began. A stream has no damage to skip: a
/// bad length or CRC, or an end inside a frame, is an error.
pub fn read_frame(stream: &mut impl std::io::Read, payload: &mut Vec<u8>) -> std::io::Result<bool> {
    use std::io::{Error, ErrorKind};
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut got = 0;
    while got < header.len() {
        match stream.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len_le = [header[0], header[1], header[2], header[3]];
    let len = u32::from_le_bytes(len_le) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        let why = FrameTooLarge(len).to_string();
        return Err(Error::new(ErrorKind::InvalidData, why));
    }
    payload.resize(len, 0);
    stream.read_exact(payload)?;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if frame_crc(len_le, payload) != crc {
        return Err(Error::new(ErrorKind::InvalidData, "frame CRC mismatch"));
    }
    Ok(true)
}

/// A byte range the scanner could not read as frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Offset of the first bad byte, from the start of the scanned bytes' origin.
    pub offset: u64,
    pub len: u64,
    pub kind: DamageKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageKind {
    /// Bytes skipped before a valid frame: a corrupt record.
    Corrupt,
    /// Bytes at the end with no valid frame after them: a torn write (a crash).
    Torn,
}

/// One step of a scan.
#[derive(Debug, PartialEq)]
pub enum Scanned<'a> {
    Frame { offset: u64, payload: &'a [u8] },
    Damage(Damage),
}

/// Walks frames in `bytes` (the part of a segment or stream after its preamble).
pub struct FrameScanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes[0]` in its origin (file), for reports.
    base: u64,
    /// Payloads must start with a byte below this (the record kind); prunes resync.
    max_first_byte: u8,
}

impl<'a> FrameScanner<'a> {
    pub fn new(bytes: &'a [u8], base: u64, max_first_byte: u8) -> Self {
        FrameScanner {
            bytes,
            pos: 0,
            base,
            max_first_byte,
        }
    }

    /// Payload length of a whole, CRC-valid frame at `at`, if there is one.
    fn frame_at(&self, at: usize) -> Option<usize> {
        let header = self.bytes.get(at..at.checked_add(FRAME_HEADER_LEN)?)?;
        let len_le = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes(len_le) as usize;
        if len == 0 || len > MAX_PAYLOAD {
            return None;
        }
        let body = at + FRAME_HEADER_LEN;
        let payload = self.bytes.get(body..body.checked_add(len)?)?;
        if payload[0] >= self.max_first_byte {
            return None;
        }
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        (frame_crc(len_le, payload) == crc).then_some(len)
    }

    /// Bytes not yet scanned.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

impl<'a> Iterator for FrameScanner<'a> {
    type Item = Scanned<'a>;

    fn next(&mut self) -> Option<Scanned<'a>> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let at = self.pos;
        if let Some(len) = self.frame_at(at) {
            let body = at + FRAME_HEADER_LEN;
            self.pos = body + len;
            return Some(Scanned::Frame {
                offset: self.base + at as u64,
                payload: &self.bytes[body..body + len],
            });
        }
        let resume = (at + 1..self.bytes.len()).find(|&q| self.frame_at(q).is_some());
        let end = resume.unwrap_or(self.bytes.len());
        self.pos = end;
        Some(Scanned::Damage(Damage {
            offset: self.base + at as u64,
            len: (end - at) as u64,
            kind: if resume.is_some() {
                DamageKind::Corrupt
            } else {
                DamageKind::Torn
            },
        }))
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
