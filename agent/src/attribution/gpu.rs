//! GPU energy split among the processes on each device: by NVML's per-process SM
//! samples, else by the eBPF activity of the context holders, else equally. NVML
//! names processes by pid; each pid is matched to the process the ledger reported
//! (its identity), so a pid reused within the interval charges the right one.
//! Formulas: docs/methodology.md.
use std::collections::HashMap;

use super::{Attribution, Calibration, IdlePolicy};
use crate::energy::{DomainKind, EnergyReading, GpuDevice};
use crate::probes::{GpuCalls, LedgerSample, ProcessKey, ProcessSample};

/// Splits every GPU domain of `reading` into `out`.
pub(super) fn split_gpus(
    out: &mut Attribution,
    sample: &LedgerSample,
    reading: &EnergyReading,
    policy: IdlePolicy,
    calibration: &Calibration,
) {
    let pids = Pids::new(sample);
    let seconds = sample.interval.as_secs_f64();
    for domain in reading
        .domains
        .iter()
        .filter(|d| d.domain.kind == DomainKind::Gpu)
    {
        let energy_j = domain.energy_uj as f64 / 1e6;
        let device = reading.gpus.iter().find(|g| g.index == domain.domain.index);
        let idle_w = calibration.gpu_idle_w.get(&domain.domain.index).copied();
        let split = split_gpu(device, &pids, energy_j, policy, idle_w, seconds);
        out.notes.extend(split.note.clone());
        out.gpu_split.push((domain.domain.index, split.key));
        for (key, joules) in &split.shares {
            out.processes.entry(*key).or_default().gpu_j += joules;
        }
        out.gpu.measured_j += energy_j;
        out.gpu.idle_j += split.idle_j;
    }
}

/// The ledger's rows by pid, to tell which process a pid named by NVML is.
struct Pids<'a> {
    rows: HashMap<u32, Vec<&'a ProcessSample>>,
}

impl<'a> Pids<'a> {
    fn new(sample: &'a LedgerSample) -> Self {
        let mut rows: HashMap<u32, Vec<&ProcessSample>> = HashMap::new();
        for p in &sample.processes {
            rows.entry(p.tgid).or_default().push(p);
        }
        Pids { rows }
    }

    /// A process holding a context now: the pid's live row, else its newest; a pid
    /// the ledger did not report is keyed by pid alone, with no activity.
    fn running(&self, pid: u32) -> (ProcessKey, GpuCalls) {
        self.pick(pid, |p| !p.exited)
    }

    /// A process NVML's accounting says ended: the pid's newest exited row, else its
    /// newest.
    fn ended(&self, pid: u32) -> (ProcessKey, GpuCalls) {
        self.pick(pid, |p| p.exited)
    }

    fn pick(&self, pid: u32, prefer: impl Fn(&ProcessSample) -> bool) -> (ProcessKey, GpuCalls) {
        let rows = self.rows.get(&pid).map_or(&[][..], Vec::as_slice);
        let newest = |rows: &mut dyn Iterator<Item = &&ProcessSample>| {
            rows.max_by_key(|p| p.start_ns).map(|p| (p.key(), p.gpu))
        };
        newest(&mut rows.iter().filter(|p| prefer(p)))
            .or_else(|| newest(&mut rows.iter()))
            .unwrap_or((ProcessKey::unreported(pid), GpuCalls::default()))
    }
}

/// How one GPU's energy is divided among processes, and by what.
struct GpuSplit {
    shares: Vec<(ProcessKey, f64)>,
    idle_j: f64,
    note: Option<String>,
    key: &'static str,
}

fn split_gpu(
    device: Option<&GpuDevice>,
    pids: &Pids<'_>,
    energy_j: f64,
    policy: IdlePolicy,
    idle_w: Option<f64>,
    seconds: f64,
) -> GpuSplit {
    let mut note = None;
    let (weights, key) = device.map_or((Vec::new(), "none"), |d| weights(d, pids));
    let total_weight: f64 = weights.iter().map(|(_, w)| w).sum();
    if weights.is_empty() || total_weight <= 0.0 {
        return GpuSplit {
            shares: Vec::new(),
            idle_j: energy_j,
            note: None,
            key: "none",
        };
    }
    let shared_j = match policy {
        IdlePolicy::Share => energy_j,
        IdlePolicy::Exclude => energy_j * busy_fraction(device, &weights),
        IdlePolicy::Baseline => match idle_w {
            Some(watts) => (energy_j - watts * seconds).max(0.0),
            None => {
                note = Some(
                    "GPU: no calibrated idle power, using exclude (run greentop calibrate)"
                        .to_string(),
                );
                energy_j * busy_fraction(device, &weights)
            }
        },
    };
    let shares = weights
        .iter()
        .map(|(key, w)| (*key, shared_j * w / total_weight))
        .collect();
    GpuSplit {
        shares,
        idle_j: energy_j - shared_j,
        note,
        key,
    }
}

/// Weight per process, and its name: SM utilisation samples when NVML has any
/// (`nvml-samples`); otherwise the eBPF activity of the processes holding a context
/// (and of ended ones by accounting), the first kind any of them has: launches
/// (`--gpu-probes all`), then time blocked in sync calls, then NVIDIA ioctls; without
/// any, an equal share each (`equal`).
fn weights(device: &GpuDevice, pids: &Pids<'_>) -> (Vec<(ProcessKey, f64)>, &'static str) {
    let sampled: Vec<(ProcessKey, f64)> = device
        .processes
        .iter()
        .filter_map(|p| p.sm_util_pct.map(|u| (pids.running(p.pid).0, f64::from(u))))
        .filter(|(_, u)| *u > 0.0)
        .collect();
    if !sampled.is_empty() {
        return (sampled, "nvml-samples");
    }
    let mut holders: Vec<(ProcessKey, GpuCalls)> = device
        .processes
        .iter()
        .map(|p| pids.running(p.pid))
        .collect();
    for ended in device.ended.iter().filter(|e| e.gpu_util_pct > 0) {
        let holder = pids.ended(ended.pid);
        if !holders.iter().any(|(key, _)| *key == holder.0) {
            holders.push(holder);
        }
    }
    type Weight = fn(&GpuCalls) -> f64;
    let by: [(&'static str, Weight); 3] = [
        ("ebpf-launches", |c| c.launches as f64),
        ("ebpf-sync-wait", |c| c.sync_wait_ns as f64),
        ("ebpf-ioctls", |c| c.ioctls as f64),
    ];
    for (name, weight) in by {
        let weights: Vec<(ProcessKey, f64)> = holders
            .iter()
            .map(|(key, calls)| (*key, weight(calls)))
            .collect();
        if weights.iter().any(|(_, w)| *w > 0.0) {
            return (weights, name);
        }
    }
    (
        holders.into_iter().map(|(key, _)| (key, 1.0)).collect(),
        "equal",
    )
}

/// Fraction of the device's energy that `exclude` attributes: the SM utilisation of
/// the processes (or of the device when there are no per-process samples).
fn busy_fraction(device: Option<&GpuDevice>, weights: &[(ProcessKey, f64)]) -> f64 {
    let sampled = device.is_some_and(|d| {
        d.processes
            .iter()
            .any(|p| p.sm_util_pct.is_some_and(|u| u > 0))
    });
    let pct = if sampled {
        weights.iter().map(|(_, w)| w).sum::<f64>()
    } else {
        device.and_then(|d| d.gpu_util_pct).map_or(100.0, f64::from)
    };
    (pct / 100.0).clamp(0.0, 1.0)
}
