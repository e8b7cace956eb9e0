//! Derives `agent/data/carbon/intensity.tsv` from the unchanged source files (tests
//! only): the drift test regenerates the table and fails on any difference;
//! `GREENTOP_BLESS=1 cargo test -p greentop-agent --lib carbon::derive` rewrites it.
use std::collections::HashSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use super::table::normalise_code;

#[path = "derive_csv.rs"]
mod csv_sources;

use csv_sources::{cloud, eco2ai};
// Used by the tests below.
use csv_sources::{csv_fields, read_csv};

/// EPA eGRID publishes lb/MWh; 1 lb = 0.453592 kg, and kg/MWh = g/kWh.
pub const LBS_PER_MWH_TO_G_PER_KWH: f64 = 0.453592;

/// `canada_energy_mix.json` has no year field; SOURCES.md and CodeCarbon say 2023.
const CANADA_YEAR: u16 = 2023;

/// Canadian mix key → key in `carbon_intensity_per_source.json`.
const CANADA_FACTOR_KEYS: &[(&str, &str)] = &[
    ("naturalGas", "natural_gas"),
    ("petroleum", "petroleum"),
    ("coal", "coal"),
    ("nuclear", "nuclear"),
    ("hydro", "hydroelectricity"),
    ("wind", "wind"),
    ("solar", "solar"),
    ("biomass", "biomass"),
];

/// Canadian mix keys with no factor in the source table: counted at 0 g/kWh (all
/// are 0 % in the 2023 data; a test keeps it so).
const CANADA_UNFACTORED_KEYS: &[&str] = &["other", "tidal"];

const CANADA_PROVINCES: &[(&str, &str)] = &[
    ("alberta", "CA-AB"),
    ("british columbia", "CA-BC"),
    ("manitoba", "CA-MB"),
    ("new brunswick", "CA-NB"),
    ("newfoundland and labrador", "CA-NL"),
    ("nova scotia", "CA-NS"),
    ("northwest territories", "CA-NT"),
    ("nunavut", "CA-NU"),
    ("ontario", "CA-ON"),
    ("prince edward island", "CA-PE"),
    ("quebec", "CA-QC"),
    ("saskatchewan", "CA-SK"),
    ("yukon", "CA-YT"),
];

const DS_WORLD: &str = "CodeCarbon 3.3.2 carbon_intensity_per_source (IEA 2019)";
const DS_COUNTRY: &str = "CodeCarbon 3.3.2 global_energy_mix (Our World in Data/Ember)";
const DS_US: &str = "CodeCarbon 3.3.2 usa_emissions (EPA eGRID2023, lb/MWh x 0.453592)";
const DS_CANADA: &str = "CodeCarbon 3.3.2 canada_energy_mix x carbon_intensity_per_source";
const DS_CHINA: &str = "CodeCarbon 3.3.2 china_provincial_emissions (MEE/NBS 2023, CO2 only)";
const DS_NORDIC: &str = "CodeCarbon 3.3.2 nordic_emissions (ENTSO-E 2025 generation mix)";

pub struct Row {
    pub code: String,
    pub name: String,
    pub g_per_kwh: f64,
    pub year: Option<u16>,
    pub dataset: &'static str,
    pub aliases: Vec<String>,
}

fn read_json(dir: &Path, file: &str) -> Result<Value, String> {
    let text = fs::read_to_string(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))
}

fn num(v: &Value, what: &str) -> Result<f64, String> {
    v.as_f64()
        .ok_or_else(|| format!("{what}: not a number: {v}"))
}

fn year(v: &Value) -> Option<u16> {
    v.as_u64().and_then(|y| u16::try_from(y).ok())
}

