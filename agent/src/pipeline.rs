//! The tick: read the ledger and the energy sources, name users, and produce one
//! `Interval`.
use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use crate::cli::{CommonArgs, LedgerChoice};
use crate::energy::EnergySource;
use crate::energy::select::Sources;
use crate::energy::summary::{EnergySummary, summarize};
use crate::model::{
    Interval, LedgerHealthJson, PackageTime, ProcessEnergy, SystemSummary, ThreadEnergy, ns_to_s,
};
use crate::probes::ebpf::EbpfLedger;
use crate::probes::loader::{LoadOptions, error_chain};
use crate::probes::procfs::ProcLedger;
use crate::probes::{CpuLedger, LedgerError, LedgerSample};
use crate::topology::{self, Topology};

/// Opens the ledger the options ask for; `auto` falls back to /proc with the reason.
pub fn open_ledger(args: &CommonArgs) -> anyhow::Result<Box<dyn CpuLedger>> {
    let mut opts = LoadOptions::new(&args.sysfs_root, &args.procfs_root);
    if let Some(slots) = args.ledger_table_slots {
        opts.table_slots = slots;
    }
    opts.overflow_entries = args.ledger_overflow_entries;
    let reason = match args.ledger {
        LedgerChoice::Procfs => "/proc sampling was asked for (--ledger procfs)".to_string(),
        LedgerChoice::Ebpf | LedgerChoice::Auto => match EbpfLedger::new(&opts) {
            Ok(ledger) => return Ok(Box::new(ledger)),
            Err(err) if args.ledger == LedgerChoice::Ebpf => {
                anyhow::bail!("eBPF ledger unavailable: {}", error_chain(&err))
            }
            Err(err) => error_chain(&err),
        },
    };
    let cpus = topology::possible_cpus(&args.sysfs_root).unwrap_or(1);
    let topology = Topology::read(&args.sysfs_root, cpus);
    Ok(Box::new(ProcLedger::new(
        &args.procfs_root,
        topology,
        reason,
    )?))
}

/// Opens the energy sources the options ask for.
pub fn open_sources(args: &CommonArgs) -> anyhow::Result<Sources> {
    Sources::open(&args.source_options())
        .map_err(|err| anyhow::anyhow!("energy source unavailable: {err}"))
}

/// Opens everything a tick needs.
pub fn open_pipeline(args: &CommonArgs) -> anyhow::Result<Pipeline> {
    let sources = open_sources(args)?;
    Ok(Pipeline::new(open_ledger(args)?, sources))
}

/// One ledger, the energy sources, and what it takes to turn them into Intervals.
pub struct Pipeline {
    ledger: Box<dyn CpuLedger>,
    sources: Sources,
    users: UserNames,
}

impl Pipeline {
    /// Joins a ledger and sources; the sources' baselines are reset so the first
    /// interval's energy covers the same time as its CPU time.
    pub fn new(ledger: Box<dyn CpuLedger>, mut sources: Sources) -> Self {
        let _ = sources.cpu.read();
        if let Some(gpu) = sources.gpu.as_mut() {
            let _ = gpu.read();
        }
        Pipeline {
            ledger,
            sources,
            users: UserNames::load(Path::new("/etc/passwd")),
        }
    }

