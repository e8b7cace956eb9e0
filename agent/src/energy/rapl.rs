//! RAPL energy counters from the powercap tree, `<sysfs-root>/class/powercap/intel-rapl:*`.
mod zones;

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::counter::counter_delta_uj;
use super::{
    Domain, DomainEnergy, DomainKind, EnergyReading, EnergySource, Provenance, ReadKind,
    SourceError,
};
use crate::topology::{self, Topology};
use zones::{CounterFile, ZoneDir, find_zone_dirs, read_u64};

/// Hint given when `energy_uj` cannot be read for lack of privilege.
pub const PERMISSION_HINT: &str =
    "energy_uj is root-only since CVE-2020-8694; run as root or use --source perf";

/// RAPL energy counters read through the powercap sysfs interface.
///
/// Every `intel-rapl:N` zone (`package-N` or `psys`) and its `intel-rapl:N:M`
/// subzones (`core`, `uncore`, `dram`) is reported as its own [`DomainEnergy`]:
/// - `package-N` → [`DomainKind::Package`] with index N, the physical package id;
/// - `core` / `uncore` → [`DomainKind::Core`] / [`DomainKind::Uncore`] of the parent
///   package. These are parts of the package and already included in it: consumers
///   sum `Package` (and `Dram`), never `Package` + `Core` + `Uncore`;
/// - `dram` → [`DomainKind::Dram`] of the parent package (not included in it);
/// - `psys` → [`DomainKind::Psys`] index 0, the whole platform, overlapping all others.
///
/// `intel-rapl-mmio:*` zones read the same package counter through MMIO and are
/// skipped. AMD Zen parts expose their package and core counters under the same
/// `intel-rapl` names, usually without `dram`, and need nothing special.
///
/// Opening takes the baseline; each `read` returns the energy since the previous one,
/// wraparound undone with `max_energy_range_uj` (see [`counter_delta_uj`]). Each
/// `energy_uj` stays open from the start, so the agent still reads it after it has
/// dropped the privilege that opened it (docs/deploy/README.md#capabilities).
#[derive(Debug)]
pub struct RaplSource {
    zones: Vec<Zone>,
    /// Zones skipped at open, MMIO duplicates, topology mismatches: for `describe`.
    notes: Vec<String>,
    last_read: Instant,
    /// Reused for every `energy_uj` read.
    text_buf: String,
}

#[derive(Debug)]
struct Zone {
    domain: Domain,
    /// The zone's `name` file, e.g. `package-0`, `dram`.
    zone_name: String,
    dir: PathBuf,
    /// `energy_uj`, kept open (see [`CounterFile`]).
    energy: CounterFile,
    max_range_uj: Option<u64>,
    /// The last raw value read successfully, the base of the next delta.
    last_raw_uj: u64,
}

/// The selector's entry point: a RAPL source if the powercap tree is usable.
pub fn probe(sysfs_root: &Path) -> Result<RaplSource, SourceError> {
    RaplSource::open(sysfs_root)
}

impl RaplSource {
    /// Scans `<sysfs_root>/class/powercap/` and takes the baseline of every readable zone.
    ///
    /// Errors: no powercap tree or no `intel-rapl` zone → `NotFound` naming the path;
    /// every zone's `energy_uj` unreadable → `PermissionDenied` (root-only since
    /// CVE-2020-8694) or the first zone's error. A single bad zone is skipped and
    /// reported by `describe`.
    pub fn open(sysfs_root: &Path) -> Result<RaplSource, SourceError> {
        let powercap_dir = sysfs_root.join("class/powercap");
        let (dirs, mut notes) = find_zone_dirs(&powercap_dir)?;
        if dirs.is_empty() {
            return Err(SourceError::NotFound(format!(
                "no intel-rapl zone under {}",
                powercap_dir.display()
            )));
        }
        let mut text_buf = String::new();
        let mut zones: Vec<Zone> = Vec::with_capacity(dirs.len());
        let mut failures = Vec::new();
        let last_read = Instant::now();
        // Package id of each `intel-rapl:N` package zone, by N, for its subzones.
        let mut package_of_zone: Vec<(u32, u32)> = Vec::new();
        for dir in &dirs {
            let parent_package = package_of_zone
                .iter()
                .find(|(zone, _)| dir.subzone.is_some() && *zone == dir.package_zone)
                .map(|&(_, package)| package);
            match open_zone(dir, parent_package, &mut text_buf) {
                Ok(ZoneOpen::Ready(zone, note)) => {
                    if dir.subzone.is_none() && zone.domain.kind == DomainKind::Package {
                        package_of_zone.push((dir.package_zone, zone.domain.index));
                    }
                    notes.extend(note);
                    zones.push(zone);
                }
                Ok(ZoneOpen::Skipped(note)) => notes.push(note),
                Err(err) => {
                    notes.push(format!("skipped {}: {err}", dir.id));
                    failures.push(err);
                }
            }
        }
        if zones.is_empty() {
            return Err(no_usable_zone(&powercap_dir, failures));
        }
        notes.extend(topology_notes(sysfs_root, &zones));
        Ok(RaplSource {
            zones,
            notes,
            last_read,
            text_buf,
        })
    }

