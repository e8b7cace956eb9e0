//! Carbon end to end through the binary: region table, fixed intensity, series,
//! grams consistent with joules, the greenest-window planner and config errors.
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
    for (extra, region, g, source) in [
        (vec!["--region", "US-CA"], "US-CA", 179.063, "table"),
        (vec!["--region", "fr"], "FRA", 56.04, "table"),
        (
            vec!["--region", "gcp:europe-west1"],
            "gcp:europe-west1",
            0.0,
            "table",
        ),
        (
            vec!["--intensity", "100", "--region", "FR"],
            "FRA",
            100.0,
            "fixed",
        ),
        (
            vec!["--region", "Atlantis"],
            "world",
            475.0,
            "world-average",
        ),
    ] {
        let line = last_json(&run(&[&BATCH[..], &extra].concat()));
        let system = &line["system"];
        assert_eq!(system["region"], region, "{extra:?}");
        assert_eq!(system["intensity_source"], source, "{extra:?}");
        let intensity = system["intensity_g_per_kwh"].as_f64().unwrap();
        if g > 0.0 {
            assert!(
                (intensity - g).abs() < 0.01,
                "{extra:?}: {intensity} g/kWh, expected {g}"
            );
        }
        for p in line["processes"].as_array().unwrap() {
            let joules = p["joules"].as_f64().unwrap();
            let grams = p["gco2"].as_f64().unwrap();
            assert!(
                (grams - joules / 3.6e6 * intensity).abs() <= 1e-12 + 1e-9 * grams,
                "{p}"
            );
        }
        let measured = ["cpu_joules", "dram_joules", "gpu_joules"]
            .iter()
            .map(|k| system[k].as_f64().unwrap())
            .sum::<f64>();
        assert!((system["gco2"].as_f64().unwrap() - measured / 3.6e6 * intensity).abs() < 1e-9);
    }
    let unknown = last_json(&run(&[&BATCH[..], &["--region", "Atlantis"]].concat()));
    assert!(
        unknown["system"]["intensity_note"]
            .as_str()
            .unwrap()
            .contains("Atlantis")
    );
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
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("does not fit"));
}

#[test]
fn bad_config_and_series_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("greentop.toml");
    std::fs::write(&config, "regoin = \"FR\"\n").unwrap();
    let out = run(&[&BATCH[..], &["--config", config.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(1));
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
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.csv:2: bad g_per_kwh \"abc\""),
        "{stderr}"
    );
}
