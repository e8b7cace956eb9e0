//! Drift tests: `intensity.tsv` and the ISO list against the unchanged source files.
use std::path::PathBuf;

use super::*;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/carbon")
}

fn sources() -> PathBuf {
    data_dir().join("sources")
}

fn iso_path() -> PathBuf {
    data_dir().join("iso3166-1.tsv")
}

#[test]
fn intensity_tsv_matches_sources() {
    let derived = render(&derive_rows(&sources(), &iso_path()).unwrap());
    let path = data_dir().join("intensity.tsv");
    if std::env::var_os("GREENTOP_BLESS").is_some() {
        fs::write(&path, &derived).unwrap();
    }
    let committed = fs::read_to_string(&path).unwrap();
    let first_difference = committed
        .lines()
        .zip(derived.lines())
        .enumerate()
        .find(|(_, (c, d))| c != d);
    assert!(
        first_difference.is_none() && committed.lines().count() == derived.lines().count(),
        "intensity.tsv drifted from sources/ (first difference: {first_difference:?}); \
         rerun with GREENTOP_BLESS=1 and review the diff"
    );
}

#[test]
fn every_code_and_alias_is_claimed_once() {
    let text = fs::read_to_string(data_dir().join("intensity.tsv")).unwrap();
    let mut keys = HashSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let aliases = fields[5].split('|').filter(|a| !a.is_empty());
        for key in std::iter::once(fields[0]).chain(aliases) {
            assert!(keys.insert(normalise_code(key)), "{key} claimed twice");
        }
    }
}

#[test]
fn iso_list_agrees_with_eco2ai_columns() {
    let iso = iso_alpha2_by_alpha3(&iso_path()).unwrap();
    assert_eq!(iso.len(), 249);
    let records = read_csv(&sources(), "eco2ai_carbon_index.csv").unwrap();
    let mut checked = 0;
    for f in records {
        let (alpha2, alpha3) = (&f[3], &f[4]);
        // ECO2AI lost Namibia's `NA` (read as not-available) and has a WORLD row.
        if alpha2.is_empty() || alpha3 == "WORLD" {
            continue;
        }
        let ours = iso
            .iter()
            .find(|(a3, _)| a3 == alpha3)
            .map(|(_, a2)| a2.as_str());
        assert_eq!(ours, Some(alpha2.as_str()), "{alpha3}");
        checked += 1;
    }
    assert!(checked > 300, "checked {checked}");
}

#[test]
fn iso_pairs_spot_checks() {
    let iso = iso_alpha2_by_alpha3(&iso_path()).unwrap();
    let cases = [
        ("FRA", "FR"),
        ("DEU", "DE"),
        ("GBR", "GB"),
        ("USA", "US"),
        ("CHN", "CN"),
        ("NAM", "NA"),
        ("CHE", "CH"),
        ("AUT", "AT"),
        ("AUS", "AU"),
        ("ZAF", "ZA"),
        ("KOR", "KR"),
        ("PRK", "KP"),
        ("TLS", "TL"),
        ("ESH", "EH"),
    ];
    for (alpha3, alpha2) in cases {
        let ours = iso
            .iter()
            .find(|(a3, _)| a3 == alpha3)
            .map(|(_, a2)| a2.as_str());
        assert_eq!(ours, Some(alpha2), "{alpha3}");
    }
}

#[test]
fn canada_unfactored_sources_are_zero() {
    let mixes = read_json(&sources(), "canada_energy_mix.json").unwrap();
    for (province, mix) in sorted_entries(&mixes, "canada").unwrap() {
        for key in CANADA_UNFACTORED_KEYS {
            assert_eq!(mix[*key].as_f64(), Some(0.0), "{province} {key}");
        }
    }
}

#[test]
fn canada_mix_is_share_weighted() {
    let factors =
        serde_json::json!({"coal": 1000.0, "hydroelectricity": 20.0, "natural_gas": 500.0});
    let cases = [
        (
            serde_json::json!({"coal": 50.0, "hydro": 50.0, "total": 100.0}),
            510.0,
        ),
        (
            serde_json::json!({"naturalGas": 10.0, "total": 20.0}),
            250.0,
        ),
        (
            serde_json::json!({"hydro": 100.0, "other": 0.0, "tidal": 0.0, "total": 100.0}),
            20.0,
        ),
    ];
    for (mix, expected) in cases {
        let got = canada_g_per_kwh(&mix, &factors, "test").unwrap();
        assert!((got - expected).abs() < 1e-9, "{mix}: {got}");
    }
    let unknown = serde_json::json!({"fusion": 1.0, "total": 1.0});
    assert!(canada_g_per_kwh(&unknown, &factors, "test").is_err());
}

#[test]
fn csv_fields_table() {
    let cases: &[(&str, &[&str])] = &[
        ("a,b,c", &["a", "b", "c"]),
        ("a,\"b,c\",d", &["a", "b,c", "d"]),
        ("\"say \"\"hi\"\"\",", &["say \"hi\"", ""]),
        ("", &[""]),
    ];
    for &(line, fields) in cases {
        assert_eq!(csv_fields(line), fields, "{line:?}");
    }
}

#[test]
fn format_and_title_case_tables() {
    let numbers = [
        (56.039, "56.039"),
        (475.0, "475"),
        (179.06366, "179.064"),
        (0.0, "0"),
    ];
    for (value, text) in numbers {
        assert_eq!(format_g_per_kwh(value), text);
    }
    let names = [
        ("district of columbia", "District of Columbia"),
        ("newfoundland and labrador", "Newfoundland and Labrador"),
        ("texas", "Texas"),
    ];
    for (name, title) in names {
        assert_eq!(title_case(name), title);
    }
}
