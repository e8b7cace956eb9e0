//! The fuzz harness's body (fuzz/fuzz_targets/log_reader.rs) and the corpus
//! replay test share this: read any bytes as a segment, decode every interval,
//! and check that what the reader reports lies inside the input. The same bytes
//! are also read as a segment whose records are the input split at 0xF7 bytes,
//! each framed with a valid CRC, so the fuzzer reaches the record decoders
//! without having to forge CRC-32C.
use std::path::Path;

use super::decode;
use super::reader::{Event, visit_bytes};
use super::record::FORMAT_VERSION;
use crate::sinks::frame;

/// Separates records in the second reading of the input.
const RECORD_SEPARATOR: u8 = 0xf7;

/// Panics only on a reader bug (a panic inside it, or a report outside `data`).
pub fn check(data: &[u8]) {
    read(data);
    let mut framed = Vec::with_capacity(data.len() + 64);
    frame::write_preamble(&mut framed, FORMAT_VERSION);
    for payload in data.split(|b| *b == RECORD_SEPARATOR) {
        let start = frame::begin_frame(&mut framed);
        framed.extend_from_slice(payload);
        // An empty payload is refused and removed: fine.
        let _ = frame::finish_frame(&mut framed, start);
    }
    read(&framed);
}

fn read(data: &[u8]) {
    let len = data.len() as u64;
    let mut last_offset = 0u64;
    let result = visit_bytes(Path::new("fuzz"), data, 0, len, &mut |event| match event {
        Event::Interval {
            offset,
            record,
            state,
        } => {
            assert!(
                offset >= last_offset && offset < len,
                "interval offset {offset} of {len}"
            );
            last_offset = offset;
            if let Ok(interval) = decode::to_interval(record, state) {
                assert_eq!(interval.processes.len(), record.processes.len());
            }
        }
        Event::Notice { notice, .. } => {
            assert!(
                notice.offset <= len,
                "notice offset {} of {len}",
                notice.offset
            );
            last_offset = last_offset.max(notice.offset);
        }
        _ => {}
    });
    if let Err(e) = result {
        assert!(!e.to_string().is_empty());
    }
}
