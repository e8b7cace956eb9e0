//! The CSV sources of the derived table: cloud regions (CodeCarbon) and ECO2AI's
//! sub-national rows.
use std::fs;
use std::path::Path;

use super::Row;
use super::normalise_code;

/// ECO2AI sub-national rows kept: those of countries no other source splits.
const ECO2AI_SUBNATIONAL_COUNTRIES: &[&str] = &["Australia", "Russia"];

/// ECO2AI name → ISO 3166-2 code and full name.
const AUSTRALIA_STATES: &[(&str, &str, &str)] = &[
    ("ACT", "AU-ACT", "Australian Capital Territory"),
    (
        "Australian Capital Territory",
        "AU-ACT",
        "Australian Capital Territory",
    ),
    ("New South Wales", "AU-NSW", "New South Wales"),
    ("Northern Territory", "AU-NT", "Northern Territory"),
    ("Queensland", "AU-QLD", "Queensland"),
    ("South Australia", "AU-SA", "South Australia"),
    ("Tasmania", "AU-TAS", "Tasmania"),
    ("Victoria", "AU-VIC", "Victoria"),
    ("Western Australia", "AU-WA", "Western Australia"),
];

/// Misspelt region names in the source data → the provider's real name, as an alias.
const CLOUD_REGION_TYPOS: &[(&str, &str)] = &[("gcp:me-cenrtal1", "gcp:me-central1")];

const DS_CLOUD: &str = "CodeCarbon 3.3.2 cloud_regions (provider-published)";
const DS_ECO2AI: &str = "ECO2AI 0.3.12 carbon_index (kg/MWh)";

pub fn read_csv(dir: &Path, file: &str) -> Result<Vec<Vec<String>>, String> {
    let text = fs::read_to_string(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
    let text = text.trim_start_matches('\u{feff}');
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(csv_fields)
        .collect())
}

/// One CSV record on one line, with `"…"` quoting and `""` escapes.
pub fn csv_fields(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

pub fn cloud(dir: &Path) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for f in read_csv(dir, "cloud_regions.csv")? {
        let [
            provider,
            provider_name,
            _,
            region,
            _,
            country,
            _,
            _,
            city,
            impact,
            ..,
        ] = &f[..]
        else {
            return Err(format!("cloud_regions.csv: short record {f:?}"));
        };
        let code = format!("{provider}:{region}");
        let aliases = CLOUD_REGION_TYPOS.iter().filter(|(typo, _)| *typo == code);
        rows.push(Row {
            name: format!("{provider_name} {region} ({city}, {country})"),
            g_per_kwh: impact
                .parse()
                .map_err(|_| format!("{code}: impact {impact:?}"))?,
            year: None,
            dataset: DS_CLOUD,
            aliases: aliases.map(|(_, fixed)| (*fixed).to_string()).collect(),
            code,
        });
    }
    Ok(rows)
}

pub fn eco2ai(dir: &Path) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for f in read_csv(dir, "eco2ai_carbon_index.csv")? {
        let [country, region, _, alpha2, _, _, value, ..] = &f[..] else {
            return Err(format!("eco2ai_carbon_index.csv: short record {f:?}"));
        };
        if region == "Whole country" || !ECO2AI_SUBNATIONAL_COUNTRIES.contains(&country.as_str()) {
            continue;
        }
        let region = region.trim();
        let iso = AUSTRALIA_STATES.iter().find(|(n, _, _)| *n == region);
        let (code, name) = match iso {
            Some((_, code, name)) => ((*code).to_string(), (*name).to_string()),
            None => (
                format!("{alpha2}-{}", normalise_code(region)),
                region.to_string(),
            ),
        };
        rows.push(Row {
            g_per_kwh: value
                .parse()
                .map_err(|_| format!("{region}: value {value:?}"))?,
            year: None,
            dataset: DS_ECO2AI,
            aliases: vec![name.clone(), region.to_string()],
            code,
            name,
        });
    }
    Ok(rows)
}
