//! The last-resort energy source: CPU package power estimated from the load in
//! `/proc/stat` and a TDP (bare metal) or per-vCPU coefficients (VMs). Every value is
//! tagged `estimated-tdp`; `docs/estimate.md` gives the formulas and their sources.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    Domain, DomainEnergy, DomainKind, EnergyReading, EnergySource, Provenance, SourceError, tdp,
};
use crate::topology::{self, Topology};

/// Teads' load curve: (utilisation, fraction of TDP drawn), interpolated linearly.
pub const LOAD_CURVE: [(f64, f64); 4] = [(0.0, 0.12), (0.10, 0.32), (0.50, 0.75), (1.00, 1.02)];
/// CodeCarbon's TDP for a CPU model missing from its table, watts per package.
pub const DEFAULT_TDP_W: f64 = 85.0;
/// Cloud Carbon Footprint's AWS average watts per vCPU at 0 % and 100 % load.
pub const VCPU_MIN_W: f64 = 0.74;
pub const VCPU_MAX_W: f64 = 3.5;

/// Highest CPU number accepted in `/proc/stat`, against a garbage line's huge index.
const MAX_CPU: usize = 1 << 16;

/// Fraction of TDP drawn at `utilisation` (0..=1, clamped), from [`LOAD_CURVE`].
pub fn load_curve(utilisation: f64) -> f64 {
    let u = utilisation.clamp(0.0, 1.0);
    for pair in LOAD_CURVE.windows(2) {
        let ((u0, f0), (u1, f1)) = (pair[0], pair[1]);
        if u <= u1 {
            return f0 + (u - u0) / (u1 - u0) * (f1 - f0);
        }
    }
    LOAD_CURVE[LOAD_CURVE.len() - 1].1
}

/// How package power follows from utilisation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PowerModel {
    /// Bare metal: `tdp_w × f(u)` for each package.
    PackageTdp { tdp_w: f64 },
    /// VM with `--cpu-tdp-watts`: `machine_w × f(u)`, split over packages by vCPUs.
    MachineTdp { machine_w: f64 },
    /// VM: `vcpus × (VCPU_MIN_W + (VCPU_MAX_W − VCPU_MIN_W) × u)`.
    PerVcpu,
}

impl PowerModel {
    fn power_w(self, utilisation: f64, package_vcpus: usize, all_vcpus: usize) -> f64 {
        let u = utilisation.clamp(0.0, 1.0);
        match self {
            PowerModel::PackageTdp { tdp_w } => tdp_w * load_curve(u),
            PowerModel::MachineTdp { machine_w } => {
                let share = package_vcpus as f64 / all_vcpus.max(1) as f64;
                machine_w * share * load_curve(u)
            }
            PowerModel::PerVcpu => {
                package_vcpus as f64 * (VCPU_MIN_W + (VCPU_MAX_W - VCPU_MIN_W) * u)
            }
        }
    }
}

/// Cumulative ticks of one CPU: busy = user+nice+system+irq+softirq+steal,
/// idle = idle+iowait (guest time is already inside user and nice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CpuTicks {
    busy: u64,
    idle: u64,
}

/// What `/proc/cpuinfo` says about the CPU.
struct CpuInfo {
    model_name: Option<String>,
    hypervisor: bool,
}

/// CPU power from load, one `Package` domain per physical package.
pub struct EstimateSource {
    stat_path: PathBuf,
    topology: Topology,
    model: PowerModel,
    /// Attached to every domain when the estimate rests on an assumption.
    note: Option<String>,
    description: Vec<String>,
    previous: Vec<Option<CpuTicks>>,
    previous_at: Instant,
    /// Per package (index into `topology.packages`); kept when no tick elapsed.
    utilisation: Vec<f64>,
}

impl EstimateSource {
    /// Reads `<procfs>/cpuinfo`, the topology under `sysfs_root` and the baseline of
    /// `<procfs>/stat`. `tdp_override_w` is watts per package on bare metal and watts
    /// for all of this machine's CPUs on a VM.
    pub fn open(
        procfs_root: &Path,
        sysfs_root: &Path,
        tdp_override_w: Option<f64>,
    ) -> Result<EstimateSource, SourceError> {
        if let Some(watts) = tdp_override_w.filter(|w| !(w.is_finite() && *w > 0.0)) {
            return Err(SourceError::Unsupported(format!(
                "--cpu-tdp-watts {watts}: not a positive number of watts"
            )));
        }
        let cpuinfo_path = procfs_root.join("cpuinfo");
        let cpuinfo = read_cpuinfo(&cpuinfo_path)?;
        let stat_path = procfs_root.join("stat");
        let previous = read_stat(&stat_path)?;
        let mut description = Vec::new();
        let possible = topology::possible_cpus(sysfs_root).unwrap_or_else(|err| {
            description.push(format!("{err}: CPUs taken from {}", stat_path.display()));
            previous.len()
        });
        let topology = Topology::read(sysfs_root, possible.max(previous.len()));
        let (model, note, mut model_lines) = choose_model(&cpuinfo, &cpuinfo_path, tdp_override_w);
        model_lines.append(&mut description);
        model_lines.extend(package_lines(&topology));
        model_lines.extend(topology.notes.iter().cloned());
        Ok(EstimateSource {
            stat_path,
            utilisation: vec![0.0; topology.packages.len()],
            topology,
            model,
            note,
            description: model_lines,
            previous,
            previous_at: Instant::now(),
        })
    }

