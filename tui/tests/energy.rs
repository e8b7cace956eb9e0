//! Energy sources end to end through `greentop --batch --json`: a fixture powercap
//! tree advanced at a known power, the scripted NVML stand-in, and a machine with
//! no counter at all (the estimate, said to be one).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
    assert!(out.status.success(), "greentop failed: {stderr}");
    out
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

fn agent_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent")
        .join(relative)
}

/// Writes `start + rate × elapsed` into each counter file every millisecond until
/// stopped.
fn advance(
    counters: Vec<(PathBuf, u64, f64)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let secs = start.elapsed().as_secs_f64();
            for (path, base, per_s) in &counters {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, format!("{}\n", base + (per_s * secs) as u64)).unwrap();
                std::fs::rename(&tmp, path).unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Watts of the first energy domain of `kind`, over the source's own read interval.
fn watts(system: &Value, kind: &str) -> f64 {
    system["energy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind)
        .and_then(|d| d["watts"].as_f64())
        .unwrap_or_else(|| panic!("no {kind} domain in {system}"))
}

/// A copy of the one-socket powercap fixture, and its package zone's directory.
fn one_socket_fixture() -> (tempfile::TempDir, PathBuf) {
    let sysfs = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(agent_file("tests/fixtures/powercap/one-socket/."))
        .arg(sysfs.path())
        .status()
        .unwrap();
    assert!(status.success());
    let zone = sysfs
        .path()
        .join("devices/virtual/powercap/intel-rapl/intel-rapl:0");
    (sysfs, zone)
}

#[test]
fn powercap_counters_at_a_known_power_reach_the_interval() {
    let (sysfs, zone) = one_socket_fixture();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = advance(
        vec![
            (zone.join("energy_uj"), 1_000_000, 40e6), // 40 W package
            (zone.join("intel-rapl:0:2/energy_uj"), 5_000, 4e6), // 4 W DRAM
        ],
        stop.clone(),
    );
    let root = sysfs.path().to_str().unwrap();
    let out = run(&[
        "--batch",
        "-n",
        "3",
        "-d",
        "0.5",
        "--json",
        "--no-gpu",
        "--sysfs-root",
        root,
        "--source",
        "rapl",
    ]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    for line in &json_lines(&out)[1..] {
        let system = &line["system"];
        let (cpu_w, dram_w) = (watts(system, "package"), watts(system, "dram"));
        assert!(
            (cpu_w - 40.0).abs() < 0.8,
            "package {cpu_w} W, expected 40 W ± 2 %"
        );
        assert!(
            (dram_w - 4.0).abs() < 0.08,
            "DRAM {dram_w} W, expected 4 W ± 2 %"
        );
        assert_eq!(system["cpu_source"], "rapl-powercap");
        assert_eq!(system["gpu_source"], "none");
        let domains = system["energy"].as_array().unwrap();
        assert!(
            domains
                .iter()
                .all(|d| d["measured"] == true && d["source"] == "rapl-powercap")
        );
        assert!(domains.iter().any(|d| d["kind"] == "dram"));
    }
}

#[test]
fn scripted_gpu_reaches_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libnvidia-ml.so.1");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(agent_file("tests/fakes/fake_nvml.c"))
        .output()
        .expect("running cc (a C compiler is required for the GPU tests)");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let script = dir.path().join("fake_nvml.script");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let script = script.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // 300 W: 300 mJ per ms.
                let energy_mj = 1_000 + (start.elapsed().as_secs_f64() * 300_000.0) as u64;
                let text = format!(
                    "device_count=1\ndev0.name=NVIDIA H100 80GB HBM3\ndev0.uuid=GPU-fake-0\n\
                     dev0.energy_mj={energy_mj}\ndev0.power_mw=300000\ndev0.util=90:40\n\
                     dev0.procs=4242:1073741824\n"
                );
                let tmp = script.with_extension("tmp");
                std::fs::write(&tmp, text).unwrap();
                std::fs::rename(&tmp, &script).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let out = run(&[
        "--batch",
        "-n",
        "3",
        "-d",
        "0.5",
        "--json",
        "--nvml-lib",
        lib.to_str().unwrap(),
    ]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    for line in &json_lines(&out)[1..] {
        let system = &line["system"];
        let gpu_w = watts(system, "gpu");
        assert!(
            (gpu_w - 300.0).abs() < 6.0,
            "GPU {gpu_w} W, expected 300 W ± 2 %"
        );
        assert_eq!(system["gpu_source"], "nvml-energy");
        let gpu = &system["gpus"][0];
        assert_eq!(gpu["name"], "NVIDIA H100 80GB HBM3");
        assert_eq!(gpu["processes"][0]["pid"], 4242);
        assert_eq!(gpu["power_w"], 300.0);
    }
}

#[test]
fn no_counter_anywhere_runs_on_the_estimate_and_says_so() {
    let sysfs = tempfile::tempdir().unwrap();
    let root = sysfs.path().to_str().unwrap();
    let out = run(&[
        "--batch",
        "-n",
        "2",
        "-d",
        "0.3",
        "--json",
        "--no-gpu",
        "--sysfs-root",
        root,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CPU energy from estimated-tdp (no energy counter"),
        "{stderr}"
    );
    for line in json_lines(&out) {
        let system = &line["system"];
        assert_eq!(system["cpu_source"], "estimated-tdp");
        assert!(system["cpu_joules"].as_f64().unwrap() > 0.0);
        assert!(
            system["energy"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["measured"] == false)
        );
    }
    let table = run(&[
        "--batch",
        "-n",
        "1",
        "-d",
        "0.2",
        "--no-gpu",
        "--sysfs-root",
        root,
    ]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("(estimated-tdp)"));
}

#[test]
fn list_sources_explains_the_choice() {
    let sysfs = tempfile::tempdir().unwrap();
    let root = sysfs.path().to_str().unwrap();
    // A file that is no library: NVML cannot load, as on a machine without the driver.
    let lib = sysfs.path().join("libnvidia-ml.so.1");
    std::fs::write(&lib, "").unwrap();
    let out = run(&[
        "--list-sources",
        "--sysfs-root",
        root,
        "--nvml-lib",
        lib.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "rapl-powercap  not available: no powercap tree at {root}/class/powercap"
        )),
        "{text}"
    );
    assert!(text.contains("perf-power     not available"), "{text}");
    assert!(text.contains("* estimated-tdp  found"), "{text}");
    assert!(
        text.contains("nvml           not available: no NVIDIA driver"),
        "{text}"
    );
    assert!(
        text.contains("CPU energy: estimated-tdp (no energy counter"),
        "{text}"
    );
    assert!(text.contains("GPU energy: none"), "{text}");
}

#[test]
fn calibrate_measures_idle_power_and_baseline_uses_it() {
    let (sysfs, zone) = one_socket_fixture();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = advance(vec![(zone.join("energy_uj"), 0, 12e6)], stop.clone());
    let config = sysfs.path().join("etc/greentop.toml");
    let (root, config_arg) = (sysfs.path().to_str().unwrap(), config.to_str().unwrap());
    let common = [
        "--no-gpu",
        "--sysfs-root",
        root,
        "--source",
        "rapl",
        "--config",
        config_arg,
    ];
    let out = run(&[&common[..], &["calibrate", "--duration", "1"]].concat());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("package 0: 1"), "{text}");
    let saved = agent::config::Config::load(&config).unwrap();
    let idle_w = saved.calibration.package_idle_w[&0];
    assert!(
        (idle_w - 12.0).abs() < 0.12,
        "calibrated {idle_w} W, expected 12 W ± 1 %"
    );
    let out = run(&[
        &common[..],
        &[
            "--idle", "baseline", "--batch", "-n", "2", "-d", "0.5", "--json",
        ],
    ]
    .concat());
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    for line in json_lines(&out) {
        let system = &line["system"];
        assert_eq!(system["idle_policy"], "baseline");
        // 12 W measured, 12 W calibrated idle: (almost) all of it stays idle.
        let cpu = &system["balance"]["cpu"];
        let (measured, idle) = (
            cpu["measured_j"].as_f64().unwrap(),
            cpu["idle_j"].as_f64().unwrap(),
        );
        assert!(idle >= 0.95 * measured, "idle {idle} of {measured} J");
    }
}