    pub fn ledger(&self) -> &dyn CpuLedger {
        self.ledger.as_ref()
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Ends the interval and returns it; `threads` adds per-thread rows.
    pub fn tick(&mut self, threads: bool) -> Result<Interval, LedgerError> {
        let sample = self.ledger.sample()?;
        let energy = self.read_energy();
        let mut interval = self.interval(&sample, threads);
        let system = &mut interval.system;
        system.cpu_joules = energy.cpu_joules;
        system.dram_joules = energy.dram_joules;
        system.gpu_joules = energy.gpu_joules;
        system.cpu_source = energy.cpu_source;
        system.gpu_source = energy.gpu_source;
        system.energy = energy.domains;
        system.gpus = energy.gpus;
        system.energy_notes = energy.notes;
        Ok(interval)
    }

    /// Reads every source; a failed read becomes a note, never a failed tick.
    fn read_energy(&mut self) -> EnergySummary {
        let read = |source: &mut Box<dyn EnergySource>| source.read().map_err(|e| e.to_string());
        let cpu_name = self.sources.cpu.name().to_string();
        let cpu = read(&mut self.sources.cpu);
        let gpu = self
            .sources
            .gpu
            .as_mut()
            .map(|g| (g.name().to_string(), read(g)));
        match gpu {
            Some((gpu_name, gpu)) => summarize((&cpu_name, cpu), Some((&gpu_name, gpu))),
            None => summarize((&cpu_name, cpu), None),
        }
    }

    fn interval(&self, sample: &LedgerSample, threads: bool) -> Interval {
        let fidelity = self.ledger.fidelity();
        let mut packages: Vec<PackageTime> = sample
            .packages
            .iter()
            .map(|&package| PackageTime {
                package,
                ..PackageTime::default()
            })
            .collect();
        let (mut busy_ns, mut idle_ns) = (0u64, 0u64);
        for cpu in &sample.cpus {
            busy_ns += cpu.busy_ns;
            idle_ns += cpu.idle_ns;
        }
        for (package, time) in package_times(sample).into_iter().enumerate() {
            if let Some(row) = packages.get_mut(package) {
                row.cpu_seconds = ns_to_s(time.0);
                row.idle_seconds = ns_to_s(time.1);
            }
        }
        let processes = sample
            .processes
            .iter()
            .map(|p| ProcessEnergy {
                pid: p.tgid,
                ppid: p.ppid,
                comm: p.comm.clone(),
                user: self.users.name(p.uid),
                uid: p.uid,
                cgroup: p.cgroup.clone(),
                job: None,
                start_ns: p.start_ns,
                cpu_seconds: ns_to_s(p.on_cpu_ns),
                cpu_seconds_by_package: p
                    .on_cpu_ns_by_package
                    .iter()
                    .map(|&ns| ns_to_s(ns))
                    .collect(),
                exited: p.exited,
                threads: threads.then(|| {
                    p.threads
                        .iter()
                        .map(|t| ThreadEnergy {
                            tid: t.tid,
                            comm: t.comm.clone(),
                            cpu_seconds: ns_to_s(t.on_cpu_ns),
                            exited: t.exited,
                        })
                        .collect()
                }),
            })
            .collect();
        Interval {
            ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            interval_s: sample.interval.as_secs_f64(),
            system: SystemSummary {
                cpu_seconds: ns_to_s(busy_ns),
                idle_seconds: ns_to_s(idle_ns),
                cpus: sample.cpus.len() as u32,
                packages,
                ledger: fidelity.label(),
                ledger_note: fidelity.note(),
                ledger_health: LedgerHealthJson {
                    switches: sample.health.switches,
                    flushes: sample.health.flushes,
                    overflow_charges: sample.health.overflow_charges,
                    dropped_slices: sample.health.dropped_slices,
                    dropped_cpu_seconds: ns_to_s(sample.health.dropped_ns),
                    lost_events: sample.health.lost_events,
                },
                ..SystemSummary::default()
            },
            processes,
        }
    }
}

/// Busy and idle ns per package index, from the per-CPU times.
fn package_times(sample: &LedgerSample) -> Vec<(u64, u64)> {
    let mut out = vec![(0u64, 0u64); sample.packages.len().max(1)];
    for (cpu, time) in sample.cpus.iter().enumerate() {
        let package = sample.cpu_package.get(cpu).copied().unwrap_or(0);
        if let Some(slot) = out.get_mut(package) {
            slot.0 += time.busy_ns;
            slot.1 += time.idle_ns;
        }
    }
    out
}

/// uid → user name, from a passwd file read once.
pub struct UserNames {
    names: HashMap<u32, String>,
}

impl UserNames {
    pub fn load(passwd: &Path) -> Self {
        let names = std::fs::read_to_string(passwd)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let uid = fields.nth(1)?.parse().ok()?;
                Some((uid, name.to_string()))
            })
            .collect();
        UserNames { names }
    }

    /// The user's name, or the uid as a number when it has none.
    pub fn name(&self, uid: u32) -> String {
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}
