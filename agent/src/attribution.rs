//! Joules per thread and process from the CPU-time ledger and the energy readings,
//! per domain (CPU package, DRAM, GPU), under an idle policy; and the books
//! balanced: Σ processes + idle = measured, every interval. Formulas:
//! docs/methodology.md.
use std::collections::BTreeMap;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::energy::{DomainKind, EnergyReading, Provenance};
use crate::probes::{LedgerSample, ProcessKey};

mod gpu;
mod memory;
pub use memory::Resident;

/// What happens to the energy the machine uses while nothing runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdlePolicy {
    /// A process gets the package's energy × its share of the package's CPU capacity;
    /// the rest is the idle row (Kepler). A process's watts do not depend on others.
    #[default]
    Exclude,
    /// All energy goes to the processes that ran, by their share of the busy time
    /// (PowerJoular); nothing is left idle while anything ran.
    Share,
    /// The calibrated idle power stays idle; only the energy above it is shared by
    /// busy time (`greentop calibrate` measures it).
    Baseline,
}

impl IdlePolicy {
    pub fn label(self) -> &'static str {
        match self {
            IdlePolicy::Exclude => "exclude",
            IdlePolicy::Share => "share",
            IdlePolicy::Baseline => "baseline",
        }
    }
}

/// Idle power measured by `greentop calibrate`, in watts, per package and per GPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    #[serde(default)]
    pub package_idle_w: BTreeMap<u32, f64>,
    #[serde(default)]
    pub gpu_idle_w: BTreeMap<u32, f64>,
}

/// Energy of one thread in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ThreadJoules {
    pub tid: u32,
    pub cpu_j: f64,
    pub dram_j: f64,
}

/// Energy of one process in one interval: the sum of its threads, plus its GPU share.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessJoules {
    pub cpu_j: f64,
    pub dram_j: f64,
    pub gpu_j: f64,
    pub threads: Vec<ThreadJoules>,
}

impl ProcessJoules {
    pub fn total_j(&self) -> f64 {
        self.cpu_j + self.dram_j + self.gpu_j
    }
}

/// The books of one domain kind (a sink sees it, so `model` owns it).
pub use crate::model::Balance;

/// Everything attribution produced for one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attribution {
    /// By process identity, so a pid reused within the interval is two processes, each
    /// with its own share; includes processes that only used a GPU in the interval
    /// (keyed [`ProcessKey::unreported`]). Ordered: sums over it are the same bits on
    /// every run.
    pub processes: BTreeMap<ProcessKey, ProcessJoules>,
    pub cpu: Balance,
    pub dram: Balance,
    pub gpu: Balance,
    /// Per GPU index, what its energy was split by (see `gpu::weights`).
    pub gpu_split: Vec<(u32, &'static str)>,
    /// Anything that made the split less exact than the policy promises.
    pub notes: Vec<String>,
}

/// Splits the interval's energy. `cpu` carries package and DRAM domains (indexed by
/// physical package id), `gpus` the GPU domains and devices. Estimated memory energy
/// is split by resident memory, with no process's memory known here: all idle (see
/// [`attribute_with_memory`]).
pub fn attribute(
    sample: &LedgerSample,
    cpu: Option<&EnergyReading>,
    gpus: Option<&EnergyReading>,
    policy: IdlePolicy,
    calibration: &Calibration,
) -> Attribution {
    let resident = Resident::default();
    attribute_with_memory(sample, cpu, gpus, policy, calibration, &resident)
}

/// [`attribute`], with the resident memory of the processes that ran, by which an
/// estimated (`estimated-memory`) DRAM domain is split.
pub fn attribute_with_memory(
    sample: &LedgerSample,
    cpu: Option<&EnergyReading>,
    gpus: Option<&EnergyReading>,
    policy: IdlePolicy,
    calibration: &Calibration,
    resident: &Resident,
) -> Attribution {
    let mut out = Attribution::default();
    let seconds = sample.interval.as_secs_f64();
    if let Some(reading) = cpu {
        for (kind, balance_is_dram) in [(DomainKind::Package, false), (DomainKind::Dram, true)] {
            for domain in reading.domains.iter().filter(|d| d.domain.kind == kind) {
                let energy_j = domain.energy_uj as f64 / 1e6;
                if domain.provenance == Provenance::EstimatedMemory {
                    let idle_j = memory::split_memory(&mut out, sample, resident, energy_j, policy);
                    out.dram.measured_j += energy_j;
                    out.dram.idle_j += idle_j;
                    continue;
                }
                let idle_w = calibration
                    .package_idle_w
                    .get(&domain.domain.index)
                    .copied();
                let split = split_package(
                    sample,
                    domain.domain.index,
                    energy_j,
                    policy,
                    idle_w,
                    seconds,
                );
                out.notes.extend(split.note.clone());
                apply_package(&mut out, sample, &split, balance_is_dram);
                let balance = if balance_is_dram {
                    &mut out.dram
                } else {
                    &mut out.cpu
                };
                balance.measured_j += energy_j;
                balance.idle_j += split.idle_j;
            }
        }
    }
    if let Some(reading) = gpus {
        gpu::split_gpus(&mut out, sample, reading, policy, calibration);
    }
    close_books(&mut out);
    out
}