    /// The domains this source reports, in `read` order.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.zones.iter().map(|zone| &zone.domain)
    }
}

impl EnergySource for RaplSource {
    fn name(&self) -> &str {
        Provenance::RaplPowercap.label()
    }

    fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.zones.iter().map(Zone::describe).collect();
        lines.extend(self.notes.iter().cloned());
        lines
    }

    fn read(&mut self) -> Result<EnergyReading, SourceError> {
        let now = Instant::now();
        let domains = self
            .zones
            .iter_mut()
            .map(|zone| zone.read_delta(&mut self.text_buf))
            .collect();
        let elapsed = now.duration_since(self.last_read);
        self.last_read = now;
        Ok(EnergyReading {
            elapsed,
            domains,
            ..EnergyReading::default()
        })
    }
}

impl Zone {
    fn read_delta(&mut self, text_buf: &mut String) -> DomainEnergy {
        let (energy_uj, note, read) = match self.energy.read_u64(text_buf) {
            Ok(raw_uj) => {
                let prev_uj = std::mem::replace(&mut self.last_raw_uj, raw_uj);
                match counter_delta_uj(prev_uj, raw_uj, self.max_range_uj) {
                    Ok(delta_uj) if raw_uj < prev_uj => (
                        delta_uj,
                        None,
                        ReadKind::Wrapped {
                            prev_uj,
                            now_uj: raw_uj,
                        },
                    ),
                    Ok(delta_uj) => (delta_uj, None, ReadKind::Counted),
                    Err(err) => (
                        0,
                        Some(format!(
                            "{}: {err}; counted 0 for this interval",
                            self.energy.path.display()
                        )),
                        ReadKind::Backwards {
                            prev_uj,
                            now_uj: raw_uj,
                        },
                    ),
                }
            }
            Err(err) => (
                0,
                Some(format!(
                    "{err}; counted 0 for this interval, the next good read catches up"
                )),
                ReadKind::Failed,
            ),
        };
        DomainEnergy {
            note,
            read,
            ..DomainEnergy::counted(self.domain.clone(), energy_uj, Provenance::RaplPowercap)
        }
    }

    fn describe(&self) -> String {
        let included = match self.domain.kind {
            DomainKind::Core | DomainKind::Uncore => " (part of the package)",
            _ => "",
        };
        let range = match self.max_range_uj {
            Some(max_uj) => format!("max_energy_range_uj {max_uj}"),
            None => "no max_energy_range_uj (a wrap is reported, not undone)".to_string(),
        };
        let readable = match std::fs::read_to_string(&self.energy.path) {
            Ok(_) => "energy_uj readable".to_string(),
            Err(err) => format!("energy_uj unreadable now ({err})"),
        };
        format!(
            "{} {:?} {} {}{included}: {}, {range}, {readable}",
            self.domain.name,
            self.zone_name,
            self.domain.kind.label(),
            self.domain.index,
            self.dir.display()
        )
    }
}

enum ZoneOpen {
    /// Usable, with a note when something is degraded (no `max_energy_range_uj`).
    Ready(Zone, Option<String>),
    /// Not an energy zone this source knows; the note says why.
    Skipped(String),
}

