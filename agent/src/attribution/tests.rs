//! Attribution: hand-computed cases per policy and domain, and property tests that
//! the books balance for any ledger and any energies.
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::energy::{Domain, DomainEnergy, GpuDevice, GpuProcess, Provenance};
use crate::probes::GpuCalls;
use crate::probes::{CpuTime, ProcessSample, ThreadSample};

const SECOND_NS: u64 = 1_000_000_000;

/// GPU energy split by the eBPF probes' activity.
mod gpu;
/// Processes by identity (pid reuse) and repeatable sums.
mod identity;

/// A process with one thread per entry of `ns_by_package`.
pub(super) fn process(pid: u32, threads: &[&[u64]]) -> ProcessSample {
    let packages = threads.first().map_or(1, |t| t.len());
    let threads: Vec<ThreadSample> = threads
        .iter()
        .enumerate()
        .map(|(i, by_package)| ThreadSample {
            tid: pid + i as u32,
            comm: format!("t{i}"),
            on_cpu_ns: by_package.iter().sum(),
            on_cpu_ns_by_package: by_package.to_vec(),
            ..ThreadSample::default()
        })
        .collect();
    let mut by_package = vec![0; packages];
    for t in &threads {
        for (sum, ns) in by_package.iter_mut().zip(&t.on_cpu_ns_by_package) {
            *sum += ns;
        }
    }
    ProcessSample {
        tgid: pid,
        on_cpu_ns: by_package.iter().sum(),
        on_cpu_ns_by_package: by_package,
        threads,
        ..ProcessSample::default()
    }
}

/// One-second sample: `cpus_per_package` CPUs in each of `packages.len()` packages.
pub(super) fn sample(
    packages: &[u32],
    cpus_per_package: usize,
    processes: Vec<ProcessSample>,
) -> LedgerSample {
    let cpus = packages.len() * cpus_per_package;
    LedgerSample {
        interval: Duration::from_secs(1),
        cpus: vec![
            CpuTime {
                busy_ns: 0,
                idle_ns: SECOND_NS
            };
            cpus
        ],
        packages: packages.to_vec(),
        cpu_package: (0..cpus).map(|c| c / cpus_per_package).collect(),
        processes,
        health: Default::default(),
        gpu: None,
    }
}

fn energy(domains: &[(DomainKind, u32, f64)]) -> EnergyReading {
    EnergyReading {
        elapsed: Duration::from_secs(1),
        domains: domains
            .iter()
            .map(|&(kind, index, joules)| {
                let domain = Domain {
                    kind,
                    index,
                    name: format!("{kind:?}{index}"),
                };
                DomainEnergy::counted(domain, (joules * 1e6) as u64, Provenance::RaplPowercap)
            })
            .collect(),
        ..EnergyReading::default()
    }
}

/// The process with pid `pid` (these samples have one process per pid).
pub(super) fn find(out: &Attribution, pid: u32) -> Option<&ProcessJoules> {
    let mut rows = out.processes.iter().filter(|(key, _)| key.tgid == pid);
    let found = rows.next().map(|(_, p)| p);
    assert!(rows.next().is_none(), "pid {pid} is two processes");
    found
}

pub(super) fn of(out: &Attribution, pid: u32) -> &ProcessJoules {
    find(out, pid).unwrap_or_else(|| panic!("no process {pid}"))
}

