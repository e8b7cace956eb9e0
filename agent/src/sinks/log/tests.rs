//! Round trips (Interval → records → Interval, bit for bit), compactness, and the
//! reader's recovery from damaged bytes.
use std::path::Path;

use proptest::prelude::*;

use super::convert::encode_segment;
use super::reader::{Event, RunningTotals, visit_bytes};
use super::record::SegmentHeader;
use super::synth::{Synth, Workload};
use super::{Notice, decode};
use crate::model::{Interval, JobEnergy, ProcessEnergy, SystemSummary, ThreadEnergy};

/// A whole segment holding `intervals`.
pub(crate) fn segment_bytes(intervals: &[Interval]) -> Vec<u8> {
    let header = SegmentHeader {
        seq: 1,
        ..SegmentHeader::default()
    };
    encode_segment(header, intervals).unwrap()
}

/// Everything a segment reads back as, with running totals like the pipeline's.
pub(crate) fn read_back(bytes: &[u8]) -> (Vec<Interval>, Vec<Notice>) {
    let (mut intervals, mut notices) = (Vec::new(), Vec::new());
    let mut totals = RunningTotals::default();
    visit_bytes(
        Path::new("test.gtlog"),
        bytes,
        0,
        0,
        &mut |event| match event {
            Event::Interval { record, state, .. } => {
                let mut interval = decode::to_interval(record, state).unwrap();
                totals.apply(&mut interval);
                intervals.push(interval);
            }
            Event::Notice { notice, .. } => notices.push(notice),
            _ => {}
        },
    )
    .unwrap();
    (intervals, notices)
}

/// JSON text shows every f64 bit for bit (shortest round-trip form, `-0.0` kept).
fn json(intervals: &[Interval]) -> Vec<String> {
    intervals
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect()
}

/// `n` intervals of `processes` synthetic processes, threads included.
pub(crate) fn synth_intervals(processes: usize, n: usize) -> Vec<Interval> {
    synth(processes, 1, true, n)
}

fn synth(processes: usize, packages: u32, threads: bool, n: usize) -> Vec<Interval> {
    let mut work = Workload::new(processes);
    work.packages = packages;
    work.threads = threads;
    let mut synth = Synth::new(work);
    (0..n).map(|_| synth.next_interval()).collect()
}

#[test]
fn attributed_intervals_round_trip_bit_for_bit() {
    for (packages, threads) in [(1, true), (1, false), (2, true), (2, false)] {
        let intervals = synth(40, packages, threads, 30);
        let (back, notices) = read_back(&segment_bytes(&intervals));
        assert!(notices.is_empty(), "{notices:?}");
        assert_eq!(
            json(&back),
            json(&intervals),
            "{packages} packages, threads {threads}"
        );
        assert_eq!(back, intervals);
    }
}

#[test]
fn attributed_rows_are_predicted_and_compact() {
    let intervals = synth(500, 1, true, 20);
    let bytes = segment_bytes(&intervals);
    let rows: usize = intervals.iter().map(|i| i.processes.len()).sum();
    let per_row = bytes.len() as f64 / rows as f64;
    // A day at 1 s of 500 processes in 1 GiB is 24.9 bytes per process-interval.
    assert!(per_row < 20.0, "{per_row:.1} bytes per process-interval");
}

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        (0u64..5_000_000_000).prop_map(crate::model::ns_to_s),
        -1e6f64..1e6,
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
    ]
}

fn any_thread() -> impl Strategy<Value = ThreadEnergy> {
    (
        any::<u32>(),
        "[a-z]{0,3}",
        any_f64(),
        any::<bool>(),
        any_f64(),
        any_f64(),
        any_gpu(),
    )
        .prop_map(
            |(tid, comm, cpu_seconds, exited, joules, gco2, gpu)| ThreadEnergy {
                tid,
                comm,
                cpu_seconds,
                exited,
                joules,
                gco2,
                gpu_ctx_switches: gpu.0,
                gpu_launches: gpu.1,
                gpu_sync_wait_seconds: gpu.2,
                gpu_ioctls: gpu.3,
            },
        )
}

