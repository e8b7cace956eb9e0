//! Processes are identities, not pids: a pid reused within one interval is two
//! processes, each charged for its own CPU time, memory and GPU activity, through to
//! the Interval's rows. And the same input gives the same bits on every run.
use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::energy::GpuAccounting;
use crate::energy::summary::EnergySummary;
use crate::interval::{BuildInput, CarbonContext, UserNames, build};
use crate::model::Interval;
use crate::probes::Fidelity;

const MS: u64 = 1_000_000;

/// Attribution and the Interval built from it, as the pipeline does.
fn interval(sample: &LedgerSample, attribution: &Attribution, policy: IdlePolicy) -> Interval {
    let carbon = CarbonContext {
        g_per_kwh: 100.0,
        pue: 1.0,
        region: "FR".into(),
        source: "fixed".into(),
        note: None,
    };
    build(BuildInput {
        sample,
        fidelity: &Fidelity::Procfs {
            reason: "test".into(),
        },
        energy: EnergySummary::default(),
        attribution,
        policy,
        carbon: &carbon,
        users: &UserNames::load(Path::new("/nonexistent")),
        jobs: &HashMap::new(),
        gpu_only: &[],
        threads: true,
    })
}

/// `(cpu, dram, gpu)` joules of the row of process (pid, start).
fn row(interval: &Interval, pid: u32, start_ns: u64) -> (f64, f64, f64) {
    let rows: Vec<_> = interval
        .processes
        .iter()
        .filter(|p| (p.pid, p.start_ns) == (pid, start_ns))
        .collect();
    assert_eq!(rows.len(), 1, "one row for ({pid}, {start_ns})");
    (rows[0].cpu_joules, rows[0].dram_joules, rows[0].gpu_joules)
}

fn assert_row(interval: &Interval, pid: u32, start_ns: u64, want: (f64, f64, f64)) {
    let got = row(interval, pid, start_ns);
    assert!(
        close(got.0, want.0) && close(got.1, want.1) && close(got.2, want.2),
        "({pid}, {start_ns}): got {got:?}, want {want:?}"
    );
}

/// Each domain's rows plus idle make what was measured.
fn assert_books_balance(interval: &Interval) {
    let b = &interval.system.balance;
    for (name, balance, rows) in [
        (
            "cpu",
            b.cpu,
            interval.processes.iter().map(|p| p.cpu_joules).sum::<f64>(),
        ),
        (
            "dram",
            b.dram,
            interval.processes.iter().map(|p| p.dram_joules).sum(),
        ),
        (
            "gpu",
            b.gpu,
            interval.processes.iter().map(|p| p.gpu_joules).sum(),
        ),
    ] {
        assert!(
            close(rows + balance.idle_j, balance.measured_j),
            "{name}: rows {rows} + idle {} != measured {}",
            balance.idle_j,
            balance.measured_j
        );
    }
}

/// Pid 7 is reused within the interval: the first process (started at 100, exited)
/// ran 600 ms and launched 30 GPU kernels; the second (started at 200) ran two
/// threads of 200 ms and launched 10. Pid 20 ran 500 ms.
fn reused_pid_sample() -> LedgerSample {
    let launches = |n| GpuCalls {
        launches: n,
        ..GpuCalls::default()
    };
    let first = ProcessSample {
        start_ns: 100,
        exited: true,
        gpu: launches(30),
        ..process(7, &[&[600 * MS]])
    };
    let second = ProcessSample {
        start_ns: 200,
        gpu: launches(10),
        ..process(7, &[&[200 * MS], &[200 * MS]])
    };
    let other = ProcessSample {
        start_ns: 50,
        ..process(20, &[&[500 * MS]])
    };
    sample(&[0], 2, vec![first, second, other])
}