/// Estimated memory energy (`estimated-memory`): split by resident memory.
pub(super) fn memory_reading(joules: f64) -> EnergyReading {
    let domain = Domain {
        kind: DomainKind::Dram,
        index: 0,
        name: "estimated memory 0".into(),
    };
    EnergyReading {
        elapsed: Duration::from_secs(1),
        domains: vec![DomainEnergy::counted(
            domain,
            (joules * 1e6) as u64,
            Provenance::EstimatedMemory,
        )],
        ..EnergyReading::default()
    }
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn each_policy_splits_one_package_as_documented() {
    // 2 CPUs, 1 s: capacity 2 CPU-s. A ran 1 CPU-s, B 0.5 CPU-s. Package 10 J.
    let s = sample(
        &[0],
        2,
        vec![process(1, &[&[SECOND_NS]]), process(2, &[&[SECOND_NS / 2]])],
    );
    let e = energy(&[(DomainKind::Package, 0, 10.0)]);
    let calibrated = Calibration {
        package_idle_w: BTreeMap::from([(0, 4.0)]),
        ..Calibration::default()
    };
    for (policy, calibration, a, b, idle) in [
        (IdlePolicy::Exclude, Calibration::default(), 5.0, 2.5, 2.5),
        (
            IdlePolicy::Share,
            Calibration::default(),
            10.0 * 2.0 / 3.0,
            10.0 / 3.0,
            0.0,
        ),
        (IdlePolicy::Baseline, calibrated, 6.0 * 2.0 / 3.0, 2.0, 4.0),
    ] {
        let out = attribute(&s, Some(&e), None, policy, &calibration);
        assert!(
            close(of(&out, 1).cpu_j, a),
            "{policy:?} A {}",
            of(&out, 1).cpu_j
        );
        assert!(
            close(of(&out, 2).cpu_j, b),
            "{policy:?} B {}",
            of(&out, 2).cpu_j
        );
        assert!(
            close(out.cpu.idle_j, idle),
            "{policy:?} idle {}",
            out.cpu.idle_j
        );
        assert!(out.cpu.residual_j.abs() < 1e-12);
        assert!(out.notes.is_empty());
    }
}

#[test]
fn baseline_without_calibration_falls_back_to_exclude_and_says_so() {
    let s = sample(&[0], 2, vec![process(1, &[&[SECOND_NS]])]);
    let out = attribute(
        &s,
        Some(&energy(&[(DomainKind::Package, 0, 10.0)])),
        None,
        IdlePolicy::Baseline,
        &Calibration::default(),
    );
    assert!(close(of(&out, 1).cpu_j, 5.0));
    assert!(
        out.notes[0].contains("greentop calibrate"),
        "{:?}",
        out.notes
    );
}

#[test]
fn sockets_are_split_separately_and_dram_follows_cpu_time() {
    // A runs only on package 0, B only on package 1 (ids 0 and 1, 2 CPUs each).
    let s = sample(
        &[0, 1],
        2,
        vec![
            process(1, &[&[SECOND_NS, 0]]),
            process(2, &[&[0, SECOND_NS / 2]]),
        ],
    );
    let e = energy(&[
        (DomainKind::Package, 0, 20.0),
        (DomainKind::Package, 1, 8.0),
        (DomainKind::Dram, 0, 4.0),
        (DomainKind::Dram, 1, 2.0),
    ]);
    let out = attribute(
        &s,
        Some(&e),
        None,
        IdlePolicy::Share,
        &Calibration::default(),
    );
    assert!(close(of(&out, 1).cpu_j, 20.0) && close(of(&out, 2).cpu_j, 8.0));
    assert!(close(of(&out, 1).dram_j, 4.0) && close(of(&out, 2).dram_j, 2.0));
    assert!(close(out.cpu.measured_j, 28.0) && close(out.dram.measured_j, 6.0));
}

#[test]
fn threads_carry_their_own_shares_and_sum_to_the_process() {
    let s = sample(
        &[0],
        1,
        vec![process(10, &[&[SECOND_NS * 3 / 4], &[SECOND_NS / 4]])],
    );
    let out = attribute(
        &s,
        Some(&energy(&[(DomainKind::Package, 0, 8.0)])),
        None,
        IdlePolicy::Exclude,
        &Calibration::default(),
    );
    let p = &of(&out, 10);
    assert_eq!(p.threads.len(), 2);
    assert!(close(p.threads[0].cpu_j, 6.0) && close(p.threads[1].cpu_j, 2.0));
    assert!(close(p.cpu_j, 8.0) && close(out.cpu.idle_j, 0.0));
}

#[test]
fn package_unknown_to_the_ledger_is_idle_with_a_note() {
    let s = sample(&[0], 1, vec![process(1, &[&[SECOND_NS]])]);
    let out = attribute(
        &s,
        Some(&energy(&[(DomainKind::Package, 3, 5.0)])),
        None,
        IdlePolicy::Share,
        &Calibration::default(),
    );
    assert!(close(out.cpu.idle_j, 5.0));
    assert!(out.notes[0].contains("package 3"));
}

fn gpu_reading(energy_j: f64, device: GpuDevice) -> EnergyReading {
    let mut e = energy(&[(DomainKind::Gpu, 0, energy_j)]);
    e.gpus = vec![device];
    e
}

fn gpu_process(pid: u32, sm: Option<u32>) -> GpuProcess {
    GpuProcess {
        pid,
        sm_util_pct: sm,
        ..GpuProcess::default()
    }
}

#[test]
fn gpu_energy_follows_sm_samples_else_contexts() {
    let s = sample(&[0], 1, vec![]);
    let sampled = GpuDevice {
        processes: vec![gpu_process(7, Some(60)), gpu_process(8, Some(20))],
        ..GpuDevice::default()
    };
    for (policy, a, b, idle) in [
        (IdlePolicy::Share, 225.0, 75.0, 0.0),
        (IdlePolicy::Exclude, 180.0, 60.0, 60.0), // 80 % of the SMs busy
    ] {
        let out = attribute(
            &s,
            None,
            Some(&gpu_reading(300.0, sampled.clone())),
            policy,
            &Calibration::default(),
        );
        assert!(
            close(of(&out, 7).gpu_j, a) && close(of(&out, 8).gpu_j, b),
            "{policy:?}"
        );
        assert!(close(out.gpu.idle_j, idle), "{policy:?}");
    }
    let contexts = GpuDevice {
        gpu_util_pct: Some(50),
        processes: vec![gpu_process(7, None), gpu_process(8, None)],
        ..GpuDevice::default()
    };
    let out = attribute(
        &s,
        None,
        Some(&gpu_reading(300.0, contexts)),
        IdlePolicy::Exclude,
        &Calibration::default(),
    );
    assert!(close(of(&out, 7).gpu_j, 75.0) && close(of(&out, 8).gpu_j, 75.0));
    assert!(close(out.gpu.idle_j, 150.0));
    let empty = attribute(
        &s,
        None,
        Some(&gpu_reading(300.0, GpuDevice::default())),
        IdlePolicy::Share,
        &Calibration::default(),
    );
    assert!(empty.processes.is_empty() && close(empty.gpu.idle_j, 300.0));
    let baseline = Calibration {
        gpu_idle_w: BTreeMap::from([(0, 100.0)]),
        ..Calibration::default()
    };
    let out = attribute(
        &s,
        None,
        Some(&gpu_reading(300.0, sampled)),
        IdlePolicy::Baseline,
        &baseline,
    );
    assert!(close(of(&out, 7).gpu_j, 150.0) && close(out.gpu.idle_j, 100.0));
}

/// A random machine: packages, CPUs, processes with threads whose per-package time
/// fits the capacity, energies and a policy.
fn arbitrary_case() -> impl Strategy<Value = (LedgerSample, EnergyReading, IdlePolicy, Calibration)>
{
    (1usize..=3, 1usize..=4).prop_flat_map(|(packages, cpus_per_package)| {
        let capacity = cpus_per_package as u64 * SECOND_NS;
        let thread = prop::collection::vec(0..=capacity / 4, packages);
        let proc_threads = prop::collection::vec(thread, 1..=4);
        (
            prop::collection::vec(proc_threads, 0..=12),
            prop::collection::vec(0.0f64..500.0, packages),
            prop::collection::vec(0.0f64..50.0, packages),
            prop_oneof![
                Just(IdlePolicy::Exclude),
                Just(IdlePolicy::Share),
                Just(IdlePolicy::Baseline)
            ],
            prop::collection::vec(0.0f64..200.0, packages),
        )
            .prop_map(move |(procs, cpu_j, dram_j, policy, idle_w)| {
                let ids: Vec<u32> = (0..packages as u32).map(|p| p * 2).collect();
                let processes = procs
                    .iter()
                    .enumerate()
                    .map(|(i, threads)| {
                        let refs: Vec<&[u64]> = threads.iter().map(Vec::as_slice).collect();
                        process(100 * (i as u32 + 1), &refs)
                    })
                    .collect();
                let mut domains = Vec::new();
                for (i, id) in ids.iter().enumerate() {
                    domains.push((DomainKind::Package, *id, cpu_j[i]));
                    domains.push((DomainKind::Dram, *id, dram_j[i]));
                }
                let calibration = Calibration {
                    package_idle_w: ids.iter().copied().zip(idle_w.iter().copied()).collect(),
                    ..Calibration::default()
                };
                (
                    sample(&ids, cpus_per_package, processes),
                    energy(&domains),
                    policy,
                    calibration,
                )
            })
    })
}

proptest! {
    #[test]
    fn books_balance_for_any_ledger((s, e, policy, calibration) in arbitrary_case()) {
        let out = attribute(&s, Some(&e), None, policy, &calibration);
        for (name, b) in [("cpu", out.cpu), ("dram", out.dram)] {
            let scale = b.measured_j.max(1.0);
            prop_assert!(b.residual_j.abs() <= 1e-9 * scale, "{name} residual {}", b.residual_j);
            prop_assert!(b.idle_j >= -1e-9 * scale, "{name} idle {}", b.idle_j);
            prop_assert!(b.attributed_j <= b.measured_j + 1e-9 * scale);
        }
        for p in out.processes.values() {
            prop_assert!(p.cpu_j >= 0.0 && p.dram_j >= 0.0);
            let threads: f64 = p.threads.iter().map(|t| t.cpu_j).sum();
            prop_assert!((threads - p.cpu_j).abs() <= 1e-12 * p.cpu_j.max(1.0));
        }
        if policy == IdlePolicy::Share && s.processes.iter().any(|p| p.on_cpu_ns > 0) {
            prop_assert!(out.cpu.idle_j.abs() <= 1e-9 * out.cpu.measured_j.max(1.0));
        }
    }
}
