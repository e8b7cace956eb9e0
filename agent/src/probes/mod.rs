//! The CPU-time ledger: who ran on which CPU, for how long, in each interval.
//!
//! Two implementations sit behind [`CpuLedger`]: the eBPF ledger ([`ebpf::EbpfLedger`],
//! exact, sees processes that live 5 ms) and the `/proc` fallback
//! ([`procfs::ProcLedger`], lower fidelity, for when probes cannot load).
pub mod btf;
pub mod ebpf;
pub mod gpu;
pub mod loader;
pub mod procfs;
pub mod tasks;

use std::time::Duration;

pub use gpu::{GpuCalls, GpuProbeStatus};

/// How the ledger measures, and why, so the user can be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fidelity {
    /// eBPF programs attached; `attach` names how sched_switch was hooked
    /// (`tp_btf`, `raw_tp` or `tracepoint`); `notes` says what was degraded and why.
    Ebpf { attach: String, notes: Vec<String> },
    /// Sampling `/proc`: CPU time of processes that start and end between two ticks
    /// is missed. `reason` says why the probes could not load.
    Procfs { reason: String },
}

impl Fidelity {
    /// Short label used in JSON (`system.ledger`) and the TUI.
    pub fn label(&self) -> String {
        match self {
            Fidelity::Ebpf { attach, .. } => format!("ebpf-{attach}"),
            Fidelity::Procfs { .. } => "procfs".to_string(),
        }
    }

    /// Human-readable explanation of anything less than full fidelity.
    pub fn note(&self) -> Option<String> {
        match self {
            Fidelity::Ebpf { notes, .. } if notes.is_empty() => None,
            Fidelity::Ebpf { notes, .. } => Some(notes.join("; ")),
            Fidelity::Procfs { reason } => Some(format!(
                "lower fidelity /proc sampling (short-lived processes are missed): {reason}"
            )),
        }
    }
}

/// One thread's CPU time in one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThreadSample {
    pub tid: u32,
    pub comm: String,
    pub on_cpu_ns: u64,
    /// On-CPU ns per CPU package, indexed like [`LedgerSample::packages`].
    pub on_cpu_ns_by_package: Vec<u64>,
    /// The thread exited during this interval.
    pub exited: bool,
    /// CUDA calls and NVIDIA ioctls of the thread (eBPF ledger only).
    pub gpu: GpuCalls,
}

/// A process's identity: its pid and its start time (ns since boot, in whole clock
/// ticks as `/proc/PID/stat` gives it). A reused pid is another process, also within
/// one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    pub tgid: u32,
    pub start_ns: u64,
}

impl ProcessKey {
    /// A process the ledger did not report (one seen only on a GPU): its start time is
    /// not known to attribution, so it is keyed by pid alone (`start_ns` 0).
    pub fn unreported(tgid: u32) -> ProcessKey {
        ProcessKey { tgid, start_ns: 0 }
    }
}

/// One process's CPU time in one interval: the sum of its threads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSample {
    pub tgid: u32,
    /// Start time in ns since boot (CLOCK_BOOTTIME): with `tgid`, the process's identity,
    /// so a reused pid is a different process.
    pub start_ns: u64,
    pub ppid: u32,
    pub uid: u32,
    pub comm: String,
    /// cgroup path (the unified hierarchy's, else the first v1 one), "" if unknown.
    pub cgroup: String,
    pub on_cpu_ns: u64,
    pub on_cpu_ns_by_package: Vec<u64>,
    /// The process (all of its threads) exited during this interval.
    pub exited: bool,
    /// The sum of its threads' GPU activity.
    pub gpu: GpuCalls,
    pub threads: Vec<ThreadSample>,
}

impl ProcessSample {
    pub fn key(&self) -> ProcessKey {
        ProcessKey {
            tgid: self.tgid,
            start_ns: self.start_ns,
        }
    }
}

/// Busy and idle time of one CPU in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub busy_ns: u64,
    pub idle_ns: u64,
}

/// What the ledger knows about its own losses in one interval. Never silent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LedgerHealth {
    /// Context switches seen.
    pub switches: u64,
    /// Slices in progress cut by the periodic flush or by an exit.
    pub flushes: u64,
    /// Slices that spilled from the per-CPU table to the overflow map.
    pub overflow_charges: u64,
    /// Slices lost because the overflow map was full, and their on-CPU time.
    pub dropped_slices: u64,
    pub dropped_ns: u64,
    /// Lifecycle events (fork/exec/exit) lost because the ring buffer was full.
    pub lost_events: u64,
    /// Runtime ledger: slices whose start the ledger never saw (the CPU's slot held
    /// another task), so they could not be charged. 0 unless switches were missed.
    pub unowned_slices: u64,
    /// Mean cost of the sched_switch program in the interval, from the kernel's
    /// bpf_stats; None while `kernel.bpf_stats_enabled` is 0.
    pub ns_per_switch: Option<f64>,
}

/// Everything the ledger measured in one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LedgerSample {
    /// Length of the interval this sample covers.
    pub interval: Duration,
    /// Per CPU, indexed by CPU number.
    pub cpus: Vec<CpuTime>,
    /// Physical package id of each index used in `on_cpu_ns_by_package`.
    pub packages: Vec<u32>,
    /// For each CPU, its index into `packages`.
    pub cpu_package: Vec<usize>,
    /// Processes that ran, or exited, during the interval, one row per identity
    /// ([`ProcessKey`]): a pid reused within the interval has two rows. Idle ones are
    /// absent.
    pub processes: Vec<ProcessSample>,
    pub health: LedgerHealth,
    /// The GPU probes' state; `None` when they are off or the ledger is /proc.
    pub gpu: Option<GpuProbeStatus>,
}

/// Errors of a ledger tick.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("reading eBPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A source of per-interval CPU time per thread and process.
pub trait CpuLedger {
    /// Ends the current interval and returns what happened in it. The first call
    /// covers the time since the ledger was created.
    fn sample(&mut self) -> Result<LedgerSample, LedgerError> {
        self.sample_with(&mut || {})
    }
    /// Like `sample`, calling `at_boundary` at the instant the interval ends, before
    /// any slow work (waits, map reads), so energy counters read there cover the
    /// same span as the CPU time.
    fn sample_with(&mut self, at_boundary: &mut dyn FnMut()) -> Result<LedgerSample, LedgerError>;
    /// How this ledger measures.
    fn fidelity(&self) -> &Fidelity;
}
