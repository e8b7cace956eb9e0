//! Reading logs: files and directories of segments, in order, as events — each
//! interval record with its segment's metadata, and a notice for every damaged or
//! unreadable byte range with its offset. Never panics; everything before and
//! after a damaged range is recovered.
use std::fmt;
use std::path::{Path, PathBuf};

use super::decode::{self, SegmentState};
use super::record::{
    self, FORMAT_VERSION, IntervalRecord, RECORD_KIND_LIMIT, Record, SegmentHeader,
};
use super::segments;
use crate::model::Interval;
use crate::sinks::frame::{self, DamageKind, FrameScanner, PreambleError, Scanned, Version};
pub use crate::sinks::totals::RunningTotals;

/// Something in a segment that could not be read, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    /// Byte offset in the file.
    pub offset: u64,
    pub kind: NoticeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NoticeKind {
    /// Bytes that are no valid frame, followed by valid ones: skipped.
    Corrupt { len: u64 },
    /// Bytes at the end that are no whole frame: a write cut short (a crash).
    TornTail { len: u64 },
    /// A frame whose CRC is right but whose record cannot be decoded.
    Undecodable { error: String },
    /// A record kind from a newer minor version of the format: skipped.
    UnknownRecord { kind: u8 },
    /// The file does not start with a whole header (empty or cut short).
    NoHeader { error: String },
    /// An interval names a process whose metadata record was lost.
    LostMeta { id: u32 },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            NoticeKind::Corrupt { len } => write!(
                f,
                "corrupt data at byte {at}: {len} bytes skipped, reading resumed at byte {}",
                at + len
            ),
            NoticeKind::TornTail { len } => write!(
                f,
                "torn tail at byte {at}: the last {len} bytes are an incomplete record (a write cut short)"
            ),
            NoticeKind::Undecodable { error } => {
                write!(f, "unreadable record at byte {at}: {error}; skipped")
            }
            NoticeKind::UnknownRecord { kind } => write!(
                f,
                "record of unknown kind {kind} at byte {at} (a newer minor format version): skipped"
            ),
            NoticeKind::NoHeader { error } => write!(f, "{error}; nothing to read"),
            NoticeKind::LostMeta { id } => write!(
                f,
                "the interval at byte {at} names process #{id}, whose metadata was lost: shown as {}",
                decode::LOST_META
            ),
        }
    }
}

/// What a reader sees, in file order.
pub enum Event<'a> {
    /// A segment begins (its header record, if intact, follows as `Header`).
    Segment {
        path: &'a Path,
        version: Version,
    },
    Header(&'a SegmentHeader),
    Interval {
        /// Byte offset of the record's frame in the file.
        offset: u64,
        record: &'a IntervalRecord,
        state: &'a SegmentState,
    },
    Notice {
        path: &'a Path,
        notice: Notice,
    },
    /// Bytes of all inputs read so far, and their total.
    Progress {
        done: u64,
        total: u64,
    },
}

/// Inputs that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("reading {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: PreambleError,
    },
    #[error("{}: no greentop log segments (*.gtlog) in this directory", path.display())]
    NoSegments { path: PathBuf },
}

/// Intervals between progress events within a file.
const PROGRESS_EVERY: u64 = 1024;

