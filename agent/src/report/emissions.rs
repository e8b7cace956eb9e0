//! `--format emissions-csv`: CodeCarbon's `emissions.csv` columns, one row per
//! group, so notebooks and dashboards built for CodeCarbon read greentop's report
//! unchanged. Units are CodeCarbon's: kg CO₂eq, kWh, W, seconds.
use std::time::SystemTime;

use super::{GroupBy, Report, Row};
use crate::carbon::JOULES_PER_KWH;
use crate::codecarbon::{self, NamedRow, Place};

pub fn emissions_csv(report: &Report) -> String {
    let place = Place::of_region(&report.region);
    let rows: Vec<NamedRow> = report
        .rows
        .iter()
        .map(|row| named(report, row, &place))
        .collect();
    codecarbon::document(&rows)
}

fn named(report: &Report, row: &Row, place: &Place) -> NamedRow {
    let kwh = |joules: f64| joules / JOULES_PER_KWH;
    let per_second = |value: f64| {
        if row.seconds > 0.0 {
            value / row.seconds
        } else {
            0.0
        }
    };
    let kg = row.gco2 / 1000.0;
    let machine_wide = row.group == "(idle)" || report.by == Some(GroupBy::Machine);
    let mut out = vec![
        (
            "timestamp",
            row.last_seen.map(timestamp).unwrap_or_default(),
        ),
        ("project_name", row.group.clone()),
        ("run_id", run_id(&report.hosts, &row.group, report.first)),
        ("duration", row.seconds.to_string()),
        ("emissions", kg.to_string()),
        ("emissions_rate", per_second(kg).to_string()),
        ("cpu_power", per_second(row.cpu_joules).to_string()),
        ("gpu_power", per_second(row.gpu_joules).to_string()),
        ("ram_power", per_second(row.dram_joules).to_string()),
        ("cpu_energy", kwh(row.cpu_joules).to_string()),
        ("gpu_energy", kwh(row.gpu_joules).to_string()),
        ("ram_energy", kwh(row.dram_joules).to_string()),
        ("energy_consumed", kwh(row.joules).to_string()),
        ("os", "Linux".into()),
        ("cpu_count", report.cpus.to_string()),
        (
            "tracking_mode",
            if machine_wide { "machine" } else { "process" }.into(),
        ),
        ("pue", report.pue.to_string()),
    ];
    out.extend(place.columns());
    out
}

/// `2026-11-22T22:10:00`: UTC, seconds, no zone (CodeCarbon's layout).
fn timestamp(t: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.trim_end_matches('Z').to_string()
}

/// A stable UUID-shaped id per host, group and start, so two reports of the same
/// log name the same run the same way.
fn run_id(hosts: &[String], group: &str, first: Option<SystemTime>) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let start = first.map(super::format::rfc3339).unwrap_or_default();
    for byte in hosts
        .join(",")
        .bytes()
        .chain(group.bytes())
        .chain(start.bytes())
    {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let hex = format!("{hash:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
