//! `Interval`: the plain data one tick produces and every sink consumes (batch JSON,
//! TUI, logs). Field names are the batch JSON contract of docs/architecture.md.
use serde::{Deserialize, Serialize};

/// Everything measured in one interval. Numbers are per interval, not cumulative.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// End of the interval, RFC 3339 UTC with milliseconds.
    pub ts: String,
    pub interval_s: f64,
    pub system: SystemSummary,
    pub processes: Vec<ProcessEnergy>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemSummary {
    /// On-CPU time of all threads, summed over CPUs.
    pub cpu_seconds: f64,
    /// Time CPUs spent in the idle task, summed over CPUs.
    pub idle_seconds: f64,
    pub cpus: u32,
    /// Busy and idle time per CPU package (socket).
    pub packages: Vec<PackageTime>,
    /// How CPU time was measured: `ebpf-tp_btf`, `ebpf-raw_tp`, `ebpf-tracepoint`, `procfs`.
    pub ledger: String,
    /// Why fidelity is reduced, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_note: Option<String>,
    pub ledger_health: LedgerHealthJson,
    /// Energy of all CPU packages (RAPL `package` domains, or the estimate).
    pub cpu_joules: f64,
    /// Energy of DRAM (RAPL `dram` domains); 0 where the hardware has no DRAM counter.
    pub dram_joules: f64,
    /// Energy of all GPUs.
    pub gpu_joules: f64,
    /// `rapl-powercap`, `perf-power` or `estimated-tdp`.
    pub cpu_source: String,
    /// `nvml-energy`, `nvml-power` or `none`.
    pub gpu_source: String,
    /// `rapl-powercap`, `perf-power`, `estimated-memory` or `none`.
    #[serde(default)]
    pub dram_source: String,
    /// Energy of the platform (psys: SoC, chipset and more); never inside `cpu_joules`.
    #[serde(default)]
    pub platform_joules: f64,
    /// `rapl-powercap`, `perf-power` or `none`.
    #[serde(default)]
    pub platform_source: String,
    /// Every energy domain read this interval, with its provenance.
    pub energy: Vec<EnergyDomainJson>,
    /// Every energy counter greentop watches, and whether it believes it now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<CounterJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuJson>,
    /// Source reads that failed or degraded this interval, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub energy_notes: Vec<String>,
    /// Energy left to the idle row by the idle policy, all domains.
    pub idle_joules: f64,
    /// `exclude`, `share` or `baseline`.
    pub idle_policy: String,
    /// Per domain: measured = attributed + idle + residual.
    pub balance: BalanceJson,
    /// Grid region used for the intensity (`world` when unknown or not set).
    pub region: String,
    pub intensity_g_per_kwh: f64,
    /// `table`, `world-average`, `fixed`, `series`, `electricitymaps`, `carbon-intensity-uk`.
    pub intensity_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_note: Option<String>,
    /// Power usage effectiveness applied to every gCO₂ figure (not to joules).
    #[serde(default = "no_overhead")]
    pub pue: f64,
    /// Carbon of all measured energy (CPU + DRAM + GPU) in the interval, × `pue`.
    pub gco2: f64,
    /// Processes grouped by job, busiest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobEnergy>,
    // --- GPU activity from eBPF (docs/gpu-probes.md) ---
    /// The GPU probes' state: mode, libcuda files probed, the ioctl counter, losses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_probes: Option<GpuProbesJson>,
    /// Per GPU, what its energy was split by among processes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_split: Vec<GpuSplitJson>,
    /// What each output of greentop-agent lost since the previous interval (its
    /// queued sinks; a sink that failed). Not kept in the binary log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkHealthJson>,
}

/// One output's losses since the previous interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkHealthJson {
    /// `log`, `socket`, `json`, …
    pub name: String,
    /// Intervals it did not get or could not record: its queue was full (it fell
    /// behind the tick) or writing failed (a full disk).
    pub dropped: u64,
    /// Intervals waiting in its queue.
    #[serde(default)]
    pub queued: u64,
    /// Clients connected now (the socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<u64>,
    /// Clients disconnected because they fell behind (the socket).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clients_dropped: u64,
    /// The last error, when writing failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The GPU probes in one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuProbesJson {
    /// `off`, `ctx` or `all` (`--gpu-probes`).
    pub mode: String,
    /// Every libcuda file probed, with its number of entry points.
    pub libraries: Vec<String>,
    /// How the NVIDIA ioctl counter is hooked (`tp_btf`), or null when it is not.
    pub ioctl_counter: Option<String>,
    /// What is missing and why (absent entry points, the ioctl counter off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Hits lost to a full per-thread map, and sync calls left untimed, this interval.
    pub dropped_hits: u64,
    pub untimed_syncs: u64,
}

/// How one GPU's energy was split among processes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSplitJson {
    /// GPU index, as in `system.gpus[].index`.
    pub index: u32,
    /// `nvml-samples`, `ebpf-launches`, `ebpf-sync-wait`, `ebpf-ioctls`, `equal`, or
    /// `none` (nobody held a context: all idle).
    pub split_by: String,
}

/// PUE 1.0: intervals written before the field existed had no overhead applied.
fn no_overhead() -> f64 {
    1.0
}

impl SystemSummary {
    /// Every note of the interval: reduced ledger fidelity, degraded energy reads,
    /// and the carbon intensity's fallbacks, in that order.
    pub fn notes(&self) -> impl Iterator<Item = &String> {
        self.ledger_note
            .iter()
            .chain(&self.energy_notes)
            .chain(&self.intensity_note)
    }