/// Reads every input (segment files, or directories of them in segment order).
pub fn visit(inputs: &[PathBuf], visit: &mut dyn FnMut(Event<'_>)) -> Result<(), LogError> {
    let files = segments::expand(inputs)?;
    let total: u64 = files
        .iter()
        .map(|(p, _)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let mut done = 0;
    for (path, explicit) in &files {
        let bytes = std::fs::read(path).map_err(|source| LogError::Io {
            path: path.clone(),
            source,
        })?;
        match visit_bytes(path, &bytes, done, total, visit) {
            Ok(_) => {}
            Err(e @ (PreambleError::Empty | PreambleError::Short(_))) => notice(
                visit,
                path,
                0,
                NoticeKind::NoHeader {
                    error: e.to_string(),
                },
            ),
            Err(PreambleError::BadMagic) if !explicit => notice(
                visit,
                path,
                0,
                NoticeKind::NoHeader {
                    error: PreambleError::BadMagic.to_string(),
                },
            ),
            Err(source) => {
                return Err(LogError::Format {
                    path: path.clone(),
                    source,
                });
            }
        }
        done += bytes.len() as u64;
        visit(Event::Progress { done, total });
    }
    Ok(())
}

fn notice(visit: &mut dyn FnMut(Event<'_>), path: &Path, offset: u64, kind: NoticeKind) {
    visit(Event::Notice {
        path,
        notice: Notice { offset, kind },
    });
}

/// Reads one segment held in memory and returns its metadata as of its end. Fails
/// only when it is no log of a version this reader knows; damage inside is
/// reported as notices.
pub fn visit_bytes(
    path: &Path,
    bytes: &[u8],
    done_before: u64,
    total: u64,
    visit: &mut dyn FnMut(Event<'_>),
) -> Result<SegmentState, PreambleError> {
    let version = frame::read_preamble(bytes, FORMAT_VERSION.major)?;
    visit(Event::Segment { path, version });
    let mut state = SegmentState::default();
    let mut intervals = 0u64;
    let body = &bytes[frame::PREAMBLE_LEN..];
    for item in FrameScanner::new(body, frame::PREAMBLE_LEN as u64, RECORD_KIND_LIMIT) {
        let (offset, payload) = match item {
            Scanned::Frame { offset, payload } => (offset, payload),
            Scanned::Damage(d) => {
                let kind = match d.kind {
                    DamageKind::Corrupt => NoticeKind::Corrupt { len: d.len },
                    DamageKind::Torn => NoticeKind::TornTail { len: d.len },
                };
                notice(visit, path, d.offset, kind);
                continue;
            }
        };
        let kind = payload[0];
        if kind >= KNOWN_KINDS {
            notice(visit, path, offset, NoticeKind::UnknownRecord { kind });
            continue;
        }
        let applied = match record::decode(payload) {
            Err(e) => Err(e.to_string()),
            Ok(Record::SegmentHeader(header)) => {
                visit(Event::Header(&header));
                Ok(())
            }
            Ok(Record::ProcessMeta(meta)) => state.apply_meta(meta),
            Ok(Record::ThreadNames(names)) => state.apply_names(names),
            Ok(Record::Interval(record)) => {
                report_lost_meta(&record, &state, offset, path, visit);
                visit(Event::Interval {
                    offset,
                    record: &record,
                    state: &state,
                });
                intervals += 1;
                if intervals.is_multiple_of(PROGRESS_EVERY) {
                    let done = done_before + offset;
                    visit(Event::Progress { done, total });
                }
                Ok(())
            }
        };
        if let Err(error) = applied {
            notice(visit, path, offset, NoticeKind::Undecodable { error });
        }
    }
    Ok(state)
}

/// Record kinds this version knows (`Record`'s variants).
pub const KNOWN_KINDS: u8 = 4;

fn report_lost_meta(
    record: &IntervalRecord,
    state: &SegmentState,
    offset: u64,
    path: &Path,
    visit: &mut dyn FnMut(Event<'_>),
) {
    if let Some(row) = record
        .processes
        .iter()
        .find(|r| state.meta(r.meta).is_none())
    {
        notice(visit, path, offset, NoticeKind::LostMeta { id: row.meta });
    }
}

/// Every interval of the inputs as the model's `Interval`, with `joules_total`
/// and `gco2_total` summed since the first interval read (per pid and start
/// time, forgotten when the process exits), and every notice.
pub fn read_intervals(
    inputs: &[PathBuf],
    on_interval: &mut dyn FnMut(Interval),
) -> Result<Vec<(PathBuf, Notice)>, LogError> {
    let mut notices = Vec::new();
    let mut totals = RunningTotals::default();
    let mut current = PathBuf::new();
    visit(inputs, &mut |event| match event {
        Event::Segment { path, .. } => current = path.to_path_buf(),
        Event::Interval {
            offset,
            record,
            state,
        } => match decode::to_interval(record, state) {
            Ok(mut interval) => {
                totals.apply(&mut interval);
                on_interval(interval);
            }
            Err(error) => notices.push((
                current.clone(),
                Notice {
                    offset,
                    kind: NoticeKind::Undecodable { error },
                },
            )),
        },
        Event::Notice { path, notice } => notices.push((path.to_path_buf(), notice)),
        Event::Header(_) | Event::Progress { .. } => {}
    })?;
    Ok(notices)
}
