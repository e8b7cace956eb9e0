//! `--emissions-csv FILE`: one row per run with CodeCarbon's `emissions.csv`
//! columns, so notebooks and dashboards made for CodeCarbon read greentop's runs.
//!
//! A new file gets CodeCarbon 2.8's header. An existing file keeps its own header
//! (older CodeCarbon files have fewer columns, 3.x files more): each row fills the
//! columns it knows, in the file's order, and leaves the others empty. Units are
//! CodeCarbon's: kg CO₂eq, kWh, W, seconds.
use agent::carbon::JOULES_PER_KWH;
use agent::codecarbon::{NamedRow, Place};

use super::record::RunRecord;

/// What a row needs besides the run.
pub struct RowContext<'a> {
    pub project_name: &'a str,
    pub run_id: &'a str,
    pub experiment_id: &'a str,
    pub host: &'a super::host::Host,
}

/// The row's values by column name.
pub fn row(r: &RunRecord, ctx: &RowContext) -> NamedRow {
    let wall = r.wall_s.max(f64::MIN_POSITIVE);
    let kg = r.energy.gco2 / 1e3;
    let kwh = |j: f64| (j / JOULES_PER_KWH).to_string();
    let place = Place::of_region(&r.carbon.region);
    let host = ctx.host;
    let gpus = &r.provenance.gpus;
    let mut out = vec![
        ("timestamp", r.ended_at.clone()),
        ("project_name", ctx.project_name.to_string()),
        ("run_id", ctx.run_id.to_string()),
        ("experiment_id", ctx.experiment_id.to_string()),
        ("duration", r.wall_s.to_string()),
        ("emissions", kg.to_string()),
        ("emissions_rate", (kg / wall).to_string()),
        ("cpu_power", (r.energy.cpu_joules / wall).to_string()),
        ("gpu_power", (r.energy.gpu_joules / wall).to_string()),
        ("ram_power", (r.energy.dram_joules / wall).to_string()),
        ("cpu_energy", kwh(r.energy.cpu_joules)),
        ("gpu_energy", kwh(r.energy.gpu_joules)),
        ("ram_energy", kwh(r.energy.dram_joules)),
        ("energy_consumed", kwh(r.energy.joules)),
        ("os", host.os.clone()),
        ("python_version", String::new()),
        ("codecarbon_version", String::new()),
        ("cpu_count", host.cpu_count.to_string()),
        ("cpu_model", host.cpu_model.clone()),
        ("gpu_count", gpus.len().to_string()),
        ("gpu_model", gpu_model(gpus)),
        ("longitude", String::new()),
        ("latitude", String::new()),
        ("ram_total_size", host.ram_total_gb.to_string()),
        ("tracking_mode", "process".to_string()),
        ("pue", r.carbon.pue.to_string()),
    ];
    out.extend(place.columns());
    out
}

/// `2 x NVIDIA H100`, as CodeCarbon writes it; several models joined with `, `.
fn gpu_model(names: &[String]) -> String {
    let mut models: Vec<(String, usize)> = Vec::new();
    for name in names {
        match models.iter_mut().find(|(m, _)| m == name) {
            Some((_, n)) => *n += 1,
            None => models.push((name.clone(), 1)),
        }
    }
    let parts: Vec<String> = models.iter().map(|(m, n)| format!("{n} x {m}")).collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_models_are_counted() {
        let names = ["A100".to_string(), "A100".to_string(), "T4".to_string()];
        assert_eq!(gpu_model(&names), "2 x A100, 1 x T4");
        assert_eq!(gpu_model(&[]), "");
    }
}
