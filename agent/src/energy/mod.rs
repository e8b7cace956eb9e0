//! Energy sources: joules per interval for each CPU package, its DRAM and each GPU,
//! from hardware counters where they exist, estimated (and labelled so) where not.
//!
//! Every source takes its root path (sysfs, procfs, a library path) so tests run
//! against fixture trees and stand-in libraries through the real code path.
pub mod counter;
pub mod estimate;
pub mod memory;
pub mod nvml;
pub mod perf_power;
pub mod probe;
pub mod rapl;
pub mod select;
pub mod summary;
pub mod tdp;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod trust;
pub mod watch;

use std::path::PathBuf;
use std::time::Duration;

/// Where a reading came from. `label()` is the string used in JSON, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provenance {
    /// `/sys/class/powercap/intel-rapl:*` energy counters (measured).
    RaplPowercap,
    /// perf `power` PMU (`energy-pkg`, `energy-ram`, `energy-psys`) (measured).
    PerfPower,
    /// NVML total-energy counter (measured).
    NvmlEnergy,
    /// NVML instantaneous power × Δt, where the energy counter is unsupported.
    NvmlPower,
    /// TDP table or per-vCPU coefficients × a load curve (estimated).
    EstimatedTdp,
    /// Installed memory × CodeCarbon's 3 W per 8 GiB (estimated).
    EstimatedMemory,
}

impl Provenance {
    pub fn label(self) -> &'static str {
        match self {
            Provenance::RaplPowercap => "rapl-powercap",
            Provenance::PerfPower => "perf-power",
            Provenance::NvmlEnergy => "nvml-energy",
            Provenance::NvmlPower => "nvml-power",
            Provenance::EstimatedTdp => "estimated-tdp",
            Provenance::EstimatedMemory => "estimated-memory",
        }
    }

    /// True for hardware counters, false for anything derived or estimated.
    pub fn is_measured(self) -> bool {
        matches!(
            self,
            Provenance::RaplPowercap | Provenance::PerfPower | Provenance::NvmlEnergy
        )
    }
}

/// What an energy domain covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DomainKind {
    /// A whole CPU package (socket); `Domain::index` is its physical package id.
    Package,
    /// The cores of a package (a subzone of `Package`, included in it).
    Core,
    /// The uncore / integrated GPU of a package (subzone, included in it).
    Uncore,
    /// DRAM attached to a package; `index` is the package id.
    Dram,
    /// The whole platform (psys); overlaps everything else.
    Psys,
    /// One GPU; `index` is the NVML device index.
    Gpu,
}

impl DomainKind {
    /// The name used in JSON, logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            DomainKind::Package => "package",
            DomainKind::Core => "core",
            DomainKind::Uncore => "uncore",
            DomainKind::Dram => "dram",
            DomainKind::Psys => "psys",
            DomainKind::Gpu => "gpu",
        }
    }

    /// What the domain measures, for people: psys is the whole platform, not a CPU.
    pub fn display_name(self) -> &'static str {
        match self {
            DomainKind::Psys => "platform",
            kind => kind.label(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Domain {
    pub kind: DomainKind,
    pub index: u32,
    /// Where it was found, e.g. `intel-rapl:0`, `intel-rapl:0:0`, `power/energy-pkg cpu 0`,
    /// `GPU 0 NVIDIA H100 80GB HBM3 (GPU-…uuid)`.
    pub name: String,
}

/// How a counter's value for one interval came about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadKind {
    /// Read and advanced (or stayed) normally; also every estimated value.
    #[default]
    Counted,
    /// The counter went down and was read as one wrap at its range.
    Wrapped { prev_uj: u64, now_uj: u64 },
    /// The counter went down with no known range: counted 0.
    Backwards { prev_uj: u64, now_uj: u64 },
    /// The read failed: counted 0.
    Failed,
}

/// Energy of one domain over one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainEnergy {
    pub domain: Domain,
    /// Energy used since the previous read (wraparound already handled).
    pub energy_uj: u64,
    pub provenance: Provenance,
    /// Set when this interval's value is degraded (a read failed, a counter went
    /// backwards, …): what happened, naming the file or call.
    pub note: Option<String>,
    /// How the value was read, for the trust checks (`trust::judge`).
    pub read: ReadKind,
    /// False for a counter greentop does not believe (it stopped, ran backwards or
    /// implied impossible power) but shows because `--source` asked for it.
    pub trusted: bool,
}

