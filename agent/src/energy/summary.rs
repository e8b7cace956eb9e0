//! Turns the interval's energy readings into the JSON-facing summary: totals per
//! domain kind, provenance labels, per-domain and per-GPU detail, and notes.
use super::trust::{Change, CounterTrust};
use super::{DomainKind, EnergyReading, GpuDevice, Provenance};
use crate::model::{CounterJson, EnergyDomainJson, GpuJson, GpuProcessJson};

/// The energy part of `SystemSummary`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnergySummary {
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    pub platform_joules: f64,
    pub cpu_source: String,
    pub dram_source: String,
    pub gpu_source: String,
    pub platform_source: String,
    pub domains: Vec<EnergyDomainJson>,
    pub counters: Vec<CounterJson>,
    pub gpus: Vec<GpuJson>,
    pub notes: Vec<String>,
}

/// A source's reading, or why there is none this interval.
pub type ReadResult<'a> = (&'a str, Result<EnergyReading, String>);

/// Summarises one CPU and (optionally) one GPU reading.
pub fn summarize(cpu: ReadResult<'_>, gpu: Option<ReadResult<'_>>) -> EnergySummary {
    let none = || "none".to_string();
    let mut out = EnergySummary {
        cpu_source: cpu.0.to_string(),
        dram_source: none(),
        gpu_source: none(),
        platform_source: none(),
        ..EnergySummary::default()
    };
    match cpu.1 {
        Ok(reading) => {
            out.cpu_joules = reading.joules(DomainKind::Package);
            out.dram_joules = reading.joules(DomainKind::Dram);
            // psys is the whole platform: its own figure, never added to the packages.
            out.platform_joules = reading.joules(DomainKind::Psys);
            if let Some(label) = label_of(&reading, DomainKind::Package) {
                out.cpu_source = label;
            }
            out.dram_source = label_of(&reading, DomainKind::Dram).unwrap_or_else(none);
            out.platform_source = label_of(&reading, DomainKind::Psys).unwrap_or_else(none);
            push_domains(&mut out, &reading);
            push_counters(&mut out, &reading);
        }
        Err(err) => out.notes.push(format!("{}: {err}", cpu.0)),
    }
    if let Some((name, result)) = gpu {
        match result {
            Ok(reading) => {
                out.gpu_joules = reading.joules(DomainKind::Gpu);
                out.gpu_source =
                    label_of(&reading, DomainKind::Gpu).unwrap_or_else(|| name.to_string());
                push_domains(&mut out, &reading);
                out.gpus = reading.gpus.iter().map(|g| gpu_json(g, &reading)).collect();
            }
            Err(err) => {
                out.gpu_source = name.to_string();
                out.notes.push(format!("{name}: {err}"));
            }
        }
    }
    out
}

/// The provenance labels of one kind of domain, joined with `+` when mixed.
fn label_of(reading: &EnergyReading, kind: DomainKind) -> Option<String> {
    let mut labels: Vec<&str> = reading
        .domains
        .iter()
        .filter(|d| d.domain.kind == kind)
        .map(|d| d.provenance.label())
        .collect();
    labels.sort_unstable();
    labels.dedup();
    (!labels.is_empty()).then(|| labels.join("+"))
}

fn push_domains(out: &mut EnergySummary, reading: &EnergyReading) {
    let seconds = reading.elapsed.as_secs_f64();
    for d in &reading.domains {
        let joules = d.energy_uj as f64 / 1e6;
        out.domains.push(EnergyDomainJson {
            kind: d.domain.kind.label().to_string(),
            index: d.domain.index,
            name: d.domain.name.clone(),
            joules,
            watts: if seconds > 0.0 { joules / seconds } else { 0.0 },
            source: d.provenance.label().to_string(),
            measured: d.is_measured(),
            note: d.note.clone(),
        });
        if let Some(note) = &d.note {
            out.notes.push(format!("{}: {note}", d.domain.name));
        }
    }
}

/// Every watched counter, and a note for each one not believed or that changed.
fn push_counters(out: &mut EnergySummary, reading: &EnergyReading) {
    for counter in &reading.counters {
        let note = counter.note.as_ref().map(|note| {
            if counter.change == Some(Change::Recovered) {
                note.clone()
            } else {
                format!("{note}; {}", instead(counter, reading))
            }
        });
        out.notes.extend(note.clone());
        out.counters.push(CounterJson {
            name: counter.domain.name.clone(),
            kind: counter.domain.kind.label().to_string(),
            index: counter.domain.index,
            source: counter.provenance.label().to_string(),
            trusted: counter.trusted,
            problem: counter.problem.map(|p| p.label().to_string()),
            note,
            change: counter.change.map(|c| c.label().to_string()),
        });
    }
}

