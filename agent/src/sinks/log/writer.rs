//! The log writer: a `Sink` that appends each Interval to the current segment of a
//! log directory, rotating by size and age, deleting old segments by total size
//! and age, and syncing to disk by policy. A write that fails (a full disk) leaves
//! the segment as it was before the write and is retried in a new segment.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::convert::Encoder;
use super::record::{self, FORMAT_VERSION, Record, SegmentHeader};
use super::segments::{self, Retention};
use crate::model::Interval;
use crate::sinks::frame;
use crate::sinks::{Sink, SinkError};

/// Mode of every segment file.
pub const SEGMENT_MODE: u32 = 0o640;

/// When written data is forced to disk (fdatasync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every interval: a crash loses nothing that `write` returned.
    Always,
    /// At most this long after an interval was written.
    Every(Duration),
    /// Left to the kernel (a crash of the machine may lose its last seconds).
    Never,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;

    /// `always`, `never`, or a duration such as `5s`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            _ => humantime::parse_duration(text)
                .map(FsyncPolicy::Every)
                .map_err(|_| format!("'{text}' is not always, never or a duration like 5s")),
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Every(period) => write!(f, "{}", humantime::format_duration(*period)),
        }
    }
}

/// Where and how to write the log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogOptions {
    pub dir: PathBuf,
    /// A segment is closed once it holds this many bytes.
    pub rotate_bytes: u64,
    /// A segment is closed once it is this old.
    pub rotate_age: Duration,
    pub retention: Retention,
    pub fsync: FsyncPolicy,
}

impl LogOptions {
    /// Defaults: 64 MiB or 1 h segments, everything kept, synced every second.
    pub fn new(dir: impl Into<PathBuf>) -> LogOptions {
        LogOptions {
            dir: dir.into(),
            rotate_bytes: 64 << 20,
            rotate_age: Duration::from_secs(3600),
            retention: Retention::default(),
            fsync: FsyncPolicy::Every(Duration::from_secs(1)),
        }
    }
}

struct OpenSegment {
    file: File,
    path: PathBuf,
    /// Bytes known to be whole on disk: the end of the last complete write.
    len: u64,
    opened: Instant,
    last_sync: Instant,
    unsynced: bool,
    intervals: u64,
    encoder: Encoder,
}

