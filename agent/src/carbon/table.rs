//! The embedded grid carbon-intensity table: one row per country, state, province,
//! bidding zone and cloud region, each with its year and dataset.
//!
//! The rows live in `agent/data/carbon/intensity.tsv`, derived from the unchanged
//! source files under `agent/data/carbon/sources/` (CodeCarbon 3.3.2, ECO2AI 0.3.12)
//! by `derive.rs`; a test regenerates the file and fails on any drift. AWS and Azure
//! regions are added from `cloud_region_zones.tsv` with their grid zone's values
//! (`cloud.rs`). The table is parsed once, on first use.
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;

use super::cloud;

/// The derived table, compiled in.
const TABLE_TSV: &str = include_str!("../../data/carbon/intensity.tsv");

/// Code of the world-average row.
pub const WORLD_CODE: &str = "WORLD";

/// Used only if the embedded table lost its `WORLD` row (a test guards against it):
/// the same values as `carbon_intensity_per_source.json` `world_average`.
const WORLD_FALLBACK: TableEntry = TableEntry {
    code: WORLD_CODE,
    name: "World average",
    g_per_kwh: 475.0,
    year: None,
    dataset: "CodeCarbon 3.3.2 carbon_intensity_per_source (IEA 2019)",
    aliases: "",
    zone: None,
};

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TableEntry {
    /// Canonical code: ISO alpha-3 for countries (`FRA`), `US-CA`, `CA-QC`, `CN-BJ`,
    /// `SE3`, `gcp:europe-west1`, `RU-MOSCOW`…
    pub code: &'static str,
    pub name: &'static str,
    pub g_per_kwh: f64,
    /// Year the value describes, where the dataset says.
    pub year: Option<u16>,
    /// Dataset the value comes from (publisher, version, file and upstream source).
    pub dataset: &'static str,
    /// Other accepted spellings, `|`-separated (alpha-2, names…).
    #[serde(skip)]
    aliases: &'static str,
    /// For an AWS or Azure region, the code of the grid zone whose values it uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<&'static str>,
}

impl TableEntry {
    /// Other codes and names that resolve to this row (ISO alpha-2, names…).
    pub fn aliases(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.aliases.split('|').filter(|a| !a.is_empty())
    }
}

/// A malformed line of an embedded table (a build defect; tests keep it from shipping).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file} line {line}: {message}")]
pub struct TableError {
    pub file: &'static str,
    pub line: usize,
    pub message: String,
}

struct Table {
    entries: Vec<TableEntry>,
    /// Normalised code or alias → index into `entries`; the first row to claim a key
    /// keeps it.
    index: HashMap<String, usize>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let entries = parse_table(TABLE_TSV).unwrap_or_else(|e| {
            tracing::error!("embedded carbon table unreadable, using world average: {e}");
            Vec::new()
        });
        let mut table = Table {
            entries: Vec::new(),
            index: HashMap::new(),
        };
        entries.into_iter().for_each(|entry| table.push(entry));
        let clouds = cloud::parse(cloud::ZONES_TSV).unwrap_or_else(|e| {
            tracing::error!("embedded cloud region table unreadable: {e}");
            Vec::new()
        });
        for region in clouds {
            match table.index.get(&normalise_code(region.zone)) {
                Some(&i) => table.push(TableEntry {
                    code: region.code,
                    name: region.name,
                    aliases: "",
                    zone: Some(table.entries[i].code),
                    ..table.entries[i]
                }),
                None => tracing::error!("{}: no zone {} in the table", region.code, region.zone),
            }
        }
        table
    })
}

impl Table {
    /// Adds a row; the first row to claim a code or alias keeps it.
    fn push(&mut self, entry: TableEntry) {
        let i = self.entries.len();
        for key in std::iter::once(entry.code).chain(entry.aliases()) {
            self.index.entry(normalise_code(key)).or_insert(i);
        }
        self.entries.push(entry);
    }
}

/// Parses the TSV: `#` comments, one header line, then
/// `code name g_per_kwh year dataset aliases` separated by tabs.
fn parse_table(text: &'static str) -> Result<Vec<TableEntry>, TableError> {
    let mut entries = Vec::new();
    let mut seen_header = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !seen_header {
            seen_header = true;
            continue;
        }
        entries.push(parse_row(line).map_err(|message| TableError {
            file: "intensity.tsv",
            line: i + 1,
            message,
        })?);
    }
    Ok(entries)
}