/// What stands in for a counter that is not believed this interval.
fn instead(counter: &CounterTrust, reading: &EnergyReading) -> String {
    let domain = &counter.domain;
    if reading.domains.iter().any(|d| d.domain == *domain) {
        return "shown as read but not as measured, because --source asked for it".to_string();
    }
    let stand_in = |kind: DomainKind| {
        reading
            .domains
            .iter()
            .find(|d| {
                d.domain.kind == kind
                    && (kind == DomainKind::Dram || d.domain.index == domain.index)
            })
            .map(|d| d.provenance.label())
    };
    match (domain.kind, stand_in(domain.kind)) {
        (DomainKind::Package, Some(label)) => format!(
            "package {} from {label} until it counts again",
            domain.index
        ),
        (DomainKind::Dram, Some(label)) => {
            format!("DRAM from {label} until every DRAM counter counts again")
        }
        (DomainKind::Psys, _) => "platform energy left out until it counts again".to_string(),
        _ => "left out until it counts again".to_string(),
    }
}

fn gpu_json(gpu: &GpuDevice, reading: &EnergyReading) -> GpuJson {
    let joules = reading
        .domains
        .iter()
        .filter(|d| d.domain.kind == DomainKind::Gpu && d.domain.index == gpu.index)
        .map(|d| d.energy_uj as f64 / 1e6)
        .fold(0.0, |sum, joules| sum + joules);
    GpuJson {
        index: gpu.index,
        name: gpu.name.clone(),
        uuid: gpu.uuid.clone(),
        joules,
        power_w: gpu.power_mw.map(|mw| f64::from(mw) / 1e3),
        gpu_util_pct: gpu.gpu_util_pct,
        mem_util_pct: gpu.mem_util_pct,
        processes: gpu
            .processes
            .iter()
            .map(|p| GpuProcessJson {
                pid: p.pid,
                used_memory_bytes: p.used_memory_bytes,
                sm_util_pct: p.sm_util_pct,
                mem_util_pct: p.mem_util_pct,
                gpu_instance_id: p.gpu_instance_id,
                compute_instance_id: p.compute_instance_id,
            })
            .collect(),
        notes: gpu.notes.clone(),
    }
}

/// True when the CPU figures are an estimate (for badges and banners).
pub fn is_estimate(label: &str) -> bool {
    label.contains(Provenance::EstimatedTdp.label())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::energy::{Domain, DomainEnergy};

    fn domain(kind: DomainKind, index: u32, uj: u64, provenance: Provenance) -> DomainEnergy {
        let domain = Domain {
            kind,
            index,
            name: format!("{}-{index}", kind.label()),
        };
        DomainEnergy::counted(domain, uj, provenance)
    }

    #[test]
    fn totals_pick_packages_and_dram_not_subzones() {
        let reading = EnergyReading {
            elapsed: Duration::from_secs(2),
            domains: vec![
                domain(DomainKind::Package, 0, 30_000_000, Provenance::RaplPowercap),
                domain(DomainKind::Core, 0, 20_000_000, Provenance::RaplPowercap),
                domain(DomainKind::Package, 1, 10_000_000, Provenance::RaplPowercap),
                domain(DomainKind::Dram, 0, 4_000_000, Provenance::RaplPowercap),
                domain(DomainKind::Psys, 0, 90_000_000, Provenance::RaplPowercap),
            ],
            ..EnergyReading::default()
        };
        let s = summarize(("rapl-powercap", Ok(reading)), None);
        assert_eq!(
            (s.cpu_joules, s.dram_joules, s.gpu_joules),
            (40.0, 4.0, 0.0)
        );
        assert_eq!(
            (s.cpu_source.as_str(), s.gpu_source.as_str()),
            ("rapl-powercap", "none")
        );
        assert_eq!(s.domains.len(), 5);
        assert_eq!(s.domains[0].watts, 15.0);
        assert!(s.domains.iter().all(|d| d.measured));
    }

    #[test]
    fn mixed_gpu_provenance_and_failures_are_visible() {
        let gpu = EnergyReading {
            elapsed: Duration::from_secs(1),
            domains: vec![
                domain(DomainKind::Gpu, 0, 300_000_000, Provenance::NvmlEnergy),
                domain(DomainKind::Gpu, 1, 100_000_000, Provenance::NvmlPower),
            ],
            ..EnergyReading::default()
        };
        let s = summarize(
            ("estimated-tdp", Err("boom".into())),
            Some(("nvml", Ok(gpu))),
        );
        assert_eq!(s.gpu_joules, 400.0);
        assert_eq!(s.gpu_source, "nvml-energy+nvml-power");
        assert_eq!(s.cpu_source, "estimated-tdp");
        assert_eq!(s.notes, vec!["estimated-tdp: boom".to_string()]);
        assert!(is_estimate(&s.cpu_source));
        assert!(!s.domains[1].measured);
    }
}
