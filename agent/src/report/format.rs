//! The report as a table for people, CSV and JSON for programs.
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serializer;
use serde::ser::SerializeSeq;

use super::{GroupBy, Report, Row};
use crate::sinks::log::Notice;

/// Columns of `--format csv`, in order.
pub const CSV_COLUMNS: [&str; 14] = [
    "group",
    "cpu_joules",
    "dram_joules",
    "gpu_joules",
    "joules",
    "gco2",
    "seconds",
    "avg_watts",
    "peak_watts",
    "share_pct",
    "car_km",
    "smartphone_charges",
    "flight_hours",
    "tree_years",
];

pub fn csv(report: &Report) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for row in &report.rows {
        let e = row.equivalents();
        let numbers = [
            row.cpu_joules,
            row.dram_joules,
            row.gpu_joules,
            row.joules,
            row.gco2,
            row.seconds,
            row.average_watts(),
            row.peak_watts,
            row.share_pct(&report.machine),
            e.car_km,
            e.smartphone_charges,
            e.flight_hours,
            e.tree_years,
        ];
        out.push_str(&csv_field(&row.group));
        for n in numbers {
            out.push(',');
            if !n.is_nan() {
                out.push_str(&n.to_string());
            }
        }
        out.push('\n');
    }
    out
}

/// RFC 4180: quoted when it holds a comma, quote or line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn json(report: &Report) -> String {
    let rows: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|row| row_json(row, report))
        .collect();
    let mut value = serde_json::to_value(report).unwrap_or_default();
    value["rows"] = serde_json::Value::Array(rows);
    value["machine"] = row_json(&report.machine, report);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn row_json(row: &Row, report: &Report) -> serde_json::Value {
    let mut value = serde_json::to_value(row).unwrap_or_default();
    value["avg_watts"] = row.average_watts().into();
    value["share_pct"] = row.share_pct(&report.machine).into();
    value["equivalents"] = serde_json::to_value(row.equivalents()).unwrap_or_default();
    value
}

pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let span = match (report.first, report.last) {
        (Some(a), Some(b)) => format!("{} to {}", rfc3339(a), rfc3339(b)),
        _ => "no intervals".into(),
    };
    out.push_str(&format!(
        "{} intervals, {span}, {} of machine time; gCO2 {}\n",
        report.intervals,
        duration(report.machine.seconds),
        report.intensity
    ));
    out.push_str(&format!(
        "{:<24} {:>9} {:>9} {:>9} {:>10} {:>9} {:>7} {:>7} {:>7} {:>6} {:>8}\n",
        "GROUP",
        "CPU J",
        "DRAM J",
        "GPU J",
        "TOTAL J",
        "gCO2",
        "SEEN",
        "AVG W",
        "PEAK W",
        "SHARE",
        "CAR km"
    ));
    let machine_row = (report.by != Some(GroupBy::Machine)).then_some(&report.machine);
    for row in report.rows.iter().chain(machine_row) {
        let peak = if row.peak_watts.is_nan() {
            "-".to_string()
        } else {
            format!("{:.2}", row.peak_watts)
        };
        out.push_str(&format!(
            "{:<24} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>9} {:>7} {:>7.2} {:>7} {:>5.1}% {:>8}\n",
            truncate(&row.group, 24),
            row.cpu_joules,
            row.dram_joules,
            row.gpu_joules,
            row.joules,
            number(row.gco2),
            duration(row.seconds),
            row.average_watts(),
            peak,
            row.share_pct(&report.machine),
            number(row.equivalents().car_km),
        ));
    }
    let e = report.machine.equivalents();
    out.push_str(&format!(
        "machine total: {} gCO2 ≈ {} km by car, {} phone charges, {} flight hours, {} tree-years; residual {:.1e} J\n",
        number(report.machine.gco2),
        number(e.car_km),
        number(e.smartphone_charges),
        number(e.flight_hours),
        number(e.tree_years),
        report.residual_joules
    ));
    out
}

/// Three significant digits, without exponent for everyday sizes.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".into()
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 1e-4 {
        let decimals = (2.0 - magnitude.log10().floor()).max(0.0) as usize;
        format!("{value:.decimals$}")
    } else {
        format!("{value:.2e}")
    }
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// `1h02m`, `45s`, `3d04h`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub(super) fn rfc3339_opt<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

pub(super) fn notices<S: Serializer>(n: &[(PathBuf, Notice)], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(n.len()))?;
    for (path, notice) in n {
        seq.serialize_element(&format!("{}: {notice}", path.display()))?;
    }
    seq.end()
}