/// Reads a zone's `name`, baseline and range. Err: its `energy_uj` is unreadable.
fn open_zone(
    dir: &ZoneDir,
    parent_package: Option<u32>,
    text_buf: &mut String,
) -> Result<ZoneOpen, SourceError> {
    let name_path = dir.path.join("name");
    let zone_name = match std::fs::read_to_string(&name_path) {
        Ok(text) => text.trim().to_string(),
        Err(err) => {
            return Ok(ZoneOpen::Skipped(format!(
                "skipped {}: cannot read {} ({err})",
                dir.id,
                name_path.display()
            )));
        }
    };
    let Some((kind, index)) = classify(&zone_name, dir.package_zone, parent_package) else {
        return Ok(ZoneOpen::Skipped(format!(
            "skipped {}: unknown zone name {zone_name:?} in {}",
            dir.id,
            name_path.display()
        )));
    };
    let mut energy = CounterFile::open(&dir.path.join("energy_uj"))?;
    let last_raw_uj = energy.read_u64(text_buf)?;
    let range_path = dir.path.join("max_energy_range_uj");
    let (max_range_uj, note) = match read_u64(&range_path, text_buf) {
        Ok(max_uj) => (Some(max_uj), None),
        Err(err) => (
            None,
            Some(format!(
                "{}: {err}; a wrap of this counter is reported, not undone",
                dir.id
            )),
        ),
    };
    let zone = Zone {
        domain: Domain {
            kind,
            index,
            name: dir.id.clone(),
        },
        zone_name,
        dir: dir.path.clone(),
        energy,
        max_range_uj,
        last_raw_uj,
    };
    Ok(ZoneOpen::Ready(zone, note))
}

/// Kind and index of a zone from its `name` file. `package_zone` is N of
/// `intel-rapl:N`, the fallback index when the parent package is unknown.
fn classify(
    zone_name: &str,
    package_zone: u32,
    parent_package: Option<u32>,
) -> Option<(DomainKind, u32)> {
    let parent = parent_package.unwrap_or(package_zone);
    match zone_name {
        "psys" => Some((DomainKind::Psys, 0)),
        "core" => Some((DomainKind::Core, parent)),
        "uncore" => Some((DomainKind::Uncore, parent)),
        "dram" => Some((DomainKind::Dram, parent)),
        _ => {
            // `package-N`, or `package-N-die-D` on multi-die parts.
            let rest = zone_name.strip_prefix("package-")?;
            let id = rest.split_once("-die-").map_or(rest, |(id, _)| id);
            Some((DomainKind::Package, id.parse().ok()?))
        }
    }
}

/// Maps an error reading a zone file; EACCES/EPERM become `PermissionDenied` with the hint.
pub fn map_read_error(path: &Path, err: std::io::Error) -> SourceError {
    if err.kind() == std::io::ErrorKind::PermissionDenied {
        SourceError::PermissionDenied {
            path: path.to_path_buf(),
            hint: PERMISSION_HINT.to_string(),
        }
    } else {
        SourceError::Io {
            path: path.to_path_buf(),
            source: err,
        }
    }
}

/// The error when no zone could be opened: permission first (the actionable one),
/// else the first failure, else NotFound.
fn no_usable_zone(powercap_dir: &Path, failures: Vec<SourceError>) -> SourceError {
    let permission = failures
        .iter()
        .position(|err| matches!(err, SourceError::PermissionDenied { .. }));
    let mut failures = failures;
    match permission {
        Some(at) => failures.swap_remove(at),
        None if !failures.is_empty() => failures.swap_remove(0),
        None => SourceError::NotFound(format!(
            "no usable intel-rapl zone under {}",
            powercap_dir.display()
        )),
    }
}

/// Notes for package zones whose package has no CPU, when the CPU topology is there.
fn topology_notes(sysfs_root: &Path, zones: &[Zone]) -> Vec<String> {
    let Ok(possible_cpus) = topology::possible_cpus(sysfs_root) else {
        return Vec::new();
    };
    let topology = Topology::read(sysfs_root, possible_cpus);
    zones
        .iter()
        .filter(|zone| zone.domain.kind == DomainKind::Package)
        .filter(|zone| !topology.packages.contains(&zone.domain.index))
        .map(|zone| {
            format!(
                "{} ({}): no CPU has physical_package_id {} in {}; its energy is not \
                 attributed to any CPU",
                zone.domain.name,
                zone.zone_name,
                zone.domain.index,
                sysfs_root.join("devices/system/cpu").display()
            )
        })
        .collect()
}

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod tests;
