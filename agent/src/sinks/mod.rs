//! Sinks: where each tick's `Interval` goes. One small trait, one file per sink —
//! JSON lines (`json.rs`), the binary log (`log/`), Prometheus metrics (`metrics/`),
//! and the frame codec the log and the socket share (`frame.rs`); `totals.rs` is
//! the running sums consumers keep.
pub mod frame;
pub mod json;
pub mod log;
pub mod metrics;
pub mod notes;
pub mod queue;
pub mod socket;
pub mod totals;

use std::path::PathBuf;

use crate::model::{Interval, SinkHealthJson};

/// A consumer of Intervals. A driver hands every sink each Interval in tick order;
/// a sink that fails returns an error and is called again on the next tick.
pub trait Sink {
    /// Short name for messages (`json`, `log`, …).
    fn name(&self) -> &str;
    /// Records one interval.
    fn write(&mut self, interval: &Interval) -> Result<(), SinkError>;
    /// Pushes what is buffered to its destination (and to disk, for files).
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Flushes and releases the destination; the sink is not written to afterwards.
    fn close(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
    /// A tick failed: there is no Interval this time (the live view says why).
    fn missed(&mut self, _error: &str) -> Result<(), SinkError> {
        Ok(())
    }
    /// What the sink lost since it was last asked, for the next Interval's
    /// `system.sinks`; `None`: nothing to report.
    fn health(&mut self) -> Option<SinkHealthJson> {
        None
    }
}

/// Why a sink could not record an interval.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The file system has no room left: the interval was not recorded, nothing
    /// already recorded was damaged, and the next write tries again.
    #[error("{}: no space left on the device; the interval was not recorded (writing resumes when space is freed)", path.display())]
    DiskFull {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing to a stream (stdout, a socket) failed.
    #[error("writing {what}")]
    Stream {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding the interval: {0}")]
    Encode(String),
}

impl SinkError {
    /// An I/O error on `path`, classed as `DiskFull` when it is ENOSPC or EDQUOT.
    pub fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> SinkError {
        let full = matches!(
            source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        ) || source.kind() == std::io::ErrorKind::StorageFull;
        if full {
            SinkError::DiskFull {
                path: path.to_path_buf(),
                source,
            }
        } else {
            SinkError::Io {
                what,
                path: path.to_path_buf(),
                source,
            }
        }
    }
}