impl DomainEnergy {
    /// A normal reading: counted, trusted, no note.
    pub fn counted(domain: Domain, energy_uj: u64, provenance: Provenance) -> DomainEnergy {
        DomainEnergy {
            domain,
            energy_uj,
            provenance,
            note: None,
            read: ReadKind::Counted,
            trusted: true,
        }
    }

    /// A measurement greentop stands behind: a hardware counter, trusted.
    pub fn is_measured(&self) -> bool {
        self.provenance.is_measured() && self.trusted
    }
}

/// One process on a GPU, as NVML reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuProcess {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
    /// MIG GPU instance and compute instance ids (None when MIG is off).
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
    /// Mean SM / memory / encoder / decoder utilisation (%) over the samples NVML
    /// returned for this interval; None when NVML had no sample for the process.
    pub sm_util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
    pub enc_util_pct: Option<u32>,
    pub dec_util_pct: Option<u32>,
}

/// Accounting stats of a process that ran on a GPU (accounting mode on).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuAccounting {
    pub pid: u32,
    pub gpu_util_pct: u32,
    pub mem_util_pct: u32,
    pub max_memory_bytes: u64,
    pub time_ms: u64,
    pub is_running: bool,
}

/// Per-device details beyond energy, for attribution and the GPU panel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub power_mw: Option<u32>,
    pub gpu_util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
    /// Processes holding a compute context now, or with utilisation samples this
    /// interval (graphics processes, or ones that ended during it).
    pub processes: Vec<GpuProcess>,
    /// Accounting stats of processes that are no longer running (accounting mode on).
    pub ended: Vec<GpuAccounting>,
    /// Calls that failed this interval (NotSupported, GPU lost, …), one line each.
    pub notes: Vec<String>,
}

/// Everything one source measured since its previous read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnergyReading {
    /// Time since the previous read (or since the source was opened).
    pub elapsed: Duration,
    pub domains: Vec<DomainEnergy>,
    /// GPU sources only.
    pub gpus: Vec<GpuDevice>,
    /// Every watched counter and whether it is trusted now (`watch::WatchedCpu` only).
    pub counters: Vec<trust::CounterTrust>,
}

impl EnergyReading {
    /// Sum of the energy of the domains of one kind, in joules.
    pub fn joules(&self, kind: DomainKind) -> f64 {
        self.domains
            .iter()
            .filter(|d| d.domain.kind == kind)
            .map(|d| d.energy_uj as f64 / 1e6)
            .fold(0.0, |sum, joules| sum + joules)
    }
}

/// Why a source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The hardware or interface is not there (no powercap tree, no NVIDIA driver…).
    #[error("{0}")]
    NotFound(String),
    /// Present but unusable here (no energy counter, PMU without the event…).
    #[error("{0}")]
    Unsupported(String),
    #[error("permission denied reading {path}: {hint}")]
    PermissionDenied { path: PathBuf, hint: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot parse {text:?}")]
    Parse { path: PathBuf, text: String },
    /// A device-level call failed (e.g. NVML), with the call named.
    #[error("{call}: {message}")]
    Device { call: String, message: String },
}

/// A source of energy readings. Opening a source (its `new`/`open` function) takes
/// the baseline; each `read` returns the energy since the previous one.
pub trait EnergySource: Send {
    /// Short kind, e.g. `rapl-powercap`, the same string as its `Provenance::label`.
    fn name(&self) -> &str;
    /// One line per domain or device found, for `greentop --list-sources`.
    fn describe(&self) -> Vec<String>;
    fn read(&mut self) -> Result<EnergyReading, SourceError>;
}