fn sorted_entries(v: &Value, what: &str) -> Result<Vec<(String, Value)>, String> {
    let map = v
        .as_object()
        .ok_or_else(|| format!("{what}: not an object"))?;
    let mut entries: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// `district of columbia` → `District of Columbia`.
fn title_case(name: &str) -> String {
    let words = name.split_whitespace().map(|w| match w {
        "of" | "and" => w.to_string(),
        _ => {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    });
    words.collect::<Vec<_>>().join(" ")
}

/// alpha-3 → alpha-2 from `iso3166-1.tsv`.
pub fn iso_alpha2_by_alpha3(iso_path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = fs::read_to_string(iso_path).map_err(|e| format!("{}: {e}", iso_path.display()))?;
    let rows = text.lines().filter(|l| !l.starts_with('#')).skip(1);
    let pairs = rows.map(|l| {
        let mut f = l.split('\t');
        (
            f.nth(1).unwrap_or("").to_string(),
            l.get(..2).unwrap_or("").to_string(),
        )
    });
    Ok(pairs.collect())
}

fn world(dir: &Path) -> Result<Row, String> {
    let factors = read_json(dir, "carbon_intensity_per_source.json")?;
    Ok(Row {
        code: "WORLD".into(),
        name: "World average".into(),
        g_per_kwh: num(&factors["world_average"], "world_average")?,
        year: None,
        dataset: DS_WORLD,
        aliases: Vec::new(),
    })
}

fn countries(dir: &Path, iso_path: &Path) -> Result<Vec<Row>, String> {
    let iso = iso_alpha2_by_alpha3(iso_path)?;
    let mix = read_json(dir, "global_energy_mix.json")?;
    let mut rows = Vec::new();
    for (code, c) in sorted_entries(&mix, "global_energy_mix")? {
        let alpha2 = iso
            .iter()
            .find(|(a3, _)| *a3 == code)
            .map(|(_, a2)| a2.clone());
        let alpha2 = alpha2.ok_or_else(|| format!("{code}: not an ISO alpha-3 code"))?;
        let name = c["country_name"].as_str().unwrap_or(&code).to_string();
        rows.push(Row {
            g_per_kwh: num(&c["carbon_intensity"], &code)?,
            year: year(&c["year"]),
            dataset: DS_COUNTRY,
            aliases: vec![alpha2, name.clone()],
            code,
            name,
        });
    }
    Ok(rows)
}

fn us_states(dir: &Path) -> Result<Vec<Row>, String> {
    let usa = read_json(dir, "usa_emissions.json")?;
    let data_year = year(&usa["_source"]["year"]);
    let mut rows = Vec::new();
    for (key, s) in sorted_entries(&usa, "usa_emissions")? {
        let region = s["regionCode"].as_str().unwrap_or("");
        // `usa` is the national eGRID figure; the country row `USA` covers the nation.
        if key.starts_with('_') || region.len() != 2 {
            continue;
        }
        let name = title_case(&key);
        rows.push(Row {
            code: format!("US-{region}"),
            g_per_kwh: num(&s["emissions"], &key)? * LBS_PER_MWH_TO_G_PER_KWH,
            year: data_year,
            dataset: DS_US,
            aliases: vec![name.clone()],
            name,
        });
    }
    Ok(rows)
}

/// Σ (share / total) × factor over the sources that have a factor.
pub fn canada_g_per_kwh(mix: &Value, factors: &Value, what: &str) -> Result<f64, String> {
    let total = num(&mix["total"], what)?;
    let mut sum_g_per_kwh = 0.0;
    for (key, share) in mix
        .as_object()
        .ok_or_else(|| format!("{what}: not an object"))?
    {
        if key == "total" || CANADA_UNFACTORED_KEYS.contains(&key.as_str()) {
            continue;
        }
        let (_, factor_key) = CANADA_FACTOR_KEYS
            .iter()
            .find(|(k, _)| k == key)
            .ok_or_else(|| format!("{what}: source {key:?} has no factor mapping"))?;
        sum_g_per_kwh += num(share, what)? * num(&factors[*factor_key], factor_key)?;
    }
    Ok(sum_g_per_kwh / total)
}

fn canada(dir: &Path) -> Result<Vec<Row>, String> {
    let factors = read_json(dir, "carbon_intensity_per_source.json")?;
    let mixes = read_json(dir, "canada_energy_mix.json")?;
    let mut rows = Vec::new();
    for (key, mix) in sorted_entries(&mixes, "canada_energy_mix")? {
        let (_, code) = CANADA_PROVINCES
            .iter()
            .find(|(name, _)| *name == key)
            .ok_or_else(|| format!("canada_energy_mix: unknown province {key:?}"))?;
        let name = title_case(&key);
        rows.push(Row {
            code: (*code).to_string(),
            g_per_kwh: canada_g_per_kwh(&mix, &factors, &key)?,
            year: Some(CANADA_YEAR),
            dataset: DS_CANADA,
            aliases: vec![name.clone()],
            name,
        });
    }
    rows.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(rows)
}

fn china(dir: &Path) -> Result<Vec<Row>, String> {
    let data = read_json(dir, "china_provincial_emissions.json")?;
    let mut rows = Vec::new();
    for (code, p) in sorted_entries(&data["data"], "china_provincial_emissions")? {
        let name = p["description"].as_str().unwrap_or(&code).to_string();
        let names = p["names"].as_array().into_iter().flatten();
        let mut aliases = vec![name.clone()];
        aliases.extend(names.filter_map(|n| n.as_str().map(str::to_string)));
        rows.push(Row {
            g_per_kwh: num(&p["emission_factor"], &code)?,
            year: year(&p["year"]),
            dataset: DS_CHINA,
            aliases,
            code,
            name,
        });
    }
    Ok(rows)
}

fn nordic(dir: &Path) -> Result<Vec<Row>, String> {
    let data = read_json(dir, "nordic_emissions.json")?;
    let mut rows = Vec::new();
    for (code, z) in sorted_entries(&data["data"], "nordic_emissions")? {
        // `FI` is Finland's alpha-2 code, which resolves to the country row FIN.
        if code.len() != 3 {
            continue;
        }
        rows.push(Row {
            name: z["description"].as_str().unwrap_or(&code).to_string(),
            g_per_kwh: num(&z["emission_factor"], &code)?,
            year: year(&z["year"]),
            dataset: DS_NORDIC,
            aliases: vec![format!("{}-{code}", &code[..2])],
            code,
        });
    }
    Ok(rows)
}

/// All rows in priority order: an earlier row keeps a code or alias that a later row
/// also claims (`Georgia` is the country, `US-GA` the state).
pub fn derive_rows(sources: &Path, iso_path: &Path) -> Result<Vec<Row>, String> {
    let mut rows = vec![world(sources)?];
    rows.extend(countries(sources, iso_path)?);
    rows.extend(us_states(sources)?);
    rows.extend(canada(sources)?);
    rows.extend(china(sources)?);
    rows.extend(nordic(sources)?);
    rows.extend(cloud(sources)?);
    rows.extend(eco2ai(sources)?);
    Ok(rows)
}

/// `56.039`, `179.064`, `475`: three decimals, trailing zeros dropped.
fn format_g_per_kwh(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The TSV text; rows whose code is already taken are dropped, as are aliases
/// already taken, so every key in the file resolves to the row it is written on.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "# greentop grid carbon intensity (gCO2/kWh), derived from sources/ by\n\
         # agent/src/carbon/derive.rs: do not edit; regenerate with\n\
         # GREENTOP_BLESS=1 cargo test -p greentop-agent --lib carbon::derive\n\
         code\tname\tg_per_kwh\tyear\tdataset\taliases\n",
    );
    let mut taken = HashSet::new();
    for row in rows {
        if !taken.insert(normalise_code(&row.code)) {
            continue;
        }
        let aliases: Vec<&str> = row
            .aliases
            .iter()
            .filter(|a| taken.insert(normalise_code(a)))
            .map(String::as_str)
            .collect();
        let year = row.year.map(|y| y.to_string()).unwrap_or_default();
        let value = format_g_per_kwh(row.g_per_kwh);
        let line = [
            row.code.as_str(),
            &row.name,
            &value,
            &year,
            row.dataset,
            &aliases.join("|"),
        ];
        out.push_str(&line.join("\t"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "derive_tests.rs"]
mod tests;