/// Writes Intervals to segments in `LogOptions::dir`.
pub struct LogWriter {
    opts: LogOptions,
    host: String,
    next_seq: u64,
    segment: Option<OpenSegment>,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Creates the directory if needed and opens a new segment (a restarted writer
    /// never appends to an old one).
    pub fn open(opts: LogOptions) -> Result<LogWriter, SinkError> {
        std::fs::create_dir_all(&opts.dir)
            .map_err(|e| SinkError::io("creating log directory", &opts.dir, e))?;
        let existing = segments::list(&opts.dir)
            .map_err(|e| SinkError::io("listing log directory", &opts.dir, e))?;
        let next_seq = existing.iter().filter_map(|f| f.seq).max().unwrap_or(0) + 1;
        let mut writer = LogWriter {
            opts,
            host: hostname(),
            next_seq,
            segment: None,
            buf: Vec::with_capacity(64 << 10),
        };
        writer.open_segment()?;
        Ok(writer)
    }

    pub fn options(&self) -> &LogOptions {
        &self.opts
    }

    /// The segment being written, if one is open.
    pub fn current_path(&self) -> Option<&Path> {
        self.segment.as_ref().map(|s| s.path.as_path())
    }

    fn open_segment(&mut self) -> Result<(), SinkError> {
        let now = SystemTime::now();
        let path = self
            .opts
            .dir
            .join(segments::segment_name(self.next_seq, now));
        let header = Record::SegmentHeader(SegmentHeader {
            seq: self.next_seq,
            created_unix_ms: now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            host: self.host.clone(),
            writer_version: env!("CARGO_PKG_VERSION").to_string(),
            writer_pid: std::process::id(),
        });
        self.buf.clear();
        frame::write_preamble(&mut self.buf, FORMAT_VERSION);
        record::append(&mut self.buf, &header).map_err(SinkError::Encode)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SEGMENT_MODE)
            .open(&path)
            .map_err(|e| SinkError::io("creating log segment", &path, e))?;
        let written = file
            .set_permissions(std::fs::Permissions::from_mode(SEGMENT_MODE))
            .and_then(|()| file.write_all(&self.buf))
            .and_then(|()| self.sync_new(&file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(SinkError::io("writing log segment header", &path, e));
        }
        self.next_seq += 1;
        let now_mono = Instant::now();
        self.segment = Some(OpenSegment {
            file,
            len: self.buf.len() as u64,
            path,
            opened: now_mono,
            last_sync: now_mono,
            unsynced: false,
            intervals: 0,
            encoder: Encoder::default(),
        });
        self.apply_retention();
        Ok(())
    }

    /// A new segment's data and directory entry, unless the policy is `never`.
    fn sync_new(&self, file: &File) -> std::io::Result<()> {
        if self.opts.fsync == FsyncPolicy::Never {
            return Ok(());
        }
        file.sync_data()?;
        File::open(&self.opts.dir)?.sync_all()
    }

    fn apply_retention(&self) {
        let retention = self.opts.retention;
        if retention == Retention::default() {
            return;
        }
        let keep = self.current_path();
        match segments::enforce(&self.opts.dir, retention, keep, SystemTime::now()) {
            Ok(removed) => {
                for path in removed {
                    tracing::info!("log retention: deleted {}", path.display());
                }
            }
            Err(e) => tracing::warn!("log retention in {}: {e}", self.opts.dir.display()),
        }
    }

    fn rotation_due(&self) -> bool {
        self.segment.as_ref().is_some_and(|s| {
            s.intervals > 0
                && (s.len >= self.opts.rotate_bytes || s.opened.elapsed() >= self.opts.rotate_age)
        })
    }

    /// Syncs and closes the current segment.
    fn finish_segment(&mut self) -> Result<(), SinkError> {
        let Some(mut segment) = self.segment.take() else {
            return Ok(());
        };
        sync(&mut segment)
    }
}

fn sync(segment: &mut OpenSegment) -> Result<(), SinkError> {
    if segment.unsynced {
        segment
            .file
            .sync_data()
            .map_err(|e| SinkError::io("syncing log segment", &segment.path, e))?;
        segment.unsynced = false;
        segment.last_sync = Instant::now();
    }
    Ok(())
}

impl Sink for LogWriter {
    fn name(&self) -> &str {
        "log"
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        if self.rotation_due() {
            self.finish_segment()?;
        }
        if self.segment.is_none() {
            self.open_segment()?;
        }
        let Some(segment) = self.segment.as_mut() else {
            return Err(SinkError::Encode("no open segment".into()));
        };
        self.buf.clear();
        if let Err(e) = segment.encoder.encode(interval, &mut self.buf) {
            // The encoder may have recorded metadata that was never written.
            self.segment = None;
            return Err(SinkError::Encode(e));
        }
        if let Err(e) = segment.file.write_all(&self.buf) {
            let err = SinkError::io("writing log segment", &segment.path, e);
            // Cut the partial write off, so the segment ends on a whole record, and
            // continue in a fresh segment (its metadata starts again).
            let restored = segment
                .file
                .set_len(segment.len)
                .and_then(|()| segment.file.sync_data());
            if let Err(e) = restored {
                tracing::warn!("could not truncate {}: {e}", segment.path.display());
            }
            self.segment = None;
            return Err(err);
        }
        segment.len += self.buf.len() as u64;
        segment.intervals += 1;
        segment.unsynced = true;
        let due = match self.opts.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Every(period) => segment.last_sync.elapsed() >= period,
            FsyncPolicy::Never => false,
        };
        if due {
            sync(segment)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        match self.segment.as_mut() {
            Some(segment) => sync(segment),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.finish_segment()
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.opts.fsync != FsyncPolicy::Never
            && let Err(e) = self.finish_segment()
        {
            tracing::warn!("closing the log: {e}");
        }
    }
}

/// This machine's name, for segment headers.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}
