//! `--emissions-csv FILE`: one row per run with CodeCarbon's `emissions.csv`
//! columns, so notebooks and dashboards made for CodeCarbon read greentop's runs.
//!
//! A new file gets CodeCarbon 2.8's header. An existing file keeps its own header
//! (older CodeCarbon files have fewer columns, 3.x files more): each row fills the
//! columns it knows, in the file's order, and leaves the others empty. Units are
//! CodeCarbon's: kg CO₂eq, kWh, W, seconds.
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::Path;

use agent::carbon::JOULES_PER_KWH;

use super::record::RunRecord;

/// The header of a new file: CodeCarbon 2.8's `EmissionsData` fields, in order.
pub const CODECARBON_COLUMNS: [&str; 32] = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "on_cloud",
    "pue",
];

/// What a row needs besides the run.
pub struct RowContext<'a> {
    pub project_name: &'a str,
    pub run_id: &'a str,
    pub experiment_id: &'a str,
    pub host: &'a super::host::Host,
}

/// The row's values by column name.
pub fn row(r: &RunRecord, ctx: &RowContext) -> Vec<(&'static str, String)> {
    let wall = r.wall_s.max(f64::MIN_POSITIVE);
    let kg = r.energy.gco2 / 1e3;
    let kwh = |j: f64| (j / JOULES_PER_KWH).to_string();
    let place = super::host::Place::of_region(&r.carbon.region);
    let host = ctx.host;
    let gpus = &r.provenance.gpus;
    vec![
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
        ("country_name", place.country_name),
        ("country_iso_code", place.country_iso_code),
        ("region", place.region),
        ("cloud_provider", place.cloud_provider),
        ("cloud_region", place.cloud_region),
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
        (
            "on_cloud",
            if place.on_cloud { "Y" } else { "N" }.to_string(),
        ),
        ("pue", r.carbon.pue.to_string()),
    ]
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

/// Appends `row` to `path`, in the file's column order (writing CodeCarbon's header
/// first when the file is new or empty). Returns whether the file was created.
pub fn append(path: &Path, row: &[(&'static str, String)]) -> io::Result<bool> {
    let created = !path.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let header: Vec<String> = match text.lines().next() {
        Some(line) if !line.trim().is_empty() => split_line(line),
        _ => {
            let header: Vec<String> = CODECARBON_COLUMNS.iter().map(|c| c.to_string()).collect();
            text.clear();
            writeln!(file, "{}", join_line(&header))?;
            header
        }
    };
    if !text.is_empty() && !text.ends_with('\n') {
        writeln!(file)?; // O_APPEND: at the end
    }
    let values: Vec<String> = header
        .iter()
        .map(|column| {
            let found = row.iter().find(|(name, _)| *name == column.trim());
            found.map(|(_, v)| v.clone()).unwrap_or_default()
        })
        .collect();
    writeln!(file, "{}", join_line(&values))?;
    Ok(created)
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

fn join_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| quote(f)).collect();
    quoted.join(",")
}

/// Splits one CSV line (a header: quoted fields, no line breaks inside).
fn split_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        let line = join_line(&["x".into(), "a,b".into(), "q\"".into()]);
        assert_eq!(split_line(&line), ["x", "a,b", "q\""]);
    }

    #[test]
    fn an_existing_header_keeps_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emissions.csv");
        // An old CodeCarbon file, without a final newline.
        std::fs::write(
            &path,
            "timestamp,experiment_id,project_name,duration\nt0,e0,p0,1.0",
        )
        .unwrap();
        let row = vec![
            ("timestamp", "t1".to_string()),
            ("project_name", "p,1".to_string()),
            ("duration", "2.5".to_string()),
            ("run_id", "r1".to_string()),
        ];
        assert!(!append(&path, &row).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "timestamp,experiment_id,project_name,duration\nt0,e0,p0,1.0\nt1,,\"p,1\",2.5\n"
        );
        let new = dir.path().join("new.csv");
        assert!(append(&new, &row).unwrap());
        let text = std::fs::read_to_string(&new).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), CODECARBON_COLUMNS.join(","));
        assert!(lines.next().unwrap().starts_with("t1,\"p,1\",r1,,2.5,"));
    }

    #[test]
    fn gpu_models_are_counted() {
        let names = ["A100".to_string(), "A100".to_string(), "T4".to_string()];
        assert_eq!(gpu_model(&names), "2 x A100, 1 x T4");
        assert_eq!(gpu_model(&[]), "");
    }
}
