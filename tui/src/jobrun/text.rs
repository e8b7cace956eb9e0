//! The summaries `greentop run` prints on stderr: one run, repeated runs, and a
//! comparison. Pure functions of the records, tested on fixed values.
use std::fmt::Write as _;

use crate::format::{format_gco2, format_joules, format_watts};

use super::record::{Phase, RunRecord};
use super::stats::{Relative, RunsSummary, Spread};

/// The command as a shell would show it, shortened.
pub fn command_line(argv: &[String]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|w| {
            if w.is_empty() || w.contains(char::is_whitespace) {
                format!("{w:?}")
            } else {
                w.clone()
            }
        })
        .collect();
    crate::format::truncate(&words.join(" "), 60)
}

/// `12.3 s`, `850 ms`, `85 µs`.
pub fn seconds(s: f64) -> String {
    if s > 0.0 && s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else if s < 100.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Three significant digits, scientific below 0.001: `0.0153`, `1.5`, `2.67e-8`.
pub fn small(x: f64) -> String {
    let magnitude = x.abs();
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    if magnitude < 1e-3 {
        return format!("{x:.2e}");
    }
    if magnitude >= 100.0 {
        return format!("{x:.0}");
    }
    let decimals = usize::try_from(2 - magnitude.log10().floor() as i64).unwrap_or(0);
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `format_joules`, down to mJ and µJ for per-unit figures.
pub fn joules(j: f64) -> String {
    let magnitude = j.abs();
    if magnitude == 0.0 || magnitude >= 1.0 || !j.is_finite() {
        format_joules(j)
    } else if magnitude >= 1e-3 {
        format!("{} mJ", small(j * 1e3))
    } else {
        format!("{} µJ", small(j * 1e6))
    }
}

/// The full summary of one run.
pub fn run_summary(r: &RunRecord, label: Option<&str>, units: Option<f64>) -> String {
    let mut out = String::new();
    let name = label.map(|l| format!(" [{l}]")).unwrap_or_default();
    let _ = writeln!(out, "greentop run: {}{name}", command_line(&r.command));
    let _ = writeln!(
        out,
        "  {} · wall {} · CPU {} (rusage {}) · {} process{}",
        r.exit.describe(),
        seconds(r.wall_s),
        seconds(r.energy.cpu_seconds),
        seconds(r.rusage_cpu_seconds),
        r.processes,
        if r.processes == 1 { "" } else { "es" }
    );
    out.push_str(&energy_lines(r));
    out.push_str(&carbon_lines(r));
    if let Some(units) = units {
        let _ = writeln!(
            out,
            "  per unit ({}): {} · {} mgCO₂ · {}",
            small(units),
            joules(r.energy.joules / units),
            small(r.energy.gco2 * 1e3 / units),
            seconds(r.wall_s / units)
        );
    }
    out.push_str(&phase_table(&r.phases));
    for note in &r.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

fn energy_lines(r: &RunRecord) -> String {
    let p = &r.provenance;
    let tag = if p.measured { "measured" } else { "estimated" };
    let dram = if p.dram_source.is_empty() {
        "none"
    } else {
        &p.dram_source
    };
    // Only another feed is named: the local pipeline is the usual one.
    let feed = match r.feed.strip_prefix("agent:") {
        Some(path) => format!(", via greentop-agent {path}"),
        None => String::new(),
    };
    format!(
        "  energy  CPU {} ({}) · DRAM {} ({dram}) · GPU {} ({}) · total {} [{tag}]\n\
         \x20         avg {} · peak {} · {:.1} % of the machine's {} (idle policy {}, ledger {}{feed})\n",
        joules(r.energy.cpu_joules),
        p.cpu_source,
        joules(r.energy.dram_joules),
        joules(r.energy.gpu_joules),
        p.gpu_source,
        joules(r.energy.joules),
        format_watts(r.watts_avg),
        format_watts(r.watts_peak),
        r.machine_share * 100.0,
        joules(r.machine.joules),
        p.idle_policy,
        p.ledger,
    )
}

fn carbon_lines(r: &RunRecord) -> String {
    let c = &r.carbon;
    let pue = if (c.pue - 1.0).abs() > 1e-9 {
        format!(" × PUE {}", small(c.pue))
    } else {
        String::new()
    };
    let e = &r.equivalents;
    format!(
        "  carbon  {} CO₂ at {:.0} gCO₂/kWh ({}, {}){pue}\n\
         \x20         = {} car km · {} phone charges · {} flight hours · {} tree-years\n",
        format_gco2(r.energy.gco2),
        c.intensity_g_per_kwh,
        c.region,
        c.intensity_source,
        small(e.car_km),
        small(e.smartphone_charges),
        small(e.flight_hours),
        small(e.tree_years),
    )
}

/// Phases by name in first-seen order, with how many times each ran.
fn phase_table(phases: &[Phase]) -> String {
    if phases.is_empty() {
        return String::new();
    }
    let mut rows: Vec<(String, usize, Phase)> = Vec::new();
    for phase in phases {
        match rows.iter_mut().find(|(name, _, _)| *name == phase.name) {
            Some((_, count, total)) => {
                *count += 1;
                total.wall_s += phase.wall_s;
                total.energy.add(&phase.energy);
            }
            None => rows.push((phase.name.clone(), 1, phase.clone())),
        }
    }
    let mut out = format!(
        "  {:<24} {:>9} {:>9} {:>10} {:>10}\n",
        "phase", "wall", "CPU", "energy", "CO₂"
    );
    for (name, count, p) in rows {
        let times = if count > 1 {
            format!(" ×{count}")
        } else {
            String::new()
        };
        let shown = crate::format::truncate(&name, 24 - times.len());
        let _ = writeln!(
            out,
            "  {:<24} {:>9} {:>9} {:>10} {:>10}",
            format!("{shown}{times}"),
            seconds(p.wall_s),
            seconds(p.energy.cpu_seconds),
            joules(p.energy.joules),
            format_gco2(p.energy.gco2)
        );
    }
    out
}

/// One line per finished run: `[2] run 3` when comparing (`command` is the index of
/// the command), else `run 3 of CMD`.
pub fn run_line(index: usize, command: Option<usize>, r: &RunRecord) -> String {
    let which = match command {
        Some(c) => format!("[{}] run {}", c + 1, index + 1),
        None => format!("run {} of {}", index + 1, command_line(&r.command)),
    };
    format!(
        "greentop run: {which}: {} · {} · CPU {} · {} CO₂ · {}\n",
        seconds(r.wall_s),
        joules(r.energy.joules),
        seconds(r.energy.cpu_seconds),
        format_gco2(r.energy.gco2),
        r.exit.describe()
    )
}

fn range(s: &Spread, show: impl Fn(f64) -> String) -> String {
    format!(
        "{} ({}–{}, spread {:.1} %)",
        show(s.median),
        show(s.min),
        show(s.max),
        s.spread_pct
    )
}

/// The medians and spreads of a repeated command.
pub fn repeat_summary(argv: &[String], s: &RunsSummary) -> String {
    let mut out = format!(
        "greentop run: {} runs of {}, median (min–max, spread)\n",
        s.runs,
        command_line(argv)
    );
    let _ = writeln!(out, "  energy  {}", range(&s.joules, format_joules));
    let _ = writeln!(out, "  carbon  {}", range(&s.gco2, format_gco2));
    let _ = writeln!(out, "  wall    {}", range(&s.wall_s, seconds));
    let _ = writeln!(out, "  CPU     {}", range(&s.cpu_seconds, seconds));
    if let Some(u) = &s.per_unit {
        let _ = writeln!(
            out,
            "  per unit ({}): {} · {} mgCO₂ · {}",
            small(u.units),
            range(&u.joules, format_joules),
            small(u.mgco2.median),
            seconds(u.wall_s.median)
        );
    }
    out
}

/// Every compared command against the first.
pub fn comparison(commands: &[Vec<String>], summaries: &[RunsSummary], rel: &[Relative]) -> String {
    let mut out = String::from("greentop run --compare: median per run; ratios paired by round\n");
    for (i, (argv, s)) in commands.iter().zip(summaries).enumerate() {
        let per_unit = s
            .per_unit
            .as_ref()
            .map(|u| format!(" · {}/unit", joules(u.joules.median)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  [{}] {}: {}{per_unit} · {} · {} runs",
            i + 1,
            command_line(argv),
            joules(s.joules.median),
            seconds(s.wall_s.median),
            s.runs
        );
    }
    for r in rel {
        let e = &r.energy_ratio;
        let verdict = if e.median <= 1.0 {
            format!("{:.1} % less energy", (1.0 - e.median) * 100.0)
        } else {
            format!("{:.1} % more energy", (e.median - 1.0) * 100.0)
        };
        let _ = writeln!(
            out,
            "  [{}] vs [1]: {verdict}: energy ×{:.3} ({:.3}–{:.3}), time ×{:.3} ({:.3}–{:.3}), {} rounds",
            r.command + 1,
            e.median,
            e.min,
            e.max,
            r.time_ratio.median,
            r.time_ratio.min,
            r.time_ratio.max,
            r.rounds
        );
    }
    out
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
