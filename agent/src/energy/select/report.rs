//! The words of the choice: the `--list-sources` report and the one-line reasons.
use super::{Candidate, Sources, trusted_kind};
use crate::energy::DomainKind;
use crate::energy::EnergySource;
use crate::energy::probe::CounterProbe;

/// The report: every candidate with what it found, what the probe saw of each
/// counter and why it was chosen or not; then what each domain's energy comes from.
pub(super) fn render(sources: &Sources) -> String {
    let mut out = String::new();
    for candidate in &sources.candidates {
        let mark = if candidate.chosen { "*" } else { " " };
        match &candidate.found {
            Ok(lines) => {
                out.push_str(&format!("{mark} {:<14} found\n", candidate.name));
                for line in lines {
                    out.push_str(&format!("      {line}\n"));
                }
                for counter in &candidate.probe {
                    out.push_str(&format!("      probe: {}\n", counter.line()));
                }
                if let Some(why) = &candidate.why {
                    out.push_str(&format!("      {why}\n"));
                }
            }
            Err(reason) => {
                out.push_str(&format!(
                    "{mark} {:<14} not available: {reason}\n",
                    candidate.name
                ));
            }
        }
    }
    out.push_str(&format!(
        "CPU energy: {} ({})\n",
        sources.cpu.name(),
        sources.cpu_reason
    ));
    out.push_str(&format!(
        "DRAM energy: {}\n",
        dram_line(&sources.candidates)
    ));
    out.push_str(&format!(
        "Platform energy: {}\n",
        platform_line(&sources.candidates)
    ));
    match &sources.gpu {
        Some(gpu) => out.push_str(&format!("GPU energy: {}\n", gpu.name())),
        None => out.push_str("GPU energy: none\n"),
    }
    for warning in &sources.warnings {
        out.push_str(&format!("{warning}\n"));
    }
    out
}

fn chosen_probes(candidates: &[Candidate]) -> Option<(&'static str, &[CounterProbe])> {
    candidates
        .iter()
        .find(|c| c.chosen && !c.probe.is_empty())
        .map(|c| (c.name, c.probe.as_slice()))
}

fn dram_line(candidates: &[Candidate]) -> String {
    let estimate = "estimated-memory (installed memory × 3 W per 8 GiB, split by resident memory)";
    let seen = candidates
        .iter()
        .flat_map(|c| &c.probe)
        .any(|p| p.domain.kind == DomainKind::Dram);
    match chosen_probes(candidates) {
        Some((name, probes)) if trusted_kind(probes, DomainKind::Dram) => {
            format!("{name} (DRAM counters)")
        }
        _ if seen => format!("{estimate}; the DRAM counters did not pass the probe"),
        _ => format!("{estimate}; no DRAM counter"),
    }
}

fn platform_line(candidates: &[Candidate]) -> String {
    match chosen_probes(candidates) {
        Some((name, probes)) if trusted_kind(probes, DomainKind::Psys) => format!(
            "{name} psys (the whole platform: SoC, chipset and more; shown apart, never \
             added to CPU energy)"
        ),
        _ => "none".to_string(),
    }
}

/// The candidate name of a source's label.
pub(super) fn source_name(label: &str) -> &'static str {
    match label {
        "rapl-powercap" => "rapl-powercap",
        "perf-power" => "perf-power",
        _ => "estimated-tdp",
    }
}

/// The `--source` value that picks a candidate.
pub(super) fn flag_of(name: &str) -> &'static str {
    match name {
        "rapl-powercap" => "rapl",
        "perf-power" => "perf",
        _ => "estimate",
    }
}

/// `powercap` / `perf`, for reasons.
pub(super) fn short(name: &str) -> &'static str {
    match name {
        "rapl-powercap" => "powercap",
        "perf-power" => "perf",
        _ => "estimate",
    }
}

/// Why the chosen measured source is used, naming what is estimated and why.
pub(super) fn chosen_reason(label: &str, probes: &[CounterProbe], why_not: &[String]) -> String {
    let how = match label {
        "perf-power" => "measured RAPL counters through perf",
        _ => "measured RAPL counters, readable through powercap",
    };
    let mut reason = if trusted_kind(probes, DomainKind::Package) {
        format!("{how}, trusted after the start-up probe")
    } else {
        format!(
            "no package counter passed the start-up probe: CPU packages from the estimate; \
             {how} for the rest"
        )
    };
    let rejected: Vec<String> = probes
        .iter()
        .filter(|p| !p.trusted())
        .map(|p| {
            let instead = match p.domain.kind {
                DomainKind::Psys => "left out",
                _ => "estimated instead",
            };
            format!(
                "{} ({} {}) not trusted: {instead}",
                p.domain.name,
                p.domain.kind.display_name(),
                p.domain.index
            )
        })
        .collect();
    if !rejected.is_empty() {
        reason.push_str(&format!("; {}", rejected.join(", ")));
    }
    for line in why_not {
        reason.push_str(&format!("; {line}"));
    }
    reason
}

/// A candidate that opened, with what the probe saw and why it was chosen or not.
pub(super) fn found(
    name: &'static str,
    source: &dyn EnergySource,
    probe: Vec<CounterProbe>,
    chosen: bool,
    why: Option<String>,
) -> Candidate {
    Candidate {
        name,
        found: Ok(source.describe()),
        chosen,
        probe,
        why,
    }
}

/// A candidate that did not open, and why.
pub(super) fn missing(name: &'static str, reason: String) -> Candidate {
    Candidate {
        name,
        found: Err(reason),
        chosen: false,
        probe: Vec::new(),
        why: None,
    }
}
