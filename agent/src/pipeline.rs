//! The tick: read the ledger and the energy sources, attribute energy to threads,
//! processes and jobs, price it in gCO₂, and produce one `Interval`.
use std::collections::{HashMap, HashSet};

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

use crate::attribution::{Resident, attribute_with_memory};
use crate::carbon::CarbonResolver;
/// The merged settings a pipeline runs with (they live in `config`).
pub use crate::config::Settings;
use crate::config::{ConfigError, Overrides};
use crate::energy::memory::{MemoryEstimate, ResidentCache, page_bytes};
use crate::energy::select::{SourceOptions, Sources};
use crate::energy::summary::summarize;
use crate::energy::{EnergyReading, Provenance};
use crate::interval::{BuildInput, CarbonContext, UserNames, build};
use crate::jobs::JobResolver;
use crate::model::Interval;
use crate::probes::ebpf::EbpfLedger;
use crate::probes::gpu::GpuProbeMode;
use crate::probes::loader::{LoadOptions, error_chain};
use crate::probes::procfs::{ProcLedger, read_stat};
use crate::probes::{CpuLedger, LedgerError, LedgerSample, ProcessSample};
use crate::topology::{self, Topology};

/// Which CPU-time ledger to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LedgerChoice {
    /// eBPF if the probes load, else /proc (and say why).
    #[default]
    Auto,
    /// eBPF only: fail if the probes cannot load.
    Ebpf,
    /// /proc sampling only (lower fidelity, no privileges needed).
    Procfs,
}

/// What to open, as plain values: each front end fills it from its own options
/// (`cli::CommonArgs::pipeline_options`).
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    pub ledger: LedgerChoice,
    /// Ledger table slots per CPU and overflow map entries (testing map pressure).
    pub ledger_table_slots: Option<u32>,
    pub ledger_overflow_entries: Option<u32>,
    pub gpu_probes: GpuProbeMode,
    /// libcuda files to probe besides those discovered.
    pub cuda_libs: Vec<PathBuf>,
    /// The energy sources, with the sysfs and procfs roots every part reads.
    pub sources: SourceOptions,
    /// Values that win over the config file, and which file.
    pub overrides: Overrides,
}

impl PipelineOptions {
    pub fn sysfs_root(&self) -> &Path {
        &self.sources.sysfs_root
    }

    pub fn procfs_root(&self) -> &Path {
        &self.sources.procfs_root
    }

    /// The config file merged under the overrides.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Settings::resolve(&self.overrides, self.procfs_root())
    }
}

/// Opens the ledger the options ask for; `auto` falls back to /proc with the reason.
pub fn open_ledger(opts: &PipelineOptions) -> anyhow::Result<Box<dyn CpuLedger>> {
    let (sysfs_root, procfs_root) = (opts.sysfs_root(), opts.procfs_root());
    let mut load = LoadOptions::new(sysfs_root, procfs_root);
    if let Some(slots) = opts.ledger_table_slots {
        load.table_slots = slots;
    }
    load.overflow_entries = opts.ledger_overflow_entries;
    load.gpu.mode = opts.gpu_probes;
    load.gpu.libraries.clone_from(&opts.cuda_libs);
    let reason = match opts.ledger {
        LedgerChoice::Procfs => "/proc sampling was asked for (--ledger procfs)".to_string(),
        LedgerChoice::Ebpf | LedgerChoice::Auto => match EbpfLedger::new(&load) {
            Ok(ledger) => return Ok(Box::new(ledger)),
            Err(err) if opts.ledger == LedgerChoice::Ebpf => {
                anyhow::bail!("eBPF ledger unavailable: {}", error_chain(&err))
            }
            Err(err) => error_chain(&err),
        },
    };
    let cpus = topology::possible_cpus(sysfs_root).unwrap_or(1);
    let topology = Topology::read(sysfs_root, cpus);
    Ok(Box::new(ProcLedger::new(procfs_root, topology, reason)?))
}

/// Opens the energy sources the options ask for.
pub fn open_sources(opts: &SourceOptions) -> anyhow::Result<Sources> {
    Sources::open(opts).map_err(|err| anyhow::anyhow!("energy source unavailable: {err}"))
}

/// Opens everything a tick needs.
pub fn open_pipeline(opts: &PipelineOptions) -> anyhow::Result<Pipeline> {
    let settings = opts.settings()?;
    let sources = open_sources(&opts.sources)?;
    Pipeline::new(open_ledger(opts)?, sources, settings)
}

/// One ledger, the energy sources, and what it takes to turn them into Intervals.
pub struct Pipeline {
    ledger: Box<dyn CpuLedger>,
    sources: Sources,
    settings: Settings,
    users: UserNames,
    jobs: JobResolver,
    carbon: CarbonResolver,
    /// Installed memory, bytes, for splitting estimated memory energy (0: unknown).
    mem_total_bytes: u64,
    page_bytes: u64,
    /// Resident sizes, each re-read at most every few seconds.
    resident: ResidentCache,
}

impl Pipeline {
    /// Joins a ledger and sources; the sources' baselines are reset so the first
    /// interval's energy covers the same time as its CPU time. Fails on a bad carbon
    /// setting (an unreadable series, a provider without a token).
    pub fn new(
        ledger: Box<dyn CpuLedger>,
        mut sources: Sources,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let carbon_config = settings.config.carbon().context("carbon intensity")?;
        let carbon = CarbonResolver::new(carbon_config)?;
        let mem_total_bytes =
            MemoryEstimate::open(&settings.procfs_root).map_or(0, |memory| memory.total_bytes);
        let _ = sources.cpu.read();
        if let Some(gpu) = sources.gpu.as_mut() {
            let _ = gpu.read();
        }
        Ok(Pipeline {
            ledger,
            sources,
            jobs: JobResolver::new(&settings.procfs_root),
            carbon,
            settings,
            users: UserNames::load(Path::new("/etc/passwd")),
            mem_total_bytes,
            page_bytes: page_bytes(),
            resident: ResidentCache::default(),
        })
    }