    /// When the previous read (or the baseline) was taken.
    pub fn previous_at(&self) -> Instant {
        self.previous_at
    }

    /// Energy since the previous read, as if it happened at `now` (monotonic).
    pub fn read_at(&mut self, now: Instant) -> Result<EnergyReading, SourceError> {
        let current = read_stat(&self.stat_path)?;
        let elapsed = now.saturating_duration_since(self.previous_at);
        let packages = self.topology.packages.len();
        let (mut busy, mut total, mut vcpus) =
            (vec![0; packages], vec![0; packages], vec![0; packages]);
        for (cpu, ticks) in current.iter().enumerate() {
            let Some(ticks) = ticks else { continue };
            let package = self.topology.package_index(cpu);
            vcpus[package] += 1;
            if let Some(Some(before)) = self.previous.get(cpu) {
                let busy_ticks = ticks.busy.saturating_sub(before.busy);
                busy[package] += busy_ticks;
                total[package] += busy_ticks + ticks.idle.saturating_sub(before.idle);
            }
        }
        let all_vcpus = vcpus.iter().sum();
        let mut domains = Vec::with_capacity(packages);
        for (index, &package_id) in self.topology.packages.iter().enumerate() {
            if total[index] > 0 {
                self.utilisation[index] = busy[index] as f64 / total[index] as f64;
            }
            let power_w = self
                .model
                .power_w(self.utilisation[index], vcpus[index], all_vcpus);
            let domain = Domain {
                kind: DomainKind::Package,
                index: package_id,
                name: format!("estimated package {package_id}"),
            };
            domains.push(DomainEnergy {
                note: self.note.clone(),
                ..DomainEnergy::counted(
                    domain,
                    energy_uj(power_w, elapsed),
                    Provenance::EstimatedTdp,
                )
            });
        }
        self.previous = current;
        self.previous_at = now;
        Ok(EnergyReading {
            elapsed,
            domains,
            ..EnergyReading::default()
        })
    }
}

impl EnergySource for EstimateSource {
    fn name(&self) -> &str {
        Provenance::EstimatedTdp.label()
    }

    fn describe(&self) -> Vec<String> {
        self.description.clone()
    }

    fn read(&mut self) -> Result<EnergyReading, SourceError> {
        self.read_at(Instant::now())
    }
}

fn energy_uj(power_w: f64, elapsed: Duration) -> u64 {
    // Non-negative and finite: power is a product of positive finite values.
    (power_w * elapsed.as_secs_f64() * 1e6).round() as u64
}

/// The power model, the note for every domain, and the describe() lines saying why.
fn choose_model(
    cpuinfo: &CpuInfo,
    cpuinfo_path: &Path,
    tdp_override_w: Option<f64>,
) -> (PowerModel, Option<String>, Vec<String>) {
    let shown_name = match &cpuinfo.model_name {
        Some(name) => format!("'{name}'"),
        None => format!("(no model name in {})", cpuinfo_path.display()),
    };
    let matched = cpuinfo.model_name.as_deref().and_then(tdp::lookup);
    let mut lines = vec![format!("CPU model {shown_name}")];
    lines.push(match matched {
        Some(row) => format!(
            "TDP table row '{}': {} W (CodeCarbon 3.3.2 data)",
            row.name, row.tdp_w
        ),
        None => format!("no TDP table row matches {shown_name}"),
    });
    let (model, note) = if cpuinfo.hypervisor {
        (vm_model(tdp_override_w, &mut lines), None)
    } else {
        let tdp_w = match (tdp_override_w, matched) {
            (Some(watts), _) => watts,
            (None, Some(row)) => row.tdp_w,
            (None, None) => DEFAULT_TDP_W,
        };
        lines.push("bare metal (no hypervisor flag in cpuinfo)".to_string());
        lines.push(format!("power per package = {tdp_w} W TDP {CURVE_TEXT}"));
        let note = (tdp_override_w.is_none() && matched.is_none()).then(|| {
            let why = match &cpuinfo.model_name {
                Some(name) => format!("unknown CPU model '{name}'"),
                None => format!("no CPU model name in {}", cpuinfo_path.display()),
            };
            format!("{why}: assumed {DEFAULT_TDP_W} W")
        });
        (PowerModel::PackageTdp { tdp_w }, note)
    };
    lines.push(match tdp_override_w {
        Some(watts) => format!("override: --cpu-tdp-watts {watts}"),
        None => "override: none (--cpu-tdp-watts sets the watts)".to_string(),
    });
    lines.extend(note.clone());
    (model, note, lines)
}

