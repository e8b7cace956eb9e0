//! What `greentop run` reports: repeats with medians and spreads, units, interleaved
//! comparisons with paired ratios, phases from GREENTOP_MARK, and the CodeCarbon CSV
//! read back by Python's csv module. Runs the real binary (as root: eBPF ledger).
mod run_support;

use std::process::Command;

use run_support::*;
use serde_json::Value;

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn runs(report: &Value, command: usize) -> &Vec<Value> {
    report["commands"][command]["runs"].as_array().unwrap()
}

fn figures(runs: &[Value], field: &str) -> Vec<f64> {
    runs.iter().map(|r| f(&r[field])).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

#[test]
fn repeats_report_the_median_and_spread_per_run_and_per_unit() {
    let (out, report) = run_json(
        &["--repeat", "3", "--units", "10"],
        &job_cmd(&["burn", "150"]),
    );
    assert!(out.status.success(), "{}", out.stderr);
    let all = runs(&report, 0);
    assert_eq!(all.len(), 3);
    for run in all {
        let cpu = f(&run["cpu_seconds"]);
        assert!((0.14..0.2).contains(&cpu), "150 ms of CPU per run: {cpu}");
    }
    let summary = &report["commands"][0]["summary"];
    let joules = figures(all, "joules");
    let s = &summary["joules"];
    let (lo, hi) = (
        joules.iter().copied().fold(f64::MAX, f64::min),
        joules.iter().copied().fold(0.0, f64::max),
    );
    assert!(close(f(&s["median"]), median(&joules)), "{s} vs {joules:?}");
    assert!(close(f(&s["min"]), lo) && close(f(&s["max"]), hi), "{s}");
    assert!(
        close(f(&s["spread_pct"]), (hi - lo) / median(&joules) * 100.0),
        "{s}"
    );
    let unit = &summary["per_unit"];
    assert_eq!(f(&unit["units"]), 10.0);
    let per_unit: Vec<f64> = joules.iter().map(|j| j / 10.0).collect();
    assert!(
        close(f(&unit["joules"]["median"]), median(&per_unit)),
        "{unit}"
    );
    let mg: Vec<f64> = figures(all, "gco2")
        .iter()
        .map(|g| g * 1e3 / 10.0)
        .collect();
    assert!(close(f(&unit["mgco2"]["median"]), median(&mg)), "{unit}");
    let walls: Vec<f64> = figures(all, "wall_s").iter().map(|w| w / 10.0).collect();
    assert!(
        close(f(&unit["wall_s"]["median"]), median(&walls)),
        "{unit}"
    );
    assert!(out.stderr.contains("3 runs of"), "{}", out.stderr);
    assert!(out.stderr.contains("per unit (10)"), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("greentop run: run ").count(),
        3,
        "{}",
        out.stderr
    );
}

#[test]
fn compare_runs_interleaved_and_reports_paired_ratios() {
    let mut command = job_cmd(&["burn", "100"]);
    command.push("---".into());
    command.extend(job_cmd(&["burn", "300"]));
    let (out, report) = run_json(&["--compare", "--repeat", "3"], &command);
    assert!(out.status.success(), "{}", out.stderr);
    let (a, b) = (runs(&report, 0), runs(&report, 1));
    assert_eq!((a.len(), b.len()), (3, 3));
    // Rounds rotate: A B, B A, A B.
    let start = |r: &Value| humantime::parse_rfc3339(r["started_at"].as_str().unwrap()).unwrap();
    assert!(
        start(&a[0]) < start(&b[0]) && start(&b[1]) < start(&a[1]) && start(&a[2]) < start(&b[2])
    );
    let rel = &report["comparison"][0];
    assert_eq!(rel["command"], 1);
    assert_eq!(rel["rounds"], 3);
    let paired = |field: &str| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(x, y)| f(&y[field]) / f(&x[field]))
            .collect()
    };
    assert!(
        close(f(&rel["energy_ratio"]["median"]), median(&paired("joules"))),
        "{rel}"
    );
    assert!(
        close(f(&rel["time_ratio"]["median"]), median(&paired("wall_s"))),
        "{rel}"
    );
    // The work differs threefold in CPU time.
    let cpu = median(&paired("cpu_seconds"));
    assert!((2.7..3.3).contains(&cpu), "CPU ratio {cpu}");
    assert!(out.stderr.contains("[2] vs [1]"), "{}", out.stderr);
}

