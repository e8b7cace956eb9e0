//! Reading an agent's socket (any stream in the log's framing): the preamble, then
//! an Interval for each interval record, with the header and the metadata records
//! applied on the way. A stream has no damage to skip: a bad frame ends it.
use std::io::Read;

use crate::model::Interval;
use crate::sinks::frame::{self, PreambleError};
use crate::sinks::log::decode::{self, SegmentState};
use crate::sinks::log::reader::KNOWN_KINDS;
use crate::sinks::log::record::{self, FORMAT_VERSION, Record, SegmentHeader};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading the stream")]
    Io(#[from] std::io::Error),
    #[error("the stream's header")]
    Preamble(#[from] PreambleError),
    #[error("an undecodable record: {0}")]
    Record(String),
}

/// Intervals from a stream.
pub struct IntervalStream<R> {
    reader: R,
    state: SegmentState,
    header: Option<SegmentHeader>,
    payload: Vec<u8>,
}

impl<R: Read> IntervalStream<R> {
    /// Reads and checks the preamble.
    pub fn open(mut reader: R) -> Result<Self, StreamError> {
        let mut preamble = [0u8; frame::PREAMBLE_LEN];
        let mut got = 0;
        while got < preamble.len() {
            match reader.read(&mut preamble[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        frame::read_preamble(&preamble[..got], FORMAT_VERSION.major)?;
        Ok(IntervalStream {
            reader,
            state: SegmentState::default(),
            header: None,
            payload: Vec::new(),
        })
    }

    /// The sender's header record (its host and pid), once read.
    pub fn header(&self) -> Option<&SegmentHeader> {
        self.header.as_ref()
    }

    /// The next Interval; `None` when the stream ended cleanly.
    pub fn next_interval(&mut self) -> Result<Option<Interval>, StreamError> {
        loop {
            if !frame::read_frame(&mut self.reader, &mut self.payload)? {
                return Ok(None);
            }
            if self.payload[0] >= KNOWN_KINDS {
                continue; // a newer minor version's record kind
            }
            let record =
                record::decode(&self.payload).map_err(|e| StreamError::Record(e.to_string()))?;
            let applied = match record {
                Record::SegmentHeader(header) => {
                    self.header = Some(header);
                    Ok(())
                }
                Record::ProcessMeta(meta) => self.state.apply_meta(meta),
                Record::ThreadNames(names) => self.state.apply_names(names),
                Record::Interval(interval) => {
                    return decode::to_interval(&interval, &self.state)
                        .map(Some)
                        .map_err(StreamError::Record);
                }
            };
            applied.map_err(StreamError::Record)?;
        }
    }
}

impl<R: Read> Iterator for IntervalStream<R> {
    type Item = Result<Interval, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_interval().transpose()
    }
}
