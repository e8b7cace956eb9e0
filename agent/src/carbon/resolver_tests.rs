//! Tests for intensity resolution and `gco2`.
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::series::parse_rfc3339;
use super::*;

fn t(s: &str) -> SystemTime {
    parse_rfc3339(s).unwrap()
}

fn resolver(config: CarbonConfig) -> CarbonResolver {
    CarbonResolver::new(config).unwrap()
}

fn series_file(dir: &Path) -> PathBuf {
    let path = dir.join("grid.csv");
    let text = "timestamp,g_per_kwh\n2026-11-22T00:00:00Z,80\n2026-11-22T01:00:00Z,20\n";
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn gco2_table() {
    let cases = [
        (0.0, 475.0, 0.0),
        (3.6e6, 100.0, 100.0),
        (3.6e6, 0.0, 0.0),
        (1_000.0, 475.0, 1_000.0 / 3.6e6 * 475.0),
        (36.0, 56.039, 36.0 * 56.039 / 3.6e6),
    ];
    for (joules, g_per_kwh, grams) in cases {
        assert!(
            (gco2(joules, g_per_kwh) - grams).abs() < 1e-12,
            "{joules} J at {g_per_kwh}"
        );
    }
}

#[test]
fn labels_table() {
    let cases = [
        (IntensitySource::Table, "table"),
        (IntensitySource::WorldAverage, "world-average"),
        (IntensitySource::Fixed, "fixed"),
        (IntensitySource::Series, "series"),
        (IntensitySource::ElectricityMaps, "electricitymaps"),
        (IntensitySource::CarbonIntensityUk, "carbon-intensity-uk"),
    ];
    for (source, label) in cases {
        assert_eq!(source.label(), label);
        assert_eq!(source.to_string(), label);
        assert_eq!(
            serde_json::to_string(&source).unwrap(),
            format!("\"{label}\"")
        );
    }
}

#[test]
fn table_intensity_table() {
    let france = lookup("FRA").unwrap().g_per_kwh;
    let virginia = lookup("US-VA").unwrap().g_per_kwh;
    // (region, g/kWh, region label, source)
    let cases: &[(Option<&str>, f64, &str, IntensitySource)] = &[
        (Some("fr"), france, "FRA", IntensitySource::Table),
        (Some("FRA"), france, "FRA", IntensitySource::Table),
        (
            Some("aws:us-east-1"),
            virginia,
            "aws:us-east-1",
            IntensitySource::Table,
        ),
        (None, 475.0, "world", IntensitySource::WorldAverage),
    ];
    for &(region, g_per_kwh, code, source) in cases {
        let got = table_intensity(region).unwrap();
        let expected = Intensity {
            g_per_kwh,
            region: code.to_string(),
            source,
            note: None,
        };
        assert_eq!(got, expected, "{region:?}");
    }
    for unknown in ["XYZ", "  ", "", "aws:us-east-9"] {
        let err = table_intensity(Some(unknown)).unwrap_err();
        assert_eq!(err.code, unknown);
        assert!(!err.closest.is_empty(), "{unknown}");
    }
}

#[test]
fn precedence_fixed_series_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = series_file(dir.path());
    let in_range = t("2026-11-22T01:30:00Z");
    let france = lookup("FRA").unwrap().g_per_kwh;
    let fra = || Some("FRA".to_string());
    let cases = [
        (
            CarbonConfig {
                region: fra(),
                ..Default::default()
            },
            france,
            IntensitySource::Table,
        ),
        (
            CarbonConfig {
                region: fra(),
                intensity_g_per_kwh: Some(12.5),
                series_path: Some(path.clone()),
                provider: None,
                pue: None,
            },
            12.5,
            IntensitySource::Fixed,
        ),
        (
            CarbonConfig {
                region: fra(),
                series_path: Some(path.clone()),
                ..Default::default()
            },
            20.0,
            IntensitySource::Series,
        ),
        (
            CarbonConfig::default(),
            475.0,
            IntensitySource::WorldAverage,
        ),
        (
            CarbonConfig {
                intensity_g_per_kwh: Some(0.0),
                ..Default::default()
            },
            0.0,
            IntensitySource::Fixed,
        ),
    ];
    for (config, g_per_kwh, source) in cases {
        let label = format!("{config:?}");
        let got = resolver(config).intensity_at(in_range);
        assert_eq!(
            (got.g_per_kwh, got.source, got.note),
            (g_per_kwh, source, None),
            "{label}"
        );
    }
}