#[test]
fn a_pid_reused_within_the_interval_is_two_processes_each_with_its_own_share() {
    let s = reused_pid_sample();
    let mut e = energy(&[
        (DomainKind::Package, 0, 15.0),
        (DomainKind::Dram, 0, 3.0),
        (DomainKind::Gpu, 0, 40.0),
    ]);
    // NVML: pid 7 holds a context now (the second process), and its accounting says
    // a pid 7 ended (the first).
    e.gpus = vec![GpuDevice {
        processes: vec![gpu_process(7, None)],
        ended: vec![GpuAccounting {
            pid: 7,
            gpu_util_pct: 50,
            ..GpuAccounting::default()
        }],
        ..GpuDevice::default()
    }];
    let policy = IdlePolicy::Share;
    let out = attribute(&s, Some(&e), Some(&e), policy, &Calibration::default());
    let interval = interval(&s, &out, policy);
    // 1.5 s busy: 15 J CPU and 3 J DRAM by CPU time; 40 J GPU by launches, 30 : 10.
    assert_row(&interval, 7, 100, (6.0, 1.2, 30.0));
    assert_row(&interval, 7, 200, (4.0, 0.8, 10.0));
    assert_row(&interval, 20, 50, (5.0, 1.0, 0.0));
    assert_books_balance(&interval);
    let second = interval
        .processes
        .iter()
        .find(|p| p.start_ns == 200)
        .and_then(|p| p.threads.as_ref())
        .expect("threads of the second process");
    let threads: Vec<(u32, f64)> = second.iter().map(|t| (t.tid, t.joules)).collect();
    assert!(
        threads.len() == 2 && threads.iter().all(|&(_, j)| close(j, 2.4)),
        "its two threads, 2 J CPU + 0.4 J DRAM each: {threads:?}"
    );
}

#[test]
fn of_a_reused_pid_only_the_live_process_holds_memory() {
    let s = reused_pid_sample();
    let e = memory_reading(8.0);
    const GIB: u64 = 1 << 30;
    let resident = Resident {
        by_pid: [(7, 4 * GIB), (20, 4 * GIB)].into(),
        total_bytes: 16 * GIB,
    };
    let policy = IdlePolicy::Exclude;
    let out = attribute_with_memory(
        &s,
        Some(&e),
        None,
        policy,
        &Calibration::default(),
        &resident,
    );
    let interval = interval(&s, &out, policy);
    // 8 J × 4 GiB / 16 GiB each for the live pid 7 and pid 20; the exited one none.
    assert_row(&interval, 7, 100, (0.0, 0.0, 0.0));
    assert_row(&interval, 7, 200, (0.0, 2.0, 0.0));
    assert_row(&interval, 20, 50, (0.0, 2.0, 0.0));
    assert!(close(interval.system.balance.dram.idle_j, 4.0));
    assert_books_balance(&interval);
}

/// Many processes whose CPU times span six orders of magnitude, so the order in which
/// their joules are added shows in the last bits.
fn crowded_sample() -> LedgerSample {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let processes = (0..400u32)
        .map(|i| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let ns = 1_000 + (seed >> 33) % 1_000 * 10u64.pow(i % 6);
            ProcessSample {
                start_ns: u64::from(i),
                ..process(1000 + i, &[&[ns], &[ns / 3 + 7]])
            }
        })
        .collect();
    sample(&[0], 64, processes)
}

#[test]
fn the_same_input_gives_bit_identical_intervals() {
    let s = crowded_sample();
    let e = energy(&[
        (DomainKind::Package, 0, 123.456_789),
        (DomainKind::Dram, 0, 7.654_321),
    ]);
    let run = || {
        let out = attribute(
            &s,
            Some(&e),
            None,
            IdlePolicy::Exclude,
            &Calibration::default(),
        );
        let mut interval = interval(&s, &out, IdlePolicy::Exclude);
        interval.ts = String::new(); // the wall clock, not a result
        serde_json::to_string(&interval).expect("serialise")
    };
    let first = run();
    for attempt in 1..20 {
        assert!(run() == first, "run {attempt} differs from the first");
    }
}
