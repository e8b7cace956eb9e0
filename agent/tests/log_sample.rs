//! The committed sample logs decode to their committed JSON, and re-encode to the
//! same bytes: a change to the format, the encoder or the decoder shows up here and
//! in `git diff`. Each format version keeps its sample, so new readers are tested
//! on every old version.
//!
//! Regenerate the current version's sample (after a deliberate format change):
//! `GREENTOP_BLESS=1 cargo test -p greentop-agent --test log_sample`.
use std::path::{Path, PathBuf};

use agent::model::Interval;
use agent::sinks::log::convert::encode_segment;
use agent::sinks::log::read_intervals;
use agent::sinks::log::record::{FORMAT_VERSION, SegmentHeader};
use agent::sinks::log::synth::{Synth, Workload};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log")
}

fn header() -> SegmentHeader {
    SegmentHeader {
        seq: 1,
        created_unix_ms: 1_795_385_400_000,
        host: "sample-host".into(),
        writer_version: "0.1.0".into(),
        writer_pid: 4242,
    }
}

fn json_lines(intervals: &[Interval]) -> String {
    intervals
        .iter()
        .map(|i| serde_json::to_string(i).unwrap() + "\n")
        .collect()
}

fn read(path: &Path) -> Vec<Interval> {
    let mut out = Vec::new();
    let notices = read_intervals(&[path.to_path_buf()], &mut |i| out.push(i)).unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    out
}

/// Fills the fields the synthetic workload leaves at their defaults (PUE, counter
/// trust, the platform meter, GPU probes and activity), so the sample covers them.
fn with_every_field(interval: &mut Interval) {
    use agent::carbon::gco2;
    use agent::model::{CounterJson, GpuProbesJson, GpuSplitJson};
    let sys = &mut interval.system;
    sys.pue = 1.25;
    sys.ledger_health.unowned_slices = 3;
    let g = sys.intensity_g_per_kwh * sys.pue;
    let b = &sys.balance;
    sys.gco2 = gco2(b.cpu.measured_j + b.dram.measured_j + b.gpu.measured_j, g);
    sys.dram_source = "estimated-memory".into();
    sys.platform_joules = 31.5;
    sys.platform_source = "perf-power".into();
    sys.counters = vec![CounterJson {
        name: "power/energy-psys cpu 0".into(),
        kind: "psys".into(),
        source: "perf-power".into(),
        trusted: false,
        problem: Some("frozen".into()),
        note: Some("did not advance while the CPUs were busy".into()),
        change: Some("distrusted".into()),
        ..CounterJson::default()
    }];
    sys.gpu_probes = Some(GpuProbesJson {
        mode: "ctx".into(),
        libraries: vec!["/usr/lib/x86_64-linux-gnu/libcuda.so.1 (17 entry points)".into()],
        ioctl_counter: Some("tp_btf".into()),
        dropped_hits: 1,
        ..GpuProbesJson::default()
    });
    sys.gpu_split = vec![GpuSplitJson {
        index: 0,
        split_by: "ebpf-sync-wait".into(),
    }];
    for p in &mut interval.processes {
        p.gco2 = gco2(p.joules, g);
        for t in p.threads.iter_mut().flatten() {
            t.gco2 = gco2(t.joules, g);
        }
    }
    if let Some(p) = interval.processes.first_mut() {
        (p.gpu_ctx_switches, p.gpu_launches, p.gpu_ioctls) = (4, 120, 9);
        p.gpu_sync_wait_seconds = 0.012_5;
        if let Some(t) = p.threads.iter_mut().flatten().next() {
            (t.gpu_ctx_switches, t.gpu_launches, t.gpu_ioctls) = (4, 120, 9);
            t.gpu_sync_wait_seconds = 0.012_5;
        }
    }
}

#[test]
fn current_sample_decodes_to_its_json_and_reencodes_to_its_bytes() {
    let name = format!("sample-v{}.{}", FORMAT_VERSION.major, FORMAT_VERSION.minor);
    let log = fixtures().join(format!("{name}.gtlog"));
    let json = fixtures().join(format!("{name}.jsonl"));
    if std::env::var_os("GREENTOP_BLESS").is_some() {
        let mut work = Workload::new(6);
        work.churn_one_in = 4;
        let mut synth = Synth::new(work);
        let mut intervals: Vec<Interval> = (0..5).map(|_| synth.next_interval()).collect();
        with_every_field(&mut intervals[2]);
        let mut totals = agent::sinks::totals::RunningTotals::default();
        intervals.iter_mut().for_each(|i| totals.apply(i));
        std::fs::write(&log, encode_segment(header(), &intervals).unwrap()).unwrap();
        std::fs::write(&json, json_lines(&intervals)).unwrap();
    }
    let intervals = read(&log);
    assert_eq!(intervals.len(), 5);
    assert_eq!(
        json_lines(&intervals),
        std::fs::read_to_string(&json).unwrap()
    );
    let bytes = encode_segment(header(), &intervals).unwrap();
    assert!(
        bytes == std::fs::read(&log).unwrap(),
        "re-encoding {} gives other bytes: the encoder changed (bless it if deliberate)",
        log.display()
    );
}

#[test]
fn every_committed_sample_still_decodes() {
    let mut versions = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "gtlog") {
            let json = path.with_extension("jsonl");
            assert_eq!(
                json_lines(&read(&path)),
                std::fs::read_to_string(&json).unwrap(),
                "{}",
                path.display()
            );
            versions += 1;
        }
    }
    assert!(versions >= 1, "no sample logs in {}", fixtures().display());
}

#[test]
fn newer_majors_are_refused_and_newer_minors_read() {
    let sample = std::fs::read(fixtures().join("sample-v1.0.gtlog")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.gtlog");

    let mut newer_major = sample.clone();
    newer_major[8..10].copy_from_slice(&0x0200u16.to_le_bytes());
    std::fs::write(&path, &newer_major).unwrap();
    let err = read_intervals(std::slice::from_ref(&path), &mut |_| {}).unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains("x.gtlog")
            && text.contains("log format 2.0 is newer than this greentop reads"),
        "{text}"
    );

    // A newer minor may append fields to records and add record kinds.
    let mut newer_minor = sample.clone();
    newer_minor[8..10].copy_from_slice(&0x0107u16.to_le_bytes());
    let start = agent::sinks::frame::begin_frame(&mut newer_minor);
    newer_minor.extend_from_slice(&[9, 1, 2, 3]);
    agent::sinks::frame::finish_frame(&mut newer_minor, start).unwrap();
    std::fs::write(&path, &newer_minor).unwrap();
    let mut n = 0;
    let notices = read_intervals(std::slice::from_ref(&path), &mut |_| n += 1).unwrap();
    assert_eq!(n, 5);
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].1.to_string().contains("unknown kind 9"),
        "{}",
        notices[0].1
    );
}
