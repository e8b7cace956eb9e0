//! `greentop report` end to end on the committed sample log: every format, the
//! CodeCarbon columns read by Python's csv module, and clear errors.
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn greentop() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop"))
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures/log/sample-v1.0.gtlog")
}

fn report(args: &[&str]) -> Output {
    let out = Command::new(greentop())
        .arg("report")
        .arg(sample())
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .expect("run greentop report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

const CODECARBON_COLUMNS: &str = "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,\
cpu_power,gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,\
country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,cpu_count,\
cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,on_cloud,pue";

#[test]
fn emissions_csv_reads_in_python_with_codecarbons_columns() {
    let out = report(&["--by", "job", "--format", "emissions-csv"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
    let script = r#"
import csv, sys
rows = list(csv.DictReader(sys.stdin))
print(",".join(rows[0].keys()))
for r in rows:
    assert float(r["duration"]) > 0, r
    assert abs(float(r["energy_consumed"]) - (float(r["cpu_energy"]) + float(r["gpu_energy"]) + float(r["ram_energy"]))) < 1e-12, r
    print(r["project_name"], r["emissions"], r["country_iso_code"], r["tracking_mode"])
"#;
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    python.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let parsed = python.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&parsed.stdout);
    assert!(parsed.status.success(), "python rejected the CSV: {text}");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CODECARBON_COLUMNS));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|r| r.starts_with("slurm:101 ")), "{text}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("(idle) ") && r.ends_with(" FRA machine")),
        "{text}"
    );
    assert!(rows.iter().all(|r| r.contains(" FRA ")), "{text}");
}

#[test]
fn json_and_csv_rows_add_up_to_the_machine() {
    let out = report(&["--by", "user", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["rows"].as_array().unwrap();
    let sum: f64 = rows.iter().map(|r| r["joules"].as_f64().unwrap()).sum();
    let machine = json["machine"]["joules"].as_f64().unwrap();
    assert!(
        (sum - machine).abs() <= 1e-9 * machine,
        "{sum} vs {machine}"
    );
    assert_eq!(json["intervals"], 5);
    let csv = String::from_utf8(report(&["--by", "user", "--format", "csv"]).stdout).unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    let table = String::from_utf8(report(&["--by", "machine"]).stdout).unwrap();
    assert!(table.contains("sample-host"), "{table}");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let out = Command::new(greentop())
        .args(["report", "Cargo.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cargo.toml: not a greentop log"),
        "{stderr}"
    );
    let out = report(&["--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since: 'yesterday'"));
}
