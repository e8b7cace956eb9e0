//! Energy counters whose trust changed, and ticks that failed, one line each on
//! stderr (`greentop: WARNING: intel-rapl:0 … froze`): what batch mode and the
//! daemon say as it happens.
use std::io::Write;

use super::{Sink, SinkError};
use crate::model::Interval;

/// Writes `PREFIX: LINE` to stderr for every trust change of an interval.
pub struct TrustNotes {
    prefix: String,
}

impl TrustNotes {
    pub fn new(prefix: impl Into<String>) -> Self {
        TrustNotes {
            prefix: prefix.into(),
        }
    }
}

impl Sink for TrustNotes {
    fn name(&self) -> &str {
        "notes"
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        let mut err = std::io::stderr().lock();
        for change in interval.system.trust_changes() {
            // Not eprintln!: it panics when stderr is gone with the terminal.
            let _ = writeln!(err, "{}: {change}", self.prefix);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn missed(&mut self, error: &str) -> Result<(), SinkError> {
        let _ = writeln!(std::io::stderr(), "{}: {error}", self.prefix);
        Ok(())
    }
}