/// GPU activity: mostly none, sometimes any counts.
fn any_gpu() -> impl Strategy<Value = (u64, u64, f64, u64)> {
    prop_oneof![
        Just((0, 0, 0.0, 0)),
        (any::<u64>(), 0u64..1000, any_f64(), any::<u64>()),
    ]
}

fn any_process() -> impl Strategy<Value = ProcessEnergy> {
    (
        (
            0u32..50,
            any::<u64>(),
            "[a-c]{1,2}",
            proptest::option::of("[a-z]{1,4}"),
        ),
        (
            any_f64(),
            proptest::collection::vec(any_f64(), 0..3),
            any::<bool>(),
        ),
        (any_f64(), any_f64(), any_f64(), any_f64(), any_f64()),
        proptest::option::of(proptest::collection::vec(any_thread(), 0..3)),
        any_gpu(),
    )
        .prop_map(|(ids, cpu, joules, threads, gpu)| ProcessEnergy {
            pid: ids.0,
            start_ns: ids.1 % 3,
            comm: ids.2,
            job: ids.3,
            cpu_seconds: cpu.0,
            cpu_seconds_by_package: cpu.1,
            exited: cpu.2,
            cpu_joules: joules.0,
            dram_joules: joules.1,
            gpu_joules: joules.2,
            joules: joules.3,
            gco2: joules.4,
            threads,
            gpu_ctx_switches: gpu.0,
            gpu_launches: gpu.1,
            gpu_sync_wait_seconds: gpu.2,
            gpu_ioctls: gpu.3,
            ..ProcessEnergy::default()
        })
}

fn any_interval() -> impl Strategy<Value = Interval> {
    (
        prop_oneof![
            Just("2026-11-22T22:10:00.123Z".to_string()),
            "[0-9TZ:.-]{0,24}"
        ],
        any_f64(),
        any_f64(),
        proptest::collection::vec(any_process(), 0..6),
        proptest::option::of("[a-z]{1,4}"),
        (any_f64(), any::<bool>()),
    )
        .prop_map(|(ts, interval_s, g, processes, job, (pue, extras))| {
            let mut system = SystemSummary {
                intensity_g_per_kwh: g,
                pue,
                region: "FRA".into(),
                ..SystemSummary::default()
            };
            if extras {
                system.dram_source = "estimated-memory".into();
                system.platform_joules = 12.5;
                system.platform_source = "perf-power".into();
                system.counters = vec![crate::model::CounterJson {
                    name: "intel-rapl:0".into(),
                    kind: "package".into(),
                    source: "rapl-powercap".into(),
                    problem: Some("frozen".into()),
                    change: Some("distrusted".into()),
                    ..Default::default()
                }];
                system.gpu_probes = Some(crate::model::GpuProbesJson {
                    mode: "ctx".into(),
                    libraries: vec!["/usr/lib/libcuda.so.1 (17 entry points)".into()],
                    dropped_hits: 3,
                    ..Default::default()
                });
                system.gpu_split = vec![crate::model::GpuSplitJson {
                    index: 0,
                    split_by: "ebpf-sync-wait".into(),
                }];
            }
            system.jobs = match job {
                Some(job) => vec![JobEnergy {
                    job,
                    ..JobEnergy::default()
                }],
                None => crate::interval::job_rows(&processes),
            };
            Interval {
                ts,
                interval_s,
                system,
                processes,
            }
        })
}

/// The running totals the reader recomputes, applied to the originals.
fn with_totals(mut intervals: Vec<Interval>) -> Vec<Interval> {
    let mut totals = RunningTotals::default();
    intervals.iter_mut().for_each(|i| totals.apply(i));
    intervals
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn any_intervals_round_trip_bit_for_bit(intervals in proptest::collection::vec(any_interval(), 1..4)) {
        let intervals = with_totals(intervals);
        let (back, notices) = read_back(&segment_bytes(&intervals));
        prop_assert!(notices.is_empty(), "{:?}", notices);
        prop_assert_eq!(json(&back), json(&intervals));
    }
}