#[test]
fn marks_split_the_run_into_phases() {
    let dir = tempfile::tempdir().unwrap();
    let helper = write_mark_helper(dir.path());
    let script = format!(
        "import socket, sys, time\n\
         sys.path.insert(0, {dir:?})\n\
         from greentop_mark import mark\n\
         def burn(s):\n    t = time.process_time()\n    while time.process_time() - t < s: pass\n\
         mark('load'); burn(0.1); mark('train'); burn(0.4); mark('eval'); burn(0.1)\n\
         mark('train'); burn(0.2)\n\
         with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:\n    s.sendto(b'unacknowledged\\n', __import__('os').environ['GREENTOP_MARK'])\n\
         time.sleep(0.3)\n",
        dir = helper.parent().unwrap().to_str().unwrap()
    );
    let command = vec!["python3".to_string(), "-c".to_string(), script];
    let (out, report) = run_json(&[], &command);
    assert!(out.status.success(), "{}", out.stderr);
    let run = only_run(&report);
    let phases = run["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "(start)",
            "load",
            "train",
            "eval",
            "train",
            "unacknowledged"
        ]
    );
    // Each mark waits for greentop's acknowledgement, so the burns fall in their phase.
    for (phase, want) in phases[1..5].iter().zip([0.1, 0.4, 0.1, 0.2]) {
        let cpu = f(&phase["cpu_seconds"]);
        assert!(
            (cpu - want).abs() <= 0.05 * want + 0.01,
            "{phase}: {cpu} s, burned {want} s"
        );
    }
    let sum = |field: &str| phases.iter().map(|p| f(&p[field])).sum::<f64>();
    assert!((sum("joules") - f(&run["joules"])).abs() <= 1e-9 * f(&run["joules"]));
    assert!((sum("cpu_seconds") - f(&run["cpu_seconds"])).abs() <= 1e-9);
    assert!(out.stderr.contains("train ×2"), "{}", out.stderr);
}

/// CodeCarbon 2.8's emissions.csv header (codecarbon/output_methods/emissions_data.py).
const CODECARBON_HEADER: [&str; 32] = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "on_cloud",
    "pue",
];

/// `{"header": [...], "rows": [{column: value}]}` as Python's csv.DictReader sees it.
fn read_with_pythons_csv(path: &std::path::Path) -> Value {
    let script = "import csv, json, sys\n\
        r = csv.DictReader(open(sys.argv[1], newline=''))\n\
        rows = list(r)\n\
        print(json.dumps({'header': r.fieldnames, 'rows': rows}))";
    let read = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&read.stderr);
    assert!(read.status.success(), "{stderr}");
    serde_json::from_slice(&read.stdout).unwrap()
}

#[test]
fn the_emissions_csv_reads_back_with_pythons_csv_module() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("emissions.csv");
    let mut reports = Vec::new();
    for _ in 0..2 {
        let options = [
            "--emissions-csv",
            csv.to_str().unwrap(),
            "--label",
            "demo, v2",
            "--intensity",
            "100",
            "--region",
            "FR",
        ];
        let (out, report) = run_json(&options, &job_cmd(&["burn", "100"]));
        assert!(out.status.success(), "{}", out.stderr);
        reports.push(report);
    }
    let parsed = read_with_pythons_csv(&csv);
    let header: Vec<&str> = parsed["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(header, CODECARBON_HEADER);
    let rows = parsed["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "one row per run, appended");
    let num = |row: &Value, k: &str| row[k].as_str().unwrap().parse::<f64>().unwrap();
    for (row, report) in rows.iter().zip(&reports) {
        let run = only_run(report);
        assert_eq!(row["project_name"], "demo, v2");
        assert!(
            close(num(row, "energy_consumed") * 3.6e6, f(&run["joules"])),
            "{row}"
        );
        assert!(
            close(num(row, "cpu_energy") * 3.6e6, f(&run["cpu_joules"])),
            "{row}"
        );
        assert!(close(num(row, "emissions") * 1e3, f(&run["gco2"])), "{row}");
        assert!(close(num(row, "duration"), f(&run["wall_s"])), "{row}");
        assert!(close(
            num(row, "emissions_rate"),
            num(row, "emissions") / num(row, "duration")
        ));
        assert_eq!(row["experiment_id"], report["experiment_id"]);
        assert_eq!(
            (
                row["country_iso_code"].as_str(),
                row["country_name"].as_str()
            ),
            (Some("FRA"), Some("France"))
        );
        assert_eq!(
            (row["tracking_mode"].as_str(), row["on_cloud"].as_str()),
            (Some("process"), Some("N"))
        );
        assert_eq!(num(row, "pue"), 1.0);
        assert!(row["os"].as_str().unwrap().starts_with("Linux-"), "{row}");
    }
    assert_ne!(rows[0]["run_id"], rows[1]["run_id"]);
}
