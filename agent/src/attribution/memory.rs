//! Estimated memory energy (no DRAM counter) split by resident memory rather than CPU
//! time: memory draws power for what it holds, whether or not its owner runs.
//! Only processes that ran in the interval are looked at (the cost of a tick follows
//! what ran); the memory of the others is the idle row's. Formula: docs/methodology.md.
use std::collections::HashMap;

use super::{Attribution, IdlePolicy, thread_row};
use crate::probes::{LedgerSample, ProcessSample};

/// Resident memory of the processes that ran, and the machine's installed memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resident {
    /// Bytes resident per pid (`/proc/PID/statm`), for processes that ran; exited
    /// ones are absent, and ignored if present (they hold nothing any more).
    pub by_pid: HashMap<u32, u64>,
    /// `MemTotal`, bytes.
    pub total_bytes: u64,
}

/// Charges `energy_j` of estimated memory energy to the processes that ran, each
/// `E × rss_p / D` with `D = max(MemTotal, Σ rss)` under exclude and baseline and
/// `D = Σ rss` under share; within a process, to its threads by their CPU time.
/// Returns the joules left idle: `E` minus what was charged.
pub(super) fn split_memory(
    out: &mut Attribution,
    sample: &LedgerSample,
    resident: &Resident,
    energy_j: f64,
    policy: IdlePolicy,
) -> f64 {
    // Memory is held by live processes: of a pid reused within the interval, only the
    // process still running holds what `statm` showed.
    let rss_of = |p: &ProcessSample| {
        if p.exited {
            0
        } else {
            resident.by_pid.get(&p.tgid).copied().unwrap_or(0)
        }
    };
    let ran = || sample.processes.iter().filter(|p| !p.threads.is_empty());
    let held: u64 = ran().map(rss_of).sum();
    let denominator = match policy {
        IdlePolicy::Share => held,
        IdlePolicy::Exclude | IdlePolicy::Baseline => held.max(resident.total_bytes),
    };
    if denominator == 0 {
        return energy_j;
    }
    let mut charged = 0.0;
    for process in ran() {
        let share_j = energy_j * rss_of(process) as f64 / denominator as f64;
        if share_j <= 0.0 {
            continue;
        }
        let ran_ns: u64 = process.threads.iter().map(|t| t.on_cpu_ns).sum();
        let entry = out.processes.entry(process.key()).or_default();
        for thread in &process.threads {
            let weight = if ran_ns == 0 {
                1.0 / process.threads.len() as f64
            } else {
                thread.on_cpu_ns as f64 / ran_ns as f64
            };
            let joules = share_j * weight;
            thread_row(entry, thread.tid).dram_j += joules;
            charged += joules;
        }
    }
    energy_j - charged
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
