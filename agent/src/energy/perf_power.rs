//! RAPL energy through the perf `power` PMU, for machines where powercap is absent or
//! root-only: one system-wide counter per energy event and package.
mod pmu;
mod reader;

use std::path::Path;
use std::time::Instant;

use super::counter::counter_delta_uj;
use super::{
    Domain, DomainEnergy, DomainKind, EnergyReading, EnergySource, Provenance, ReadKind,
    SourceError,
};
use crate::topology::{self, Topology};
pub use pmu::{
    KNOWN_EVENTS, PowerEvent, PowerPmu, parse_cpu_list, parse_event_config, parse_power_pmu,
};
pub use reader::{CounterOpener, PerfEventOpen, PerfFd, RawCounter};

/// Hint given when `perf_event_open` refuses the power PMU.
pub const PERMISSION_HINT: &str = "the power PMU counts whole CPUs, which needs CAP_PERFMON \
     (or CAP_SYS_ADMIN) or kernel.perf_event_paranoid <= 0; run as root or use --source rapl";

/// RAPL energy read from perf `power` PMU counters (`energy-pkg`, `energy-ram`, …).
///
/// Each event is opened on one CPU per package (the PMU's `cpumask`), except
/// `energy-psys`, which covers the whole platform and is opened once. Domains:
/// `energy-pkg` → Package, `energy-ram` → Dram, `energy-psys` → Psys, and the package
/// parts `energy-cores` → Core and `energy-gpu` → Uncore (already included in Package).
#[derive(Debug)]
pub struct PerfPowerSource {
    counters: Vec<Counter>,
    notes: Vec<String>,
    last_read: Instant,
}

#[derive(Debug)]
struct Counter {
    domain: Domain,
    reader: Box<dyn RawCounter>,
    /// Joules per count.
    scale: f64,
    pmu_type: u32,
    config: u64,
    /// Cumulative energy at the last good read, in µJ.
    last_uj: u64,
}

impl PerfPowerSource {
    /// Parses the `power` PMU under `sysfs_root` and opens its counters, taking the
    /// baseline. Errors: no PMU → `NotFound` naming the path; EACCES/EPERM →
    /// `PermissionDenied`; no counter could be opened → the first failure
    /// (`Unsupported` naming the event for ENOENT/EINVAL).
    pub fn open(sysfs_root: &Path) -> Result<PerfPowerSource, SourceError> {
        PerfPowerSource::open_with(sysfs_root, &PerfEventOpen)
    }

    /// `open`, with the counters opened by `opener` instead of `perf_event_open`.
    pub fn open_with(
        sysfs_root: &Path,
        opener: &dyn CounterOpener,
    ) -> Result<PerfPowerSource, SourceError> {
        let pmu = parse_power_pmu(sysfs_root)?;
        let sockets = socket_cpus(sysfs_root, &pmu.cpus);
        let mut counters = Vec::new();
        let mut notes = pmu.notes.clone();
        let mut failures = Vec::new();
        let last_read = Instant::now();
        for (event, cpu, index) in counter_plan(&pmu.events, &sockets) {
            match open_counter(opener, &pmu, event, cpu, index) {
                Ok(counter) => counters.push(counter),
                Err(err @ SourceError::PermissionDenied { .. }) => return Err(err),
                Err(err) => {
                    notes.push(format!("skipped power/{} on CPU {cpu}: {err}", event.name));
                    failures.push(err);
                }
            }
        }
        if counters.is_empty() {
            return Err(failures.into_iter().next().unwrap_or_else(|| {
                SourceError::Unsupported(format!("{}: no CPU in cpumask", pmu.dir.display()))
            }));
        }
        Ok(PerfPowerSource::from_counters(counters, notes, last_read))
    }

    fn from_counters(counters: Vec<Counter>, notes: Vec<String>, last_read: Instant) -> Self {
        PerfPowerSource {
            counters,
            notes,
            last_read,
        }
    }

    /// The domains this source reports, in `read` order.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.counters.iter().map(|counter| &counter.domain)
    }
}

impl EnergySource for PerfPowerSource {
    fn name(&self) -> &str {
        Provenance::PerfPower.label()
    }

    fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.counters.iter().map(Counter::describe).collect();
        lines.extend(self.notes.iter().cloned());
        lines
    }

    fn read(&mut self) -> Result<EnergyReading, SourceError> {
        let now = Instant::now();
        let domains = self.counters.iter_mut().map(Counter::read_delta).collect();
        let elapsed = now.duration_since(self.last_read);
        self.last_read = now;
        Ok(EnergyReading {
            elapsed,
            domains,
            ..EnergyReading::default()
        })
    }
}

