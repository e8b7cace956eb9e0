//! The writer on a real directory: file mode, restart, rotation, retention, and
//! everything written read back in order.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::segments::{self, Retention};
use super::tests::synth_intervals;
use super::{FsyncPolicy, LogOptions, LogWriter, read_intervals};
use crate::model::Interval;
use crate::sinks::Sink;

fn write_all(opts: &LogOptions, intervals: &[Interval]) -> LogWriter {
    let mut writer = LogWriter::open(opts.clone()).unwrap();
    for interval in intervals {
        writer.write(interval).unwrap();
    }
    writer.flush().unwrap();
    writer
}

fn read_dir(dir: &Path) -> Vec<Interval> {
    let mut out = Vec::new();
    let notices = read_intervals(&[dir.to_path_buf()], &mut |i| out.push(i)).unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    out
}

fn seqs(dir: &Path) -> Vec<u64> {
    segments::list(dir)
        .unwrap()
        .iter()
        .filter_map(|f| f.seq)
        .collect()
}

/// Energies without the running totals, which restart with each reader.
fn energies(intervals: &[Interval]) -> Vec<(String, Vec<u64>)> {
    intervals
        .iter()
        .map(|i| {
            let bits = i.processes.iter().map(|p| p.joules.to_bits()).collect();
            (i.ts.clone(), bits)
        })
        .collect()
}

#[test]
fn segments_are_0640_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = synth_intervals(20, 10);
    let mut opts = LogOptions::new(dir.path());
    opts.fsync = FsyncPolicy::Always;
    let mut writer = write_all(&opts, &intervals);
    let path: PathBuf = writer.current_path().unwrap().to_path_buf();
    writer.close().unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "{}", path.display());
    assert_eq!(read_dir(dir.path()), intervals);
    let mut one = Vec::new();
    read_intervals(&[path], &mut |i| one.push(i)).unwrap();
    assert_eq!(one, intervals, "a segment file named alone reads the same");
}

#[test]
fn a_restarted_writer_starts_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = synth_intervals(20, 12);
    let opts = LogOptions::new(dir.path());
    drop(write_all(&opts, &intervals[..5]));
    drop(write_all(&opts, &intervals[5..]));
    assert_eq!(seqs(dir.path()), vec![1, 2]);
    assert_eq!(energies(&read_dir(dir.path())), energies(&intervals));
}

#[test]
fn rotation_by_size_and_age_keeps_every_segment_readable_alone() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = synth_intervals(30, 20);
    let mut opts = LogOptions::new(dir.path());
    opts.rotate_bytes = 4096;
    drop(write_all(&opts, &intervals));
    let files = segments::list(dir.path()).unwrap();
    assert!(files.len() > 3, "{} segments", files.len());
    let mut total = Vec::new();
    for file in &files {
        let mut part = Vec::new();
        let notices =
            read_intervals(std::slice::from_ref(&file.path), &mut |i| part.push(i)).unwrap();
        assert!(
            notices.is_empty() && !part.is_empty(),
            "{}",
            file.path.display()
        );
        total.extend(part);
    }
    assert_eq!(energies(&total), energies(&intervals));

    let aged = tempfile::tempdir().unwrap();
    let mut opts = LogOptions::new(aged.path());
    opts.rotate_age = Duration::ZERO;
    drop(write_all(&opts, &intervals[..4]));
    assert_eq!(
        seqs(aged.path()),
        vec![1, 2, 3, 4],
        "one interval per segment"
    );
}

#[test]
fn retention_by_size_deletes_the_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let intervals = synth_intervals(30, 30);
    let mut opts = LogOptions::new(dir.path());
    opts.rotate_bytes = 4096;
    opts.retention = Retention {
        max_bytes: Some(16 << 10),
        max_age: None,
    };
    let writer = write_all(&opts, &intervals);
    let files = segments::list(dir.path()).unwrap();
    let total: u64 = files.iter().map(|f| f.len).sum();
    // The limit holds when the newest segment was opened; it has grown since.
    let before_current: u64 = files[..files.len() - 1].iter().map(|f| f.len).sum();
    assert!(
        before_current <= 16 << 10,
        "{before_current} bytes in old segments"
    );
    assert!(files[0].seq > Some(1), "the oldest are gone");
    assert!(total > 0 && writer.current_path() == Some(files.last().unwrap().path.as_path()));
    let read = read_dir(dir.path());
    let tail = &intervals[intervals.len() - read.len()..];
    assert_eq!(
        energies(&read),
        energies(tail),
        "what is kept is the newest"
    );
}

#[test]
fn fsync_policies_parse() {
    for (text, policy) in [
        ("always", Some(FsyncPolicy::Always)),
        ("never", Some(FsyncPolicy::Never)),
        ("5s", Some(FsyncPolicy::Every(Duration::from_secs(5)))),
        (
            "250ms",
            Some(FsyncPolicy::Every(Duration::from_millis(250))),
        ),
        ("sometimes", None),
    ] {
        assert_eq!(text.parse::<FsyncPolicy>().ok(), policy, "{text}");
    }
}