    /// New settings between ticks (a reload): the carbon intensity is resolved
    /// again; the ledger and the energy sources stay as they are.
    pub fn reconfigure(&mut self, settings: Settings) -> anyhow::Result<()> {
        let carbon_config = settings.config.carbon().context("carbon intensity")?;
        self.carbon = CarbonResolver::new(carbon_config)?;
        self.settings = settings;
        Ok(())
    }

    pub fn ledger(&self) -> &dyn CpuLedger {
        self.ledger.as_ref()
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Ends the interval and returns it; `threads` adds per-thread rows.
    pub fn tick(&mut self, threads: bool) -> Result<Interval, LedgerError> {
        let (mut cpu, mut gpu) = (Err(String::new()), None);
        let sources = &mut self.sources;
        let sample = self.ledger.sample_with(&mut || {
            cpu = sources.cpu.read().map_err(|e| e.to_string());
            gpu = sources
                .gpu
                .as_mut()
                .map(|g| (g.name().to_string(), g.read().map_err(|e| e.to_string())));
        })?;
        let resident = self.resident(&sample, cpu.as_ref().ok());
        let attribution = attribute_with_memory(
            &sample,
            cpu.as_ref().ok(),
            gpu.as_ref().and_then(|(_, r)| r.as_ref().ok()),
            self.settings.policy,
            &self.settings.calibration,
            &resident,
        );
        let gpu_only = self.gpu_only_rows(&sample, gpu.as_ref().and_then(|(_, r)| r.as_ref().ok()));
        let jobs = self.job_labels(&sample, &gpu_only);
        let carbon = self.carbon_context(SystemTime::now());
        let cpu_name = self.sources.cpu.name().to_string();
        let energy = match gpu {
            Some((gpu_name, gpu)) => summarize((&cpu_name, cpu), Some((&gpu_name, gpu))),
            None => summarize((&cpu_name, cpu), None),
        };
        let interval = build(BuildInput {
            sample: &sample,
            fidelity: self.ledger.fidelity(),
            energy,
            attribution: &attribution,
            policy: self.settings.policy,
            carbon: &carbon,
            users: &self.users,
            jobs: &jobs,
            gpu_only: &gpu_only,
            threads,
        });
        Ok(interval)
    }

    /// Resident memory of the processes that ran, read only when memory energy is
    /// estimated (and so split by it): `statm` of each process that ran, at most once
    /// per [`RESIDENT_REFRESH`](crate::energy::memory::RESIDENT_REFRESH) each, none
    /// for idle or exited ones.
    fn resident(&mut self, sample: &LedgerSample, cpu: Option<&EnergyReading>) -> Resident {
        let estimated = cpu.is_some_and(|reading| {
            reading
                .domains
                .iter()
                .any(|d| d.provenance == Provenance::EstimatedMemory)
        });
        if !estimated {
            return Resident::default();
        }
        let live = sample
            .processes
            .iter()
            .filter(|p| !p.exited)
            .map(|p| (p.tgid, p.start_ns));
        let by_pid = self.resident.update(
            &self.settings.procfs_root,
            self.page_bytes,
            live,
            sample.interval,
        );
        Resident {
            by_pid,
            total_bytes: self.mem_total_bytes,
        }
    }

    /// The carbon intensity for an interval ending at `at`.
    fn carbon_context(&mut self, at: SystemTime) -> CarbonContext {
        let intensity = self.carbon.intensity_at(at);
        CarbonContext {
            g_per_kwh: intensity.g_per_kwh,
            pue: self.carbon.pue(),
            region: intensity.region,
            source: intensity.source.label().to_string(),
            note: intensity.note,
        }
    }

    /// Processes on a GPU that did not run on a CPU this interval get a row too.
    fn gpu_only_rows(
        &self,
        sample: &LedgerSample,
        gpus: Option<&EnergyReading>,
    ) -> Vec<ProcessSample> {
        let Some(reading) = gpus else {
            return Vec::new();
        };
        let on_cpu: HashSet<u32> = sample.processes.iter().map(|p| p.tgid).collect();
        let mut pids: Vec<u32> = reading
            .gpus
            .iter()
            .flat_map(|g| {
                g.processes
                    .iter()
                    .map(|p| p.pid)
                    .chain(g.ended.iter().map(|a| a.pid))
            })
            .filter(|pid| !on_cpu.contains(pid))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids.into_iter()
            .map(|pid| {
                let stat = read_stat(&self.settings.procfs_root, pid, None).ok();
                ProcessSample {
                    tgid: pid,
                    start_ns: stat.as_ref().map_or(0, |s| s.start_ns),
                    ppid: stat.as_ref().map_or(0, |s| s.ppid),
                    comm: stat.map_or_else(|| "?".to_string(), |s| s.comm),
                    on_cpu_ns_by_package: vec![0; sample.packages.len().max(1)],
                    exited: false,
                    ..ProcessSample::default()
                }
            })
            .collect()
    }

    fn job_labels(
        &mut self,
        sample: &LedgerSample,
        extra: &[ProcessSample],
    ) -> HashMap<u32, String> {
        let mut labels = HashMap::new();
        for p in sample.processes.iter().chain(extra) {
            let info = self
                .jobs
                .resolve(p.tgid, p.start_ns, p.ppid, &p.comm, &p.cgroup);
            if p.exited {
                self.jobs.forget(p.tgid, p.start_ns);
            }
            if let Some(job) = info.job {
                labels.insert(p.tgid, job);
            }
        }
        labels
    }
}