    /// One line per watched counter whose trust changed in this interval (for
    /// stderr): a counter greentop stopped believing is a warning.
    pub fn trust_changes(&self) -> impl Iterator<Item = String> + '_ {
        self.counters.iter().filter_map(|c| {
            let note = c.note.as_deref()?;
            match c.change.as_deref()? {
                "distrusted" => Some(format!("WARNING: {note}")),
                _ => Some(note.to_string()),
            }
        })
    }
}

/// The books of the interval, per domain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BalanceJson {
    pub cpu: Balance,
    pub dram: Balance,
    pub gpu: Balance,
    /// Largest |residual| of the three, joules.
    pub residual_joules: f64,
}

/// The books of one domain kind: measured = attributed + idle + residual.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    pub measured_j: f64,
    pub attributed_j: f64,
    pub idle_j: f64,
    /// measured − (attributed + idle), summed independently: floating-point noise.
    pub residual_j: f64,
}

/// One job's share of the interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobEnergy {
    pub job: String,
    pub pids: Vec<u32>,
    pub cpu_seconds: f64,
    pub joules: f64,
    pub gco2: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackageTime {
    pub package: u32,
    pub cpu_seconds: f64,
    pub idle_seconds: f64,
}

/// The ledger's own losses in the interval: zero when nothing was lost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerHealthJson {
    pub switches: u64,
    pub flushes: u64,
    pub overflow_charges: u64,
    pub dropped_slices: u64,
    pub dropped_cpu_seconds: f64,
    pub lost_events: u64,
    /// Runtime ledger: slices whose start the ledger never saw (a switch the kernel
    /// did not report), so they could not be charged. 0 unless switches were missed.
    #[serde(default)]
    pub unowned_slices: u64,
    /// Mean ns per sched_switch of the ledger program, when `kernel.bpf_stats_enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_per_switch: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessEnergy {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub user: String,
    pub uid: u32,
    pub cgroup: String,
    /// The ML job / unit the process belongs to (filled by the attribution issue).
    pub job: Option<String>,
    /// Start time, ns since boot: with `pid`, the process's identity.
    pub start_ns: u64,
    pub cpu_seconds: f64,
    /// On-CPU seconds per package, in the order of `system.packages`.
    pub cpu_seconds_by_package: Vec<f64>,
    pub exited: bool,
    /// Energy attributed in this interval, by domain, and their sum.
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    pub joules: f64,
    /// `joules` at the interval's carbon intensity, × `system.pue`.
    pub gco2: f64,
    /// Since the consumer first saw the process. Consumers sum these themselves
    /// (the JSON-lines sink, log readers, the TUI): the pipeline leaves them 0.
    pub joules_total: f64,
    pub gco2_total: f64,
    // --- GPU activity from eBPF in this interval (docs/gpu-probes.md) ---
    /// CUDA context switches (`cuCtxSetCurrent`, `cuCtxPush/PopCurrent`).
    #[serde(default)]
    pub gpu_ctx_switches: u64,
    /// Kernel and graph launches (0 unless `--gpu-probes all`).
    #[serde(default)]
    pub gpu_launches: u64,
    /// Time blocked in CUDA sync calls that returned in the interval, summed over threads.
    #[serde(default)]
    pub gpu_sync_wait_seconds: f64,
    /// ioctls on NVIDIA device files.
    #[serde(default)]
    pub gpu_ioctls: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<Vec<ThreadEnergy>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadEnergy {
    pub tid: u32,
    pub comm: String,
    pub cpu_seconds: f64,
    pub exited: bool,
    /// CPU package + DRAM energy of the thread in this interval.
    pub joules: f64,
    pub gco2: f64,
    // --- GPU activity from eBPF, as for the process ---
    #[serde(default)]
    pub gpu_ctx_switches: u64,
    #[serde(default)]
    pub gpu_launches: u64,
    #[serde(default)]
    pub gpu_sync_wait_seconds: f64,
    #[serde(default)]
    pub gpu_ioctls: u64,
}

/// Energy of one domain (package, DRAM, GPU, …) over the interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyDomainJson {
    /// `package`, `core`, `uncore`, `dram`, `psys` or `gpu`.
    pub kind: String,
    /// Physical package id, or GPU index.
    pub index: u32,
    pub name: String,
    pub joules: f64,
    pub watts: f64,
    /// `rapl-powercap`, `perf-power`, `nvml-energy`, `nvml-power` or `estimated-tdp`.
    pub source: String,
    /// False for anything estimated or derived.
    pub measured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One watched energy counter (package, DRAM or psys) in the interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterJson {
    /// Where it was found, e.g. `intel-rapl:0`, `power/energy-psys cpu 0`.
    pub name: String,
    /// `package`, `dram` or `psys`.
    pub kind: String,
    pub index: u32,
    /// `rapl-powercap` or `perf-power`.
    pub source: String,
    /// True when this interval's value is the counter's and greentop believes it.
    pub trusted: bool,
    /// `frozen`, `backwards`, `implausible` or `unreadable`, while not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What happened and what greentop does about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `distrusted` or `recovered` in the interval where the trust changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
}

/// One GPU in the interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuJson {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub joules: f64,
    pub power_w: Option<f64>,
    pub gpu_util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
    pub processes: Vec<GpuProcessJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuProcessJson {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
    pub sm_util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
}

/// Nanoseconds to seconds, the unit of every `*_seconds` field.
pub fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}