#[test]
fn series_gap_falls_back_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let path = series_file(dir.path());
    let mut r = resolver(CarbonConfig {
        region: Some("SE3".into()),
        series_path: Some(path),
        ..Default::default()
    });
    let got = r.intensity_at(t("2026-11-22T02:00:00Z"));
    assert_eq!(
        (got.g_per_kwh, got.source, got.region.as_str()),
        (27.0, IntensitySource::Table, "SE3")
    );
    let note = got.note.unwrap();
    let expected = "has no value at 2026-11-22T02:00:00Z (covers 2026-11-22T00:00:00Z to \
                    2026-11-22T02:00:00Z); using the table value for SE3";
    assert!(
        note.contains("grid.csv") && note.ends_with(expected),
        "{note}"
    );
    assert_eq!(r.intensity_at(t("2026-11-22T00:59:59Z")).g_per_kwh, 80.0);
}

#[test]
fn series_gap_without_region_falls_back_to_the_world_average() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = resolver(CarbonConfig {
        series_path: Some(series_file(dir.path())),
        ..Default::default()
    });
    let got = r.intensity_at(UNIX_EPOCH + Duration::from_secs(1));
    assert_eq!(got.source, IntensitySource::WorldAverage);
    let note = got.note.unwrap();
    assert!(note.ends_with("; using the world average"), "{note}");
}

#[test]
fn pue_is_checked_and_kept() {
    assert_eq!(resolver(CarbonConfig::default()).pue(), 1.0);
    let with = |pue| CarbonConfig {
        pue: Some(pue),
        ..Default::default()
    };
    assert_eq!(resolver(with(1.4)).pue(), 1.4);
    for bad in [0.99, 3.01, f64::NAN, f64::INFINITY] {
        let err = CarbonResolver::new(with(bad)).err().unwrap();
        assert_eq!(err.to_string(), format!("PUE {bad} is outside 1.0..=3.0"));
    }
}

#[test]
fn bad_configurations_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad_series = dir.path().join("bad.csv");
    std::fs::write(&bad_series, "2026-11-22T00:00:00Z,1\noops\n").unwrap();
    let cases = [
        (
            CarbonConfig {
                intensity_g_per_kwh: Some(-1.0),
                ..Default::default()
            },
            "--intensity",
        ),
        (
            CarbonConfig {
                intensity_g_per_kwh: Some(f64::NAN),
                ..Default::default()
            },
            "--intensity",
        ),
        (
            CarbonConfig {
                series_path: Some(bad_series),
                ..Default::default()
            },
            "bad.csv:2:",
        ),
        (
            CarbonConfig {
                series_path: Some(dir.path().join("none.csv")),
                ..Default::default()
            },
            "none.csv",
        ),
        (
            CarbonConfig {
                provider: Some(ProviderConfig::electricity_maps("t", None)),
                ..Default::default()
            },
            "needs a zone",
        ),
        (
            CarbonConfig {
                region: Some("Atlantis".into()),
                ..Default::default()
            },
            "unknown region \"Atlantis\" (closest known: ",
        ),
    ];
    for (config, needle) in cases {
        let err = CarbonResolver::new(config).err().unwrap();
        // The top-level message names the part; the cause says what is wrong.
        let message = format!("{:#}", anyhow::Error::from(err));
        assert!(message.contains(needle), "{needle}: {message}");
    }
}

#[test]
fn uk_provider_falls_back_to_great_britain() {
    let config = CarbonConfig {
        provider: Some(ProviderConfig::carbon_intensity_uk()),
        ..Default::default()
    };
    let r = resolver(config);
    assert_eq!(r.baseline().region, "GBR");
    assert_eq!(r.baseline().source, IntensitySource::Table);
}
