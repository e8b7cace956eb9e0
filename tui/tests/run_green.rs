//! `greentop run --when-green` against a series file whose valley is known, on the
//! real clock: the series steps every second, so the waits are seconds, not hours
//! (the hours-long cases run on a fast clock in the library's tests).
mod run_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use run_support::*;
use serde_json::Value;

/// A series stepping every second from 30 s ago to 2 min ahead: 500 gCO₂/kWh,
/// except 100 during [valley, valley + 3 s). Returns the file and the valley.
fn series_with_valley(dir: &std::path::Path, in_s: u64) -> (std::path::PathBuf, SystemTime) {
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let valley = now_s + in_s;
    let mut text = String::from("timestamp,g_per_kwh\n");
    for t in now_s - 30..now_s + 120 {
        let g = if (valley..valley + 3).contains(&t) {
            100
        } else {
            500
        };
        let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t));
        text.push_str(&format!("{at},{g}\n"));
    }
    let path = dir.join("series.csv");
    std::fs::write(&path, text).unwrap();
    (path, UNIX_EPOCH + Duration::from_secs(valley))
}

fn when_green(extra: &[&str], in_s: u64) -> (Finished, Value, SystemTime) {
    let dir = tempfile::tempdir().unwrap();
    let (series, valley) = series_with_valley(dir.path(), in_s);
    let mut options = vec![
        "--when-green",
        "--threshold",
        "200",
        "--intensity-series",
        series.to_str().unwrap(),
    ];
    options.extend_from_slice(extra);
    let (out, report) = run_json(&options, &job_cmd(&["exit", "0"]));
    assert!(out.status.success(), "{}", out.stderr);
    (out, report, valley)
}

fn time(value: &Value) -> SystemTime {
    humantime::parse_rfc3339(value.as_str().unwrap()).unwrap()
}

#[test]
fn it_waits_for_the_valley() {
    let (out, report, valley) = when_green(&["--urgency", "low", "--max-wait", "1m"], 4);
    let decision = &report["when_green"];
    assert_eq!(time(&decision["start_at"]), valley, "{decision}");
    assert!(f(&decision["waited_s"]) > 1.0, "{decision}");
    assert_eq!(f(&decision["start_g_per_kwh"]), 100.0);
    assert_eq!(f(&decision["expected_saving_pct"]), 80.0);
    let run = only_run(&report);
    assert!(time(&run["started_at"]) >= valley, "{run}");
    assert!(
        out.stderr.contains("--when-green: waiting "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("expected saving 80.0 %"),
        "{}",
        out.stderr
    );
    // The run is priced at the valley's intensity.
    assert_eq!(f(&run["carbon"]["intensity_g_per_kwh"]), 100.0, "{run}");
}

#[test]
fn it_never_waits_past_max_wait() {
    let (_, report, valley) = when_green(&["--urgency", "low", "--max-wait", "2s"], 8);
    let decision = &report["when_green"];
    assert!(f(&decision["waited_s"]) <= 2.0, "{decision}");
    assert!(time(&decision["start_at"]) < valley, "{decision}");
    let why = decision["decision"].as_str().unwrap();
    assert!(why.starts_with("never at or below 200"), "{why}");
}

#[test]
fn urgency_high_never_waits() {
    let (out, report, _) = when_green(&["--urgency", "high"], 2);
    let decision = &report["when_green"];
    // No sleep at all: only the time to read the series and decide.
    assert!(f(&decision["waited_s"]) < 0.05, "{decision}");
    assert_eq!(decision["decision"], "urgency high: starting now");
    assert!(
        out.stderr.contains("--when-green: starting now"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_signal_while_waiting_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (series, _) = series_with_valley(dir.path(), 60);
    let options = [
        "--when-green",
        "--urgency",
        "low",
        "--intensity-series",
        series.to_str().unwrap(),
    ];
    let marker = dir.path().join("started");
    let command = vec!["touch".to_string(), marker.to_string_lossy().into_owned()];
    let running = Running::start(&options, &command, std::process::Stdio::null());
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signals the greentop we started.
    unsafe { libc::kill(running.pid(), libc::SIGINT) };
    let out = running.finish(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(130), "{}", out.stderr);
    assert!(
        out.stderr.contains("the command was not started"),
        "{}",
        out.stderr
    );
    assert!(!marker.exists());
}
