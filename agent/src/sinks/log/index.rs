//! Random access to a log, for replay: one pass records where each interval
//! record is and when it ended (24 bytes an interval) and keeps each segment's
//! process metadata; an Interval is then read back on demand from its offset.
//! A segment's metadata only grows (a change gets a new id), so the state at its
//! end decodes every interval in it. Damage is reported as by the reader.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::decode::{self, SegmentState};
use super::reader::{Event, LogError, Notice, NoticeKind, visit_bytes};
use super::record::{self, Record};
use super::segments;
use crate::model::Interval;
use crate::report::end_time;
use crate::sinks::frame::{self, PreambleError};

/// Where one interval is.
#[derive(Clone, Copy, Debug)]
struct Entry {
    end: SystemTime,
    segment: u32,
    /// Offset of the record's frame in its file.
    offset: u64,
}

struct Segment {
    path: PathBuf,
    file: File,
    state: SegmentState,
}

/// Every interval of a set of log inputs, in order.
pub struct LogIndex {
    segments: Vec<Segment>,
    entries: Vec<Entry>,
}

/// An interval that could not be read back (the file changed under us).
#[derive(Debug, thiserror::Error)]
#[error("{}: the interval at byte {offset}: {why}", path.display())]
pub struct ReadBackError {
    pub path: PathBuf,
    pub offset: u64,
    pub why: String,
}

impl LogIndex {
    /// Indexes the inputs (segment files or directories); damage is returned as
    /// notices, with the file it is in.
    pub fn open(inputs: &[PathBuf]) -> Result<(LogIndex, Vec<(PathBuf, Notice)>), LogError> {
        let mut index = LogIndex {
            segments: Vec::new(),
            entries: Vec::new(),
        };
        let mut notices = Vec::new();
        for (path, explicit) in segments::expand(inputs)? {
            let io = |source| LogError::Io {
                path: path.clone(),
                source,
            };
            let bytes = std::fs::read(&path).map_err(io)?;
            let file = File::open(&path).map_err(io)?;
            match index.add(&path, file, &bytes, &mut notices) {
                Ok(()) => {}
                Err(e @ (PreambleError::Empty | PreambleError::Short(_))) => {
                    notices.push(no_header(&path, &e));
                }
                Err(PreambleError::BadMagic) if !explicit => {
                    notices.push(no_header(&path, &PreambleError::BadMagic));
                }
                Err(source) => return Err(LogError::Format { path, source }),
            }
        }
        Ok((index, notices))
    }

    fn add(
        &mut self,
        path: &Path,
        file: File,
        bytes: &[u8],
        notices: &mut Vec<(PathBuf, Notice)>,
    ) -> Result<(), PreambleError> {
        let segment = self.segments.len() as u32;
        let entries = &mut self.entries;
        let state = visit_bytes(path, bytes, 0, 0, &mut |event| match event {
            Event::Interval { offset, record, .. } => match end_time(&record.ts) {
                Some(end) => entries.push(Entry {
                    end,
                    segment,
                    offset,
                }),
                None => {
                    let error = "its end time cannot be read".to_string();
                    let kind = NoticeKind::Undecodable { error };
                    notices.push((path.to_path_buf(), Notice { offset, kind }));
                }
            },
            Event::Notice { path, notice } => notices.push((path.to_path_buf(), notice)),
            _ => {}
        })?;
        self.segments.push(Segment {
            path: path.to_path_buf(),
            file,
            state,
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When interval `i` ended.
    pub fn end(&self, i: usize) -> Option<SystemTime> {
        self.entries.get(i).map(|e| e.end)
    }

    /// The first interval ending at or after `at` (the last one if none does).
    pub fn find(&self, at: SystemTime) -> usize {
        let i = self.entries.partition_point(|e| e.end < at);
        i.min(self.entries.len().saturating_sub(1))
    }

    /// Interval `i`, read back from its file.
    pub fn interval(&self, i: usize) -> Result<Interval, ReadBackError> {
        let entry = self.entries.get(i).ok_or_else(|| ReadBackError {
            path: PathBuf::new(),
            offset: 0,
            why: format!("no interval {i}"),
        })?;
        let segment = &self.segments[entry.segment as usize];
        let fail = |why: String| ReadBackError {
            path: segment.path.clone(),
            offset: entry.offset,
            why,
        };
        let mut header = [0u8; frame::FRAME_HEADER_LEN];
        segment
            .file
            .read_exact_at(&mut header, entry.offset)
            .map_err(|e| fail(e.to_string()))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut payload = header.to_vec();
        payload.resize(frame::FRAME_HEADER_LEN + len.min(frame::MAX_PAYLOAD), 0);
        segment
            .file
            .read_exact_at(&mut payload[frame::FRAME_HEADER_LEN..], entry.offset + 8)
            .map_err(|e| fail(e.to_string()))?;
        let mut frame = payload.as_slice();
        let mut body = Vec::new();
        frame::read_frame(&mut frame, &mut body).map_err(|e| fail(e.to_string()))?;
        match record::decode(&body) {
            Ok(Record::Interval(record)) => {
                decode::to_interval(&record, &segment.state).map_err(fail)
            }
            Ok(_) => Err(fail("not an interval record".into())),
            Err(e) => Err(fail(e.to_string())),
        }
    }
}

fn no_header(path: &Path, e: &PreambleError) -> (PathBuf, Notice) {
    let kind = NoticeKind::NoHeader {
        error: e.to_string(),
    };
    (path.to_path_buf(), Notice { offset: 0, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Sink;
    use crate::sinks::log::synth::{Synth, Workload};
    use crate::sinks::log::{LogOptions, LogWriter};

    #[test]
    fn every_interval_reads_back_from_its_offset_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = LogOptions::new(dir.path());
        opts.rotate_bytes = 64 << 10;
        let mut writer = LogWriter::open(opts).unwrap();
        let mut synth = Synth::new(Workload::new(80));
        let mut written = Vec::new();
        for _ in 0..120 {
            let mut interval = synth.next_interval();
            for p in &mut interval.processes {
                (p.joules_total, p.gco2_total) = (0.0, 0.0);
            }
            writer.write(&interval).unwrap();
            written.push(interval);
        }
        writer.close().unwrap();
        let (index, notices) = LogIndex::open(&[dir.path().to_path_buf()]).unwrap();
        assert!(notices.is_empty(), "{notices:?}");
        assert!(index.segments.len() > 2, "rotated");
        assert_eq!(index.len(), written.len());
        for i in [0, 1, 57, 119, 3, 80] {
            assert_eq!(index.interval(i).unwrap(), written[i], "interval {i}");
        }
        let t = index.end(40).unwrap();
        assert_eq!(index.find(t), 40);
        assert_eq!(index.find(t + std::time::Duration::from_millis(1)), 41);
        assert_eq!(index.find(SystemTime::UNIX_EPOCH), 0);
        assert_eq!(
            index.find(SystemTime::now() + std::time::Duration::from_secs(1 << 40)),
            119
        );
    }
}
