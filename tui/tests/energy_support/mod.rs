//! Helpers for the energy tests that run the built `greentop`: running it, its JSON
//! lines, and fixture powercap trees whose counters are FIFOs answered at each read.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use agent::energy::testkit::copy_tree;
use serde_json::Value;

pub fn greentop() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop"))
}

/// Runs greentop; it must exit 0 without panicking.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(greentop())
        .args(args)
        .output()
        .expect("run greentop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "greentop panicked: {stderr}");
    assert!(out.status.success(), "greentop failed: {stderr}");
    out
}

/// One interval as the human-readable table, on the sysfs tree at `root`.
pub fn table(root: &str) -> String {
    let out = run(&[
        "--batch",
        "-n",
        "1",
        "-d",
        "0.2",
        "--no-gpu",
        "--sysfs-root",
        root,
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

pub fn agent_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent")
        .join(relative)
}

/// A copy of `agent/tests/fixtures/powercap/<name>` in a fresh directory.
pub fn powercap_copy(name: &str) -> tempfile::TempDir {
    let sysfs = tempfile::tempdir().unwrap();
    copy_tree(
        &agent_file("tests/fixtures/powercap").join(name),
        sysfs.path(),
    );
    sysfs
}

/// The `energy_uj` of a zone reached through `class/powercap/<zone>`.
pub fn energy_file(sysfs: &Path, zone: &str) -> PathBuf {
    let dir = std::fs::canonicalize(sysfs.join("class/powercap").join(zone)).unwrap();
    dir.join("energy_uj")
}

/// The deltas of the last `ticks` reads of a counter that served `served`: what each
/// of greentop's last `ticks` intervals read (the read before them is its baseline).
pub fn tick_deltas(served: &[u64], ticks: usize) -> Vec<i128> {
    assert!(
        served.len() > ticks,
        "{} reads for {ticks} ticks",
        served.len()
    );
    let base = served.len() - ticks - 1;
    served[base..]
        .windows(2)
        .map(|w| i128::from(w[1]) - i128::from(w[0]))
        .collect()
}

/// The energy domains of `kind` in an interval's `system`.
pub fn domains<'a>(system: &'a Value, kind: &str) -> Vec<&'a Value> {
    system["energy"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == kind)
        .collect()
}

/// Joules of the first domain of `kind`.
pub fn joules(system: &Value, kind: &str) -> f64 {
    domains(system, kind)
        .first()
        .and_then(|d| d["joules"].as_f64())
        .unwrap_or_else(|| panic!("no {kind} domain in {system}"))
}

/// The source's own time of the first domain of `kind` (joules / watts).
pub fn seconds(system: &Value, kind: &str) -> f64 {
    let d = domains(system, kind)[0];
    d["joules"].as_f64().unwrap() / d["watts"].as_f64().unwrap()
}