fn parse_row(line: &'static str) -> Result<TableEntry, String> {
    let fields: Vec<&'static str> = line.split('\t').collect();
    let [code, name, value, year, dataset, aliases] = fields[..] else {
        return Err(format!(
            "expected 6 tab-separated fields, got {}",
            fields.len()
        ));
    };
    let g_per_kwh: f64 = value
        .parse()
        .map_err(|_| format!("bad g_per_kwh {value:?}"))?;
    if !g_per_kwh.is_finite() || g_per_kwh < 0.0 {
        return Err(format!("g_per_kwh out of range: {g_per_kwh}"));
    }
    let year = match year {
        "" => None,
        y => Some(y.parse().map_err(|_| format!("bad year {y:?}"))?),
    };
    Ok(TableEntry {
        code,
        name,
        g_per_kwh,
        year,
        dataset,
        aliases,
        zone: None,
    })
}

/// Canonical form used to compare codes: upper case, every run of characters other
/// than letters, digits and `:` turned into one `-`, no `-` at either end. So `us_ca`,
/// `US CA` and `US-CA` are the same key, as are `New South Wales` and `NEW-SOUTH-WALES`.
pub fn normalise_code(code: &str) -> String {
    let mut key = String::with_capacity(code.len());
    for c in code.trim().chars() {
        if c.is_alphanumeric() || c == ':' {
            key.extend(c.to_uppercase());
        } else if !key.is_empty() && !key.ends_with('-') {
            key.push('-');
        }
    }
    while key.ends_with('-') {
        key.pop();
    }
    key
}

/// The row for a code, case-insensitively: `FRA`, `FR`, `fr`, `France`, `US-CA`,
/// `california`, `CA-QC`, `CN-BJ`, `SE3`, `SE-SE3`, `gcp:europe-west1`, `WORLD`…
pub fn lookup(code: &str) -> Option<&'static TableEntry> {
    let table = table();
    table
        .index
        .get(&normalise_code(code))
        .map(|&i| &table.entries[i])
}

/// Every row, in table order (countries first, AWS and Azure regions last).
pub fn entries() -> &'static [TableEntry] {
    &table().entries
}

/// The world average (475 g/kWh, `carbon_intensity_per_source.json` `world_average`,
/// after IEA's Global Energy & CO2 Status Report 2019).
pub fn world_average() -> TableEntry {
    lookup(WORLD_CODE).copied().unwrap_or(WORLD_FALLBACK)
}

