//! The log writer on a full file system (a 512 KiB tmpfs this test mounts; needs
//! root): a clear error, no segment left with a partial record, and writing
//! resumes once space is freed.
use std::path::Path;

use agent::model::Interval;
use agent::sinks::log::synth::{Synth, Workload};
use agent::sinks::log::{FsyncPolicy, LogOptions, LogWriter, read_intervals, segments};
use agent::sinks::{Sink, SinkError};

mod support;
use support::Tmpfs;

fn read_back(dir: &Path) -> Vec<Interval> {
    let mut out = Vec::new();
    let notices = read_intervals(&[dir.to_path_buf()], &mut |i| out.push(i)).unwrap();
    assert!(
        notices.is_empty(),
        "a segment was left damaged: {notices:?}"
    );
    out
}

#[test]
fn disk_full_is_a_clear_error_damages_nothing_and_writing_resumes() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _fs = Tmpfs::mount(&mnt, "512k");
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![1u8; 192 << 10]).unwrap();
    let log = mnt.join("log");
    let mut opts = LogOptions::new(&log);
    opts.fsync = FsyncPolicy::Always;
    opts.rotate_bytes = 64 << 10;
    let mut writer = LogWriter::open(opts).unwrap();
    let mut synth = Synth::new(Workload::new(60));
    let mut written = Vec::new();
    let err = loop {
        assert!(written.len() < 10_000, "512 KiB never filled up");
        let interval = synth.next_interval();
        match writer.write(&interval) {
            Ok(()) => written.push(interval),
            Err(e) => break e,
        }
    };
    let text = err.to_string();
    assert!(matches!(err, SinkError::DiskFull { .. }), "{err:?}");
    assert!(
        text.contains("no space left") && text.contains(log.to_str().unwrap()),
        "{text}"
    );
    let energies =
        |v: &[Interval]| -> Vec<u64> { v.iter().map(|i| i.system.cpu_joules.to_bits()).collect() };
    assert_eq!(
        energies(&read_back(&log)),
        energies(&written),
        "every acknowledged interval, nothing else"
    );

    // Still full: the same clear error, and no empty or partial segment is left.
    let segments_before = segments::list(&log).unwrap().len();
    let again = writer.write(&synth.next_interval()).unwrap_err();
    assert!(matches!(again, SinkError::DiskFull { .. }), "{again:?}");
    assert_eq!(segments::list(&log).unwrap().len(), segments_before);
    assert_eq!(energies(&read_back(&log)), energies(&written));

    std::fs::remove_file(&filler).unwrap();
    for _ in 0..3 {
        let interval = synth.next_interval();
        writer
            .write(&interval)
            .expect("writing resumes once space is freed");
        written.push(interval);
    }
    writer.close().unwrap();
    assert_eq!(energies(&read_back(&log)), energies(&written));
}
