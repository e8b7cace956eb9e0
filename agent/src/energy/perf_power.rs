//! RAPL energy through the perf `power` PMU, for machines where powercap is absent or
//! root-only: one system-wide counter per energy event and package.
mod pmu;

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use perf_event_open_sys as sys;

use super::counter::counter_delta_uj;
use super::{
    Domain, DomainEnergy, DomainKind, EnergyReading, EnergySource, Provenance, SourceError,
};
use crate::topology::{self, Topology};
pub use pmu::{
    KNOWN_EVENTS, PowerEvent, PowerPmu, parse_cpu_list, parse_event_config, parse_power_pmu,
};

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
    file: File,
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
        let pmu = parse_power_pmu(sysfs_root)?;
        let sockets = socket_cpus(sysfs_root, &pmu.cpus);
        let mut counters = Vec::new();
        let mut notes = pmu.notes.clone();
        let mut failures = Vec::new();
        let last_read = Instant::now();
        for (event, cpu, index) in counter_plan(&pmu.events, &sockets) {
            match open_counter(&pmu, event, cpu, index) {
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
            gpus: Vec::new(),
        })
    }
}

impl Counter {
    /// Wraps an open counter, reading its baseline.
    fn new(
        domain: Domain,
        file: File,
        scale: f64,
        pmu_type: u32,
        config: u64,
    ) -> std::io::Result<Counter> {
        let last_uj = count_to_uj(read_count(&file)?, scale);
        Ok(Counter {
            domain,
            file,
            scale,
            pmu_type,
            config,
            last_uj,
        })
    }

    fn read_delta(&mut self) -> DomainEnergy {
        let (energy_uj, note) = match read_count(&self.file) {
            Ok(count) => {
                let now_uj = count_to_uj(count, self.scale);
                let prev_uj = std::mem::replace(&mut self.last_uj, now_uj);
                match counter_delta_uj(prev_uj, now_uj, None) {
                    Ok(delta_uj) => (delta_uj, None),
                    Err(err) => (0, Some(format!("{}: {err}", self.domain.name))),
                }
            }
            Err(err) => (
                0,
                Some(format!(
                    "reading {}: {err}; counted 0 for this interval",
                    self.domain.name
                )),
            ),
        };
        DomainEnergy {
            domain: self.domain.clone(),
            energy_uj,
            provenance: Provenance::PerfPower,
            note,
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
    pmu: &PowerPmu,
    event: &PowerEvent,
    cpu: u32,
    index: u32,
) -> Result<Counter, SourceError> {
    let name = format!("power/{} cpu {cpu}", event.name);
    let file = perf_event_open_cpu(pmu.pmu_type, event.config, cpu)
        .map_err(|err| open_error(pmu, event, cpu, err))?;
    let domain = Domain {
        kind: event.kind,
        index,
        name,
    };
    Counter::new(domain, file, event.scale, pmu.pmu_type, event.config).map_err(|err| {
        SourceError::Device {
            call: format!("read power/{} on CPU {cpu}", event.name),
            message: err.to_string(),
        }
    })
}

/// A counting (not sampling), enabled, system-wide counter on `cpu`.
fn perf_event_open_cpu(pmu_type: u32, config: u64, cpu: u32) -> std::io::Result<File> {
    let mut attr = sys::bindings::perf_event_attr {
        type_: pmu_type,
        size: std::mem::size_of::<sys::bindings::perf_event_attr>() as u32,
        config,
        ..Default::default()
    };
    let cpu =
        libc::c_int::try_from(cpu).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `attr` is a zero-initialised perf_event_attr with its size set, valid for
    // the call; pid -1 with cpu >= 0 counts everything on that CPU; group_fd -1 is no group.
    let fd = unsafe {
        sys::perf_event_open(
            &mut attr,
            -1,
            cpu,
            -1,
            sys::bindings::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor returned by the kernel and owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
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

/// The raw 64-bit count of a counter opened without a read format.
fn read_count(mut file: &File) -> std::io::Result<u64> {
    let mut count_bytes = [0u8; 8];
    file.read_exact(&mut count_bytes)?;
    Ok(u64::from_ne_bytes(count_bytes))
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