/// The ISO alpha-2 code of a country row (its first alias), for APIs keyed by
/// alpha-2 such as Electricity Maps zones.
pub fn alpha2_of(entry: &TableEntry) -> Option<&'static str> {
    let first = entry.aliases().next()?;
    let is_alpha2 = first.len() == 2 && first.bytes().all(|b| b.is_ascii_uppercase());
    (entry.code.len() == 3 && is_alpha2).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EGRID_LBS_PER_MWH_TO_G_PER_KWH: f64 = 0.453592;

    #[test]
    fn embedded_table_parses() {
        let entries = parse_table(TABLE_TSV).unwrap();
        assert!(entries.len() > 400, "only {} rows", entries.len());
        let clouds = cloud::parse(cloud::ZONES_TSV).unwrap().len();
        assert_eq!(entries.len() + clouds, super::entries().len());
    }

    #[test]
    fn lookup_accepts_every_spelling() {
        let cases: &[(&str, &str)] = &[
            ("FRA", "FRA"),
            ("FR", "FRA"),
            ("fr", "FRA"),
            (" fra ", "FRA"),
            ("France", "FRA"),
            ("DE", "DEU"),
            ("GB", "GBR"),
            ("US", "USA"),
            ("CN", "CHN"),
            ("NA", "NAM"),
            ("CH", "CHE"),
            ("ZA", "ZAF"),
            ("Georgia", "GEO"),
            ("US-CA", "US-CA"),
            ("us_ca", "US-CA"),
            ("california", "US-CA"),
            ("US-GA", "US-GA"),
            ("US-DC", "US-DC"),
            ("CA-QC", "CA-QC"),
            ("quebec", "CA-QC"),
            ("CN-BJ", "CN-BJ"),
            ("nei mongol", "CN-NM"),
            ("SE3", "SE3"),
            ("SE-SE3", "SE3"),
            ("no4", "NO4"),
            ("gcp:europe-west1", "gcp:europe-west1"),
            ("GCP:US-CENTRAL1", "gcp:us-central1"),
            ("gcp:me-central1", "gcp:me-cenrtal1"),
            ("AU-NSW", "AU-NSW"),
            ("New South Wales", "AU-NSW"),
            ("au-act", "AU-ACT"),
            ("RU-MOSCOW", "RU-MOSCOW"),
            ("murmansk", "RU-MURMANSK"),
            ("world", "WORLD"),
        ];
        for &(input, code) in cases {
            assert_eq!(
                lookup(input).map(|e| e.code),
                Some(code),
                "lookup({input:?})"
            );
        }
    }

    #[test]
    fn unknown_codes_are_none() {
        for input in ["", "XX", "XYZ", "aws:us-east-0", "US-ZZ", "-", "gcp:"] {
            assert_eq!(lookup(input), None, "lookup({input:?})");
        }
    }

    /// Rows recomputed by hand from the source files (the full table is checked by
    /// the drift test in `derive.rs`).
    #[test]
    fn rows_match_hand_computed_values() {
        let canada_qc_g_per_kwh =
            (0.2 * 743.0 + 0.3 * 816.0 + 0.7 * 230.0 + 0.01 * 48.0 + 6.7 * 26.0 + 92.1 * 26.0)
                / 100.01;
        let cases: &[(&str, f64, Option<u16>)] = &[
            ("FRA", 56.039, Some(2023)),
            ("FIN", 79.158, Some(2023)),
            ("ESH", 666.667, Some(2009)),
            (
                "US-CA",
                394.769 * EGRID_LBS_PER_MWH_TO_G_PER_KWH,
                Some(2023),
            ),
            (
                "US-WV",
                1968.869 * EGRID_LBS_PER_MWH_TO_G_PER_KWH,
                Some(2023),
            ),
            ("CA-QC", canada_qc_g_per_kwh, Some(2023)),
            ("CA-NU", (99.8 * 816.0 + 0.2 * 48.0) / 100.0, Some(2023)),
            ("CN-BJ", 555.4, Some(2023)),
            ("SE3", 27.0, Some(2025)),
            ("NO4", 51.7, Some(2025)),
            ("gcp:europe-west1", 122.0, None),
            ("AU-VIC", 960.0, None),
            ("RU-MURMANSK", 53.51, None),
            ("WORLD", 475.0, None),
        ];
        for &(code, g_per_kwh, year) in cases {
            let entry = lookup(code).unwrap();
            assert!(
                (entry.g_per_kwh - g_per_kwh).abs() < 5e-4,
                "{code}: {} vs {g_per_kwh}",
                entry.g_per_kwh
            );
            assert_eq!(entry.year, year, "{code} year");
            assert!(!entry.dataset.is_empty(), "{code} dataset");
        }
    }

    #[test]
    fn world_average_is_475() {
        let world = world_average();
        assert_eq!(world.g_per_kwh, 475.0);
        assert_eq!(world.code, WORLD_CODE);
        assert_eq!(world, WORLD_FALLBACK);
    }

    #[test]
    fn normalise_code_table() {
        let cases = [
            ("us_ca", "US-CA"),
            ("  New  South Wales ", "NEW-SOUTH-WALES"),
            ("St.-Petersburg", "ST-PETERSBURG"),
            ("gcp:europe-west1", "GCP:EUROPE-WEST1"),
            ("--", ""),
        ];
        for (input, key) in cases {
            assert_eq!(normalise_code(input), key, "{input:?}");
        }
    }

    #[test]
    fn alpha2_only_for_countries() {
        let cases = [
            ("FRA", Some("FR")),
            ("NAM", Some("NA")),
            ("US-CA", None),
            ("SE3", None),
        ];
        for (code, alpha2) in cases {
            assert_eq!(alpha2_of(lookup(code).unwrap()), alpha2, "{code}");
        }
    }

    #[test]
    fn bad_rows_are_errors_naming_the_line() {
        let cases: &[(&'static str, usize)] = &[
            ("h\nFRA\tFrance\t56\t2022\tds\n", 2),
            ("# c\nh\nFRA\tFrance\tx\t2022\tds\tFR\n", 3),
            ("h\nFRA\tFrance\t-1\t\tds\tFR\n", 2),
            ("h\nFRA\tFrance\t1\t20x\tds\tFR\n", 2),
        ];
        for &(text, line) in cases {
            assert_eq!(parse_table(text).unwrap_err().line, line, "{text:?}");
        }
    }
}
