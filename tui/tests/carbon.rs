//! Carbon end to end through the binary: region table (AWS and Azure regions too),
//! fixed intensity, PUE, series, grams consistent with joules, the greenest-window
//! planner and config errors.
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

fn greentop() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop"))
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(greentop())
        .args(args)
        .output()
        .expect("run greentop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "greentop panicked: {stderr}");
    out
}

fn last_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("a JSON line")).expect("JSON")
}

const BATCH: [&str; 7] = ["--batch", "-n", "1", "-d", "0.3", "--json", "--no-gpu"];

#[test]
fn region_and_fixed_intensity_price_every_process() {
    // (options, region, g/kWh, source, PUE)
    let cases: &[(&[&str], &str, f64, &str, f64)] = &[
        (&["--region", "US-CA"], "US-CA", 179.063, "table", 1.0),
        (&["--region", "fr"], "FRA", 56.04, "table", 1.0),
        (
            &["--region", "gcp:europe-west1"],
            "gcp:europe-west1",
            122.0,
            "table",
            1.0,
        ),
        // Cloud regions of AWS and Azure price at their grid zone (US-VA, NLD).
        (
            &["--region", "aws:us-east-1"],
            "aws:us-east-1",
            244.758,
            "table",
            1.0,
        ),
        (
            &["--region", "azure:westeurope"],
            "azure:westeurope",
            267.622,
            "table",
            1.0,
        ),
        (
            &["--intensity", "100", "--region", "FR"],
            "FRA",
            100.0,
            "fixed",
            1.0,
        ),
        // The world average only when no region is given, and labelled so.
        (&[], "world", 475.0, "world-average", 1.0),
        // PUE multiplies the grams, never the joules.
        (
            &["--region", "FR", "--pue", "1.5"],
            "FRA",
            56.04,
            "table",
            1.5,
        ),
    ];
    for &(extra, region, g, source, pue) in cases {
        let line = last_json(&run(&[&BATCH[..], extra].concat()));
        let system = &line["system"];
        assert_eq!(system["region"], region, "{extra:?}");
        assert_eq!(system["intensity_source"], source, "{extra:?}");
        assert_eq!(system["pue"], pue, "{extra:?}");
        assert!(
            system.get("intensity_note").is_none(),
            "{extra:?}: {system}"
        );
        let intensity = system["intensity_g_per_kwh"].as_f64().unwrap();
        assert!(
            (intensity - g).abs() < 0.01,
            "{extra:?}: {intensity} g/kWh, expected {g}"
        );
        for p in line["processes"].as_array().unwrap() {
            let joules = p["joules"].as_f64().unwrap();
            let parts = ["cpu_joules", "dram_joules", "gpu_joules"].map(|k| p[k].as_f64().unwrap());
            assert!(
                (joules - parts.iter().sum::<f64>()).abs() <= 1e-9 * joules.max(1.0),
                "{p}"
            );
            let grams = p["gco2"].as_f64().unwrap();
            assert!(
                (grams - joules / 3.6e6 * intensity * pue).abs() <= 1e-12 + 1e-9 * grams,
                "{p}"
            );
        }
        let measured = ["cpu_joules", "dram_joules", "gpu_joules"]
            .iter()
            .map(|k| system[k].as_f64().unwrap())
            .sum::<f64>();
        let grams = system["gco2"].as_f64().unwrap();
        assert!(
            (grams - measured / 3.6e6 * intensity * pue).abs() < 1e-9,
            "{extra:?}"
        );
    }
}

/// An hourly series from an hour ago to 26 h ahead, 300 g/kWh except 100 from +5 h to +9 h.
fn series_file(dir: &std::path::Path) -> PathBuf {
    let hour = 3600;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let top = now - now % hour;
    let mut text = String::from("timestamp,g_per_kwh\n");
    for h in -1i64..=26 {
        let at =
            SystemTime::UNIX_EPOCH + Duration::from_secs((top as i64 + h * hour as i64) as u64);
        let value = if (5..9).contains(&h) { 100 } else { 300 };
        text.push_str(&format!(
            "{},{value}\n",
            humantime::format_rfc3339_seconds(at)
        ));
    }
    let path = dir.join("intensity.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn series_sets_the_intensity_and_greenest_finds_the_valley() {
    let dir = tempfile::tempdir().unwrap();
    let series = series_file(dir.path());
    let path = series.to_str().unwrap();
    let line = last_json(&run(&[&BATCH[..], &["--intensity-series", path]].concat()));
    assert_eq!(line["system"]["intensity_source"], "series");
    assert_eq!(line["system"]["intensity_g_per_kwh"], 300.0);
    let out = run(&[
        "greenest",
        "--duration",
        "4h",
        "--within",
        "24h",
        "--series",
        path,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("100.0 gCO2/kWh on average over 4h"), "{text}");
    assert!(
        text.contains("starting now: 300.0 gCO2/kWh; saving 66.7 %"),
        "{text}"
    );
    let bad = run(&[
        "greenest",
        "--duration",
        "30h",
        "--within",
        "24h",
        "--series",
        path,
    ]);
    assert_eq!(bad.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("does not fit"));
}

#[test]
fn bad_config_and_series_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("greentop.toml");
    std::fs::write(&config, "regoin = \"FR\"\n").unwrap();
    let out = run(&[&BATCH[..], &["--config", config.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("greentop.toml") && stderr.contains("unknown field `regoin`"),
        "{stderr}"
    );
    let series = dir.path().join("bad.csv");
    std::fs::write(&series, "timestamp,g_per_kwh\n2026-01-01T00:00:00Z,abc\n").unwrap();
    let out = run(&[
        &BATCH[..],
        &["--intensity-series", series.to_str().unwrap()],
    ]
    .concat());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.csv:2: bad g_per_kwh \"abc\""),
        "{stderr}"
    );
}
