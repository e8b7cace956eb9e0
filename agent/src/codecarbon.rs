//! CodeCarbon's `emissions.csv`, the one place greentop speaks it: the columns, the
//! place columns of a grid region, and appending a row to an existing file, so
//! notebooks and dashboards made for CodeCarbon read `greentop report
//! --format emissions-csv` and `greentop run --emissions-csv` unchanged. Units are
//! CodeCarbon's: kg CO₂eq, kWh, W, seconds.
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::carbon::{resolve_region, table};

/// CodeCarbon 2.8's `EmissionsData` fields, in order: the header of a new file.
pub const COLUMNS: [&str; 32] = [
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

/// One row: values by column name; columns it does not name are left empty.
pub type NamedRow = Vec<(&'static str, String)>;

/// Where a grid region is, in CodeCarbon's columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Place {
    pub country_name: String,
    /// ISO 3166 alpha-3.
    pub country_iso_code: String,
    /// A state or province, lower case as CodeCarbon writes it.
    pub region: String,
    pub cloud_provider: String,
    pub cloud_region: String,
    pub on_cloud: bool,
}

impl Place {
    /// From a region code (`FRA`, `FR`, `US-CA`, `aws:us-east-1`, `world`); empty when
    /// the code is unknown or the world average.
    pub fn of_region(code: &str) -> Place {
        if let Some((provider, region)) = code.split_once(':') {
            // AWS and Azure regions carry the grid zone they draw from.
            let zone = resolve_region(code).ok().and_then(|e| e.zone);
            let inner = zone.map(Place::of_region).unwrap_or_default();
            return Place {
                cloud_provider: provider.to_string(),
                cloud_region: region.to_string(),
                on_cloud: true,
                ..inner
            };
        }
        let entry = match resolve_region(code) {
            Ok(entry) if entry.code != table::WORLD_CODE => entry,
            _ => return Place::default(),
        };
        if is_alpha3(entry.code) {
            return Place {
                country_name: entry.name.to_string(),
                country_iso_code: entry.code.to_string(),
                ..Place::default()
            };
        }
        // A part of a country: `US-CA`, `CA-QC`, `RU-MOSCOW`.
        let country = entry
            .code
            .split_once('-')
            .and_then(|(prefix, _)| resolve_region(prefix).ok())
            .filter(|c| is_alpha3(c.code));
        Place {
            country_name: country.map(|c| c.name.to_string()).unwrap_or_default(),
            country_iso_code: country.map(|c| c.code.to_string()).unwrap_or_default(),
            region: entry.name.to_lowercase(),
            ..Place::default()
        }
    }

    /// The six place columns of a row.
    pub fn columns(&self) -> NamedRow {
        vec![
            ("country_name", self.country_name.clone()),
            ("country_iso_code", self.country_iso_code.clone()),
            ("region", self.region.clone()),
            ("cloud_provider", self.cloud_provider.clone()),
            ("cloud_region", self.cloud_region.clone()),
            (
                "on_cloud",
                if self.on_cloud { "Y" } else { "N" }.to_string(),
            ),
        ]
    }
}

fn is_alpha3(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// `row`'s values in the order of `header`, quoted, as one CSV line (no newline).
pub fn line(header: &[impl AsRef<str>], row: &[(&'static str, String)]) -> String {
    let values: Vec<String> = header
        .iter()
        .map(|column| {
            let column = column.as_ref().trim();
            let found = row.iter().find(|(name, _)| *name == column);
            found.map(|(_, v)| v.clone()).unwrap_or_default()
        })
        .collect();
    join_line(&values)
}

/// A whole file: CodeCarbon's header, then one line per row.
pub fn document(rows: &[NamedRow]) -> String {
    let mut out = join_line(&COLUMNS.map(str::to_string));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&COLUMNS, row));
        out.push('\n');
    }
    out
}

/// Appends `row` to `path`, in the file's own column order (older CodeCarbon files
/// have fewer columns, 3.x files more), writing CodeCarbon's header first when the
/// file is new or empty. Returns whether the file was created.
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
        Some(first) if !first.trim().is_empty() => split_line(first),
        _ => {
            let header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
            text.clear();
            writeln!(file, "{}", join_line(&header))?;
            header
        }
    };
    if !text.is_empty() && !text.ends_with('\n') {
        writeln!(file)?; // O_APPEND: at the end
    }
    writeln!(file, "{}", line(&header, row))?;
    Ok(created)
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
pub fn quote(field: &str) -> String {
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
fn split_line(text: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.trim_end_matches(['\r', '\n']).chars().peekable();
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
        let text = join_line(&["x".into(), "a,b".into(), "q\"".into()]);
        assert_eq!(split_line(&text), ["x", "a,b", "q\""]);
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
        assert_eq!(lines.next().unwrap(), COLUMNS.join(","));
        assert!(lines.next().unwrap().starts_with("t1,\"p,1\",r1,,2.5,"));
        assert_eq!(document(&[row]).lines().nth(1), text.lines().nth(1));
    }

    #[test]
    fn places_of_regions() {
        let cases = [
            ("FRA", ("France", "FRA", "", "", "", false)),
            ("world", ("", "", "", "", "", false)),
            ("nowhere", ("", "", "", "", "", false)),
            (
                "gcp:europe-west1",
                ("", "", "", "gcp", "europe-west1", true),
            ),
        ];
        for (code, (name, iso, region, provider, cloud_region, on_cloud)) in cases {
            let p = Place::of_region(code);
            assert_eq!(
                (
                    p.country_name.as_str(),
                    p.country_iso_code.as_str(),
                    p.region.as_str(),
                    p.cloud_provider.as_str(),
                    p.cloud_region.as_str(),
                    p.on_cloud
                ),
                (name, iso, region, provider, cloud_region, on_cloud),
                "{code}"
            );
        }
        let state = Place::of_region("US-CA");
        assert_eq!(state.country_iso_code, "USA");
        assert!(!state.region.is_empty());
        let aws = Place::of_region("aws:us-east-1");
        assert_eq!((aws.cloud_provider.as_str(), aws.on_cloud), ("aws", true));
        assert_eq!(aws.country_iso_code, "USA");
    }
}