const CURVE_TEXT: &str =
    "× load curve f(u) (Teads: f(0)=0.12, f(0.1)=0.32, f(0.5)=0.75, f(1)=1.02)";

/// On a VM the host's TDP says nothing about this guest's share: per-vCPU
/// coefficients, or the override for the whole machine.
fn vm_model(tdp_override_w: Option<f64>, lines: &mut Vec<String>) -> PowerModel {
    lines.push(
        "virtual machine (hypervisor flag in cpuinfo): the host package's TDP says \
         nothing about this guest's share, so the table is not used"
            .to_string(),
    );
    match tdp_override_w {
        Some(machine_w) => {
            lines.push(format!(
                "power = {machine_w} W for this machine's vCPUs {CURVE_TEXT}"
            ));
            PowerModel::MachineTdp { machine_w }
        }
        None => {
            lines.push(format!(
                "power = vCPUs × ({VCPU_MIN_W} W + ({VCPU_MAX_W} W − {VCPU_MIN_W} W) × u) \
                 (Cloud Carbon Footprint's AWS per-vCPU coefficients)"
            ));
            PowerModel::PerVcpu
        }
    }
}

/// `package 0: estimated from CPUs 0-1,4` for each package.
fn package_lines(topology: &Topology) -> Vec<String> {
    topology
        .packages
        .iter()
        .map(|&package| {
            let cpus: Vec<usize> = (0..topology.package_of_cpu.len())
                .filter(|&cpu| topology.package_of_cpu[cpu] == package)
                .collect();
            format!(
                "package {package}: estimated from CPUs {}",
                cpu_ranges(&cpus)
            )
        })
        .collect()
}

/// `0-3,8` for `[0, 1, 2, 3, 8]`.
fn cpu_ranges(cpus: &[usize]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &cpu in cpus {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == cpu => *last = cpu,
            _ => ranges.push((cpu, cpu)),
        }
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect();
    parts.join(",")
}

fn read_file(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_cpuinfo(path: &Path) -> Result<CpuInfo, SourceError> {
    let text = read_file(path)?;
    let value_of = |wanted: &str| {
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim() == wanted)
            .map(|(_, value)| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    // x86 says `model name`; older Arm kernels `Processor`; MIPS `cpu model`.
    let model_name = value_of("model name")
        .or_else(|| value_of("Processor"))
        .or_else(|| value_of("cpu model"));
    let hypervisor = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim() == "flags")
        .any(|(_, flags)| flags.split_whitespace().any(|flag| flag == "hypervisor"));
    Ok(CpuInfo {
        model_name,
        hypervisor,
    })
}

fn read_stat(path: &Path) -> Result<Vec<Option<CpuTicks>>, SourceError> {
    parse_stat(path, &read_file(path)?)
}

/// Ticks of each `cpuN` line, indexed by N (None for CPUs not listed: offline).
fn parse_stat(path: &Path, text: &str) -> Result<Vec<Option<CpuTicks>>, SourceError> {
    let mut cpus: Vec<Option<CpuTicks>> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(number) = fields.next().and_then(|label| label.strip_prefix("cpu")) else {
            continue;
        };
        if number.is_empty() {
            continue; // the all-CPU line
        }
        let parse_error = || SourceError::Parse {
            path: path.to_path_buf(),
            text: line.to_string(),
        };
        let cpu: usize = number.parse().map_err(|_| parse_error())?;
        let values: Vec<u64> = fields
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| parse_error())?;
        if values.len() < 4 || cpu > MAX_CPU {
            return Err(parse_error());
        }
        let field = |i: usize| values.get(i).copied().unwrap_or(0);
        let busy = [0, 1, 2, 5, 6, 7]
            .into_iter()
            .map(field)
            .fold(0, u64::saturating_add);
        let idle = field(3).saturating_add(field(4));
        if cpus.len() <= cpu {
            cpus.resize(cpu + 1, None);
        }
        cpus[cpu] = Some(CpuTicks { busy, idle });
    }
    if cpus.is_empty() {
        return Err(SourceError::Parse {
            path: path.to_path_buf(),
            text: "no cpuN lines".to_string(),
        });
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests;
