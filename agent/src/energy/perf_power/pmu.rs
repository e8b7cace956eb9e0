//! Parsing the perf `power` PMU description in sysfs: type, cpumask and energy events.
use std::path::{Path, PathBuf};

use crate::energy::{DomainKind, SourceError};

/// The energy events this source knows, in report order, and what each covers.
pub const KNOWN_EVENTS: [(&str, DomainKind); 5] = [
    ("energy-pkg", DomainKind::Package),
    ("energy-ram", DomainKind::Dram),
    ("energy-cores", DomainKind::Core),
    ("energy-gpu", DomainKind::Uncore),
    ("energy-psys", DomainKind::Psys),
];

/// One energy event of the `power` PMU.
#[derive(Clone, Debug, PartialEq)]
pub struct PowerEvent {
    /// The event's file name, e.g. `energy-pkg`.
    pub name: String,
    pub kind: DomainKind,
    /// `perf_event_attr.config`, from `event=0x..` in the event file.
    pub config: u64,
    /// Joules per count, from `<event>.scale`.
    pub scale: f64,
    /// `<event>.unit` (`Joules`) where present.
    pub unit: Option<String>,
}

/// What `<sysfs-root>/bus/event_source/devices/power` describes.
#[derive(Clone, Debug, PartialEq)]
pub struct PowerPmu {
    pub dir: PathBuf,
    /// `perf_event_attr.type` of the PMU.
    pub pmu_type: u32,
    /// One CPU per package to open the counters on, from `cpumask`.
    pub cpus: Vec<u32>,
    pub events: Vec<PowerEvent>,
    /// Events skipped as malformed, one line each.
    pub notes: Vec<String>,
}

/// Reads the `power` PMU under `sysfs_root`. A malformed event is skipped with a note;
/// no PMU directory is `NotFound`, no usable event is `Unsupported`.
pub fn parse_power_pmu(sysfs_root: &Path) -> Result<PowerPmu, SourceError> {
    let dir = sysfs_root.join("bus/event_source/devices/power");
    if !dir.is_dir() {
        return Err(SourceError::NotFound(format!(
            "no perf power PMU at {}: this kernel or CPU exposes no RAPL perf events",
            dir.display()
        )));
    }
    let type_path = dir.join("type");
    let type_text = read_trimmed(&type_path)?;
    let pmu_type = type_text.parse().map_err(|_| SourceError::Parse {
        path: type_path,
        text: type_text,
    })?;
    let cpumask_path = dir.join("cpumask");
    let cpumask_text = read_trimmed(&cpumask_path)?;
    let cpus = parse_cpu_list(&cpumask_text).ok_or(SourceError::Parse {
        path: cpumask_path,
        text: cpumask_text,
    })?;
    let mut events = Vec::new();
    let mut notes = Vec::new();
    for (name, kind) in KNOWN_EVENTS {
        match parse_event(&dir.join("events"), name, kind) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(err) => notes.push(format!("skipped power/{name}: {err}")),
        }
    }
    if events.is_empty() {
        let mut text = format!("no usable energy event in {}", dir.join("events").display());
        for note in &notes {
            text.push_str("; ");
            text.push_str(note);
        }
        return Err(SourceError::Unsupported(text));
    }
    Ok(PowerPmu {
        dir,
        pmu_type,
        cpus,
        events,
        notes,
    })
}

/// One event, or None when its file is absent (the CPU lacks that domain).
fn parse_event(
    events_dir: &Path,
    name: &str,
    kind: DomainKind,
) -> Result<Option<PowerEvent>, SourceError> {
    let event_path = events_dir.join(name);
    if !event_path.exists() {
        return Ok(None);
    }
    let event_text = read_trimmed(&event_path)?;
    let config = parse_event_config(&event_text).ok_or(SourceError::Parse {
        path: event_path,
        text: event_text,
    })?;
    let scale_path = events_dir.join(format!("{name}.scale"));
    let scale_text = read_trimmed(&scale_path)?;
    let scale = scale_text
        .parse::<f64>()
        .ok()
        .filter(|scale| scale.is_finite() && *scale > 0.0)
        .ok_or(SourceError::Parse {
            path: scale_path,
            text: scale_text,
        })?;
    let unit_path = events_dir.join(format!("{name}.unit"));
    let unit = std::fs::read_to_string(&unit_path)
        .ok()
        .map(|text| text.trim().to_string());
    if let Some(unit) = unit.as_deref().filter(|unit| *unit != "Joules") {
        return Err(SourceError::Unsupported(format!(
            "{} says {unit:?}, not Joules",
            unit_path.display()
        )));
    }
    Ok(Some(PowerEvent {
        name: name.to_string(),
        kind,
        config,
        scale,
        unit,
    }))
}

/// The value of the `event=` term of an event file such as `event=0x02`.
pub fn parse_event_config(text: &str) -> Option<u64> {
    let value = text
        .split(',')
        .find_map(|term| term.trim().strip_prefix("event="))?;
    match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// Above any kernel's NR_CPUS: a larger number is garbage, not a CPU.
const MAX_CPUS: u32 = 1 << 16;

/// Every CPU of a kernel CPU list such as `0,16` or `0-1`; None if malformed.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for range in text.trim().split(',') {
        let (first, last): (u32, u32) = match range.split_once('-') {
            Some((first, last)) => (first.trim().parse().ok()?, last.trim().parse().ok()?),
            None => {
                let cpu = range.trim().parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last || last >= MAX_CPUS {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

fn read_trimmed(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })
}