/// How one package's energy is divided: joules per ns of CPU time, and the idle part.
struct PackageSplit {
    /// Index of the package in `LedgerSample::packages` (None: no CPU of ours on it).
    package_index: Option<usize>,
    joules_per_ns: f64,
    idle_j: f64,
    note: Option<String>,
}

fn split_package(
    sample: &LedgerSample,
    package_id: u32,
    energy_j: f64,
    policy: IdlePolicy,
    idle_w: Option<f64>,
    seconds: f64,
) -> PackageSplit {
    let Some(index) = sample.packages.iter().position(|&p| p == package_id) else {
        return PackageSplit {
            package_index: None,
            joules_per_ns: 0.0,
            idle_j: energy_j,
            note: Some(format!(
                "package {package_id} has no CPU in the ledger: all idle"
            )),
        };
    };
    let busy_ns: u64 = sample
        .processes
        .iter()
        .map(|p| p.on_cpu_ns_by_package.get(index).copied().unwrap_or(0))
        .sum();
    let capacity_ns: u64 = sample
        .cpus
        .iter()
        .enumerate()
        .filter(|(cpu, _)| sample.cpu_package.get(*cpu).copied().unwrap_or(0) == index)
        .map(|(_, t)| t.busy_ns + t.idle_ns)
        .sum();
    let mut note = None;
    let shared_j = match policy {
        _ if busy_ns == 0 => 0.0,
        IdlePolicy::Share => energy_j,
        IdlePolicy::Exclude => energy_j * busy_ns as f64 / capacity_ns.max(busy_ns) as f64,
        IdlePolicy::Baseline => match idle_w {
            Some(watts) => (energy_j - watts * seconds).max(0.0),
            None => {
                note = Some(format!(
                    "package {package_id}: no calibrated idle power, using exclude (run greentop calibrate)"
                ));
                energy_j * busy_ns as f64 / capacity_ns.max(busy_ns) as f64
            }
        },
    };
    PackageSplit {
        package_index: Some(index),
        joules_per_ns: if busy_ns == 0 {
            0.0
        } else {
            shared_j / busy_ns as f64
        },
        idle_j: energy_j - shared_j,
        note,
    }
}

fn apply_package(out: &mut Attribution, sample: &LedgerSample, split: &PackageSplit, dram: bool) {
    let Some(index) = split.package_index else {
        return;
    };
    for process in &sample.processes {
        let entry = out.processes.entry(process.key()).or_default();
        for thread in &process.threads {
            let ns = thread.on_cpu_ns_by_package.get(index).copied().unwrap_or(0);
            let joules = ns as f64 * split.joules_per_ns;
            let row = thread_row(entry, thread.tid);
            if dram {
                row.dram_j += joules;
            } else {
                row.cpu_j += joules;
            }
        }
    }
}

/// The row of thread `tid` in a process, added if new.
fn thread_row(entry: &mut ProcessJoules, tid: u32) -> &mut ThreadJoules {
    let at = match entry.threads.iter().position(|t| t.tid == tid) {
        Some(at) => at,
        None => {
            entry.threads.push(ThreadJoules {
                tid,
                ..ThreadJoules::default()
            });
            entry.threads.len() - 1
        }
    };
    &mut entry.threads[at]
}

/// Sums threads into processes and fills attributed and residual per domain, in key
/// order, so the same input gives the same bits.
fn close_books(out: &mut Attribution) {
    let (mut cpu_j, mut dram_j, mut gpu_j) = (0.0, 0.0, 0.0);
    for process in out.processes.values_mut() {
        process.cpu_j = process.threads.iter().map(|t| t.cpu_j).sum();
        process.dram_j = process.threads.iter().map(|t| t.dram_j).sum();
        cpu_j += process.cpu_j;
        dram_j += process.dram_j;
        gpu_j += process.gpu_j;
    }
    for (balance, attributed) in [
        (&mut out.cpu, cpu_j),
        (&mut out.dram, dram_j),
        (&mut out.gpu, gpu_j),
    ] {
        balance.attributed_j = attributed;
        balance.residual_j = balance.measured_j - (attributed + balance.idle_j);
    }
}

#[cfg(test)]
mod tests;