impl Counter {
    /// Wraps an open counter, reading its baseline.
    fn new(
        domain: Domain,
        mut reader: Box<dyn RawCounter>,
        scale: f64,
        pmu_type: u32,
        config: u64,
    ) -> std::io::Result<Counter> {
        let last_uj = count_to_uj(reader.read_count()?, scale);
        Ok(Counter {
            domain,
            reader,
            scale,
            pmu_type,
            config,
            last_uj,
        })
    }

    fn read_delta(&mut self) -> DomainEnergy {
        let (energy_uj, note, read) = match self.reader.read_count() {
            Ok(count) => {
                let now_uj = count_to_uj(count, self.scale);
                let prev_uj = std::mem::replace(&mut self.last_uj, now_uj);
                match counter_delta_uj(prev_uj, now_uj, None) {
                    Ok(delta_uj) => (delta_uj, None, ReadKind::Counted),
                    Err(err) => (
                        0,
                        Some(format!("{}: {err}", self.domain.name)),
                        ReadKind::Backwards { prev_uj, now_uj },
                    ),
                }
            }
            Err(err) => (
                0,
                Some(format!(
                    "reading {}: {err}; counted 0 for this interval",
                    self.domain.name
                )),
                ReadKind::Failed,
            ),
        };
        DomainEnergy {
            note,
            read,
            ..DomainEnergy::counted(self.domain.clone(), energy_uj, Provenance::PerfPower)
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} -> {:?} {}: type {}, config {:#x}, scale {:e} J per count",
            self.domain.name,
            self.domain.kind,
            self.domain.index,
            self.pmu_type,
            self.config,
            self.scale
        )
    }
}

/// Each cpumask CPU with its physical package, from the CPU topology under `sysfs_root`
/// (package 0 where that is missing).
pub fn socket_cpus(sysfs_root: &Path, cpus: &[u32]) -> Vec<(u32, u32)> {
    let needed = cpus.iter().max().map_or(0, |&cpu| cpu as usize + 1);
    let possible = topology::possible_cpus(sysfs_root).unwrap_or(0).max(needed);
    let topology = Topology::read(sysfs_root, possible);
    cpus.iter()
        .map(|&cpu| {
            let package = topology
                .package_of_cpu
                .get(cpu as usize)
                .copied()
                .unwrap_or(0);
            (cpu, package)
        })
        .collect()
}

/// (event, CPU to open it on, domain index) for every counter: each event on every
/// socket CPU with the CPU's package as index; psys, a platform-wide counter, once
/// with index 0 (opening it per socket would count the platform twice).
fn counter_plan<'a>(
    events: &'a [PowerEvent],
    sockets: &[(u32, u32)],
) -> Vec<(&'a PowerEvent, u32, u32)> {
    let mut plan = Vec::new();
    for event in events {
        if event.kind == DomainKind::Psys {
            plan.extend(sockets.first().map(|&(cpu, _)| (event, cpu, 0)));
        } else {
            plan.extend(sockets.iter().map(|&(cpu, package)| (event, cpu, package)));
        }
    }
    plan
}

fn open_counter(
    opener: &dyn CounterOpener,
    pmu: &PowerPmu,
    event: &PowerEvent,
    cpu: u32,
    index: u32,
) -> Result<Counter, SourceError> {
    let name = format!("power/{} cpu {cpu}", event.name);
    let reader = opener
        .open(pmu.pmu_type, event.config, cpu)
        .map_err(|err| open_error(pmu, event, cpu, err))?;
    let domain = Domain {
        kind: event.kind,
        index,
        name,
    };
    Counter::new(domain, reader, event.scale, pmu.pmu_type, event.config).map_err(|err| {
        SourceError::Device {
            call: format!("read power/{} on CPU {cpu}", event.name),
            message: err.to_string(),
        }
    })
}

/// Maps a `perf_event_open` failure for `event` on `cpu`.
fn open_error(pmu: &PowerPmu, event: &PowerEvent, cpu: u32, err: std::io::Error) -> SourceError {
    let what = format!(
        "perf_event_open power/{} (type {}, config {:#x}) on CPU {cpu}",
        event.name, pmu.pmu_type, event.config
    );
    match err.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => SourceError::PermissionDenied {
            path: pmu.dir.join("events").join(&event.name),
            hint: PERMISSION_HINT.to_string(),
        },
        Some(libc::ENOENT | libc::EINVAL | libc::EOPNOTSUPP | libc::ENODEV) => {
            SourceError::Unsupported(format!("{what}: {err}"))
        }
        _ => SourceError::Device {
            call: what,
            message: err.to_string(),
        },
    }
}

/// Cumulative energy in µJ. Converting the cumulative count (not each delta) keeps
/// rounding from accumulating: deltas of floored totals telescope.
fn count_to_uj(count: u64, scale_j: f64) -> u64 {
    // `as` saturates; f64 holds counts exactly up to 2^53 (decades of RAPL counting).
    (count as f64 * scale_j * 1e6) as u64
}

#[cfg(test)]
mod pmu_tests;
#[cfg(test)]
mod tests;
