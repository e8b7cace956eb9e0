//! Estimated memory energy split by resident memory: hand-computed cases per policy,
//! and the books balanced for any resident sizes.
use proptest::prelude::*;

use super::super::tests::{close, find, memory_reading, of, process, sample};
use super::*;
use crate::attribution::{Calibration, attribute_with_memory};

const GIB: u64 = 1 << 30;
const S: u64 = 1_000_000_000;

#[test]
fn each_policy_splits_memory_by_resident_share() {
    // 16 GiB installed, 6 J. A holds 4 GiB (threads ran 3 s and 1 s), B 2 GiB, C
    // exited (nothing resident); processes that did not run are not in the sample.
    let s = sample(
        &[0],
        4,
        vec![
            process(10, &[&[3 * S], &[S]]),
            process(20, &[&[S / 2]]),
            process(30, &[&[S / 4]]),
        ],
    );
    let resident = Resident {
        by_pid: [(10, 4 * GIB), (20, 2 * GIB)].into(),
        total_bytes: 16 * GIB,
    };
    let e = memory_reading(6.0);
    // (policy, A, B, idle)
    for (policy, a, b, idle) in [
        (IdlePolicy::Exclude, 1.5, 0.75, 3.75),
        (IdlePolicy::Baseline, 1.5, 0.75, 3.75),
        (IdlePolicy::Share, 4.0, 2.0, 0.0),
    ] {
        let out = attribute_with_memory(
            &s,
            Some(&e),
            None,
            policy,
            &Calibration::default(),
            &resident,
        );
        let got = |pid: u32| find(&out, pid).map_or(0.0, |p| p.dram_j);
        assert!(
            close(got(10), a) && close(got(20), b),
            "{policy:?}: {} {}",
            got(10),
            got(20)
        );
        assert_eq!(got(30), 0.0);
        assert!(
            close(out.dram.idle_j, idle),
            "{policy:?} idle {}",
            out.dram.idle_j
        );
        assert!(out.dram.residual_j.abs() < 1e-12);
        assert_eq!(out.cpu.measured_j, 0.0, "memory is not CPU energy");
        // Within A, by CPU time: 3 : 1.
        let threads: Vec<f64> = of(&out, 10).threads.iter().map(|t| t.dram_j).collect();
        assert!(
            close(threads[0], 0.75 * a) && close(threads[1], 0.25 * a),
            "{threads:?}"
        );
    }
    // Shared pages make Σ RSS exceed MemTotal: the denominator grows, idle stays ≥ 0.
    let crowded = Resident {
        by_pid: [(10, 12 * GIB), (20, 8 * GIB)].into(),
        total_bytes: 16 * GIB,
    };
    let out = attribute_with_memory(
        &s,
        Some(&e),
        None,
        IdlePolicy::Exclude,
        &Calibration::default(),
        &crowded,
    );
    assert!(close(of(&out, 10).dram_j, 3.6) && close(out.dram.idle_j, 0.0));
    // Nothing known: all of it idle.
    let out = crate::attribution::attribute(
        &s,
        Some(&e),
        None,
        IdlePolicy::Share,
        &Calibration::default(),
    );
    assert!(close(out.dram.idle_j, 6.0) && close(out.dram.measured_j, 6.0));
}

proptest! {
    #[test]
    fn books_balance_for_any_resident_memory(
        rss_gib in prop::collection::vec(0u64..64, 0..=8),
        ns in prop::collection::vec(0u64..=S, 0..=8),
        total_gib in 0u64..128,
        joules in 0.0f64..100.0,
        share in any::<bool>(),
    ) {
        let processes = ns.iter().enumerate().map(|(i, ns)| process(i as u32 + 1, &[&[*ns], &[ns / 3]])).collect();
        let s = sample(&[0], 2, processes);
        let resident = Resident {
            by_pid: rss_gib.iter().enumerate().map(|(i, g)| (i as u32 + 1, g * GIB)).collect(),
            total_bytes: total_gib * GIB,
        };
        let policy = if share { IdlePolicy::Share } else { IdlePolicy::Exclude };
        let out = attribute_with_memory(&s, Some(&memory_reading(joules)), None, policy, &Calibration::default(), &resident);
        let b = out.dram;
        let scale = b.measured_j.max(1.0);
        prop_assert!(b.residual_j.abs() <= 1e-9 * scale, "residual {}", b.residual_j);
        prop_assert!(b.idle_j >= -1e-9 * scale, "idle {}", b.idle_j);
        let processes: f64 = out.processes.values().map(|p| p.dram_j).sum();
        prop_assert!((processes + b.idle_j - b.measured_j).abs() <= 1e-9 * scale);
    }
}
