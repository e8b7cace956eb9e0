//! `--format emissions-csv`: CodeCarbon's `emissions.csv` columns, one row per
//! group, so notebooks and dashboards built for CodeCarbon read greentop's report
//! unchanged. Units are CodeCarbon's: kg CO₂eq, kWh, W, seconds.
use std::time::SystemTime;

use super::format::csv_field;
use super::{GroupBy, Report, Row};
use crate::carbon::{JOULES_PER_KWH, table};

/// CodeCarbon 2.x `emissions.csv` header, in its order.
pub const COLUMNS: [&str; 31] = [
    "timestamp",
    "project_name",
    "run_id",
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

pub fn emissions_csv(report: &Report) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    let place = Place::of(&report.region);
    for row in &report.rows {
        out.push_str(&line(report, row, &place).join(","));
        out.push('\n');
    }
    out
}

fn line(report: &Report, row: &Row, place: &Place) -> Vec<String> {
    let kwh = |joules: f64| joules / JOULES_PER_KWH;
    let watts = |joules: f64| {
        if row.seconds > 0.0 {
            joules / row.seconds
        } else {
            0.0
        }
    };
    let kg = row.gco2 / 1000.0;
    let rate = if row.seconds > 0.0 {
        kg / row.seconds
    } else {
        0.0
    };
    let machine_wide = row.group == "(idle)" || report.by == Some(GroupBy::Machine);
    vec![
        row.last_seen.map(timestamp).unwrap_or_default(),
        csv_field(&row.group),
        run_id(&report.hosts, &row.group, report.first),
        row.seconds.to_string(),
        kg.to_string(),
        rate.to_string(),
        watts(row.cpu_joules).to_string(),
        watts(row.gpu_joules).to_string(),
        watts(row.dram_joules).to_string(),
        kwh(row.cpu_joules).to_string(),
        kwh(row.gpu_joules).to_string(),
        kwh(row.dram_joules).to_string(),
        kwh(row.joules).to_string(),
        csv_field(&place.country_name),
        place.country_iso_code.clone(),
        csv_field(&place.region),
        place.cloud_provider.clone(),
        place.cloud_region.clone(),
        "Linux".into(),
        String::new(),
        String::new(),
        report.cpus.to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        if machine_wide { "machine" } else { "process" }.into(),
        if place.cloud_provider.is_empty() {
            "N"
        } else {
            "Y"
        }
        .into(),
        report.pue.to_string(),
    ]
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

/// Where the logged grid region is, in CodeCarbon's columns.
#[derive(Default)]
struct Place {
    country_name: String,
    country_iso_code: String,
    region: String,
    cloud_provider: String,
    cloud_region: String,
}

impl Place {
    fn of(region: &str) -> Place {
        let Some(entry) = table::lookup(region) else {
            return Place::default();
        };
        if let Some((provider, cloud_region)) = entry.code.split_once(':') {
            return Place {
                cloud_provider: provider.to_string(),
                cloud_region: cloud_region.to_string(),
                ..Place::default()
            };
        }
        if table::alpha2_of(entry).is_some() {
            return Place {
                country_name: entry.name.to_string(),
                country_iso_code: entry.code.to_string(),
                ..Place::default()
            };
        }
        Place {
            region: entry.name.to_string(),
            ..Place::default()
        }
    }
}
