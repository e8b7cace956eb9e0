//! Energy sources end to end through `greentop --batch --json`: fixture powercap
//! counters and the scripted NVML stand-in whose values are computed at each read (so
//! no assertion waits on a writer thread), and a machine with no counter at all (the
//! estimates, said to be ones). Each interval is checked against exactly what the
//! fixture served at greentop's reads; known powers over the whole run.
mod energy_support;

use agent::energy::testkit::{FifoCounter, at_watts};
use energy_support::*;

#[test]
fn powercap_counters_at_a_known_power_reach_the_interval() {
    let sysfs = powercap_copy("one-socket");
    let package = FifoCounter::serve(
        &energy_file(sysfs.path(), "intel-rapl:0"),
        at_watts(1_000_000, 40.0),
    );
    let dram_file = energy_file(sysfs.path(), "intel-rapl:0:2");
    let dram = FifoCounter::serve_with(&package, &dram_file, at_watts(5_000, 4.0));
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
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    for (counter, kind, want_w) in [(&package, "package", 40.0), (&dram, "dram", 4.0)] {
        let deltas = tick_deltas(&counter.served(), lines.len());
        let (mut total_j, mut total_s) = (0.0, 0.0);
        for (k, (line, delta)) in lines.iter().zip(&deltas).enumerate() {
            let system = &line["system"];
            let got_uj = (joules(system, kind) * 1e6).round() as i128;
            assert_eq!(
                got_uj, *delta,
                "{kind} interval {k}: exactly what greentop read"
            );
            total_j += joules(system, kind);
            total_s += seconds(system, kind);
        }
        let watts = total_j / total_s;
        assert!(
            (watts - want_w).abs() < 0.02 * want_w,
            "{kind} {watts} W, expected {want_w} W ± 2 %"
        );
    }
    for line in &lines {
        let system = &line["system"];
        assert_eq!(system["cpu_source"], "rapl-powercap");
        assert_eq!(system["dram_source"], "rapl-powercap");
        assert_eq!(
            (&system["gpu_source"], &system["platform_source"]),
            (&"none".into(), &"none".into())
        );
        let all = system["energy"].as_array().unwrap();
        assert!(
            all.iter()
                .all(|d| d["measured"] == true && d["source"] == "rapl-powercap"),
            "{system}"
        );
        let counters = system["counters"].as_array().unwrap();
        assert_eq!(counters.len(), 2, "package and DRAM are watched: {system}");
        assert!(
            counters
                .iter()
                .all(|c| c["trusted"] == true && c.get("note").is_none())
        );
    }
}

#[test]
fn scripted_gpu_reaches_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libnvidia-ml.so.1");
    let cc = std::process::Command::new("cc")
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
    // 300 W: the stand-in adds 300 000 mW × CLOCK_MONOTONIC seconds at each call.
    std::fs::write(
        dir.path().join("fake_nvml.script"),
        "device_count=1\ndev0.name=NVIDIA H100 80GB HBM3\ndev0.uuid=GPU-fake-0\n\
         dev0.energy_mj=1000\ndev0.energy_rate_mw=300000\ndev0.power_mw=300000\n\
         dev0.util=90:40\ndev0.procs=4242:1073741824\n",
    )
    .unwrap();
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
    let lines = json_lines(&out);
    let served: Vec<u64> = std::fs::read_to_string(dir.path().join("fake_nvml.script.energy"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let deltas = tick_deltas(&served, lines.len());
    let (mut total_j, mut total_s) = (0.0, 0.0);
    for (line, delta_mj) in lines.iter().zip(&deltas) {
        let system = &line["system"];
        assert_eq!((joules(system, "gpu") * 1e3).round() as i128, *delta_mj);
        total_j += joules(system, "gpu");
        total_s += seconds(system, "gpu");
        assert_eq!(system["gpu_source"], "nvml-energy");
        let gpu = &system["gpus"][0];
        assert_eq!(gpu["name"], "NVIDIA H100 80GB HBM3");
        assert_eq!(gpu["processes"][0]["pid"], 4242);
        assert_eq!(gpu["power_w"], 300.0);
    }
    let watts = total_j / total_s;
    assert!(
        (watts - 300.0).abs() < 6.0,
        "GPU {watts} W, expected 300 W ± 2 %"
    );
}

/// Watts of memory CodeCarbon's rule gives this machine: 3 W per 8 GiB of MemTotal.
fn memory_watts() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    0.375 * kib / (1 << 20) as f64
}

#[test]
fn no_counter_anywhere_runs_on_the_estimates_and_says_so() {
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
        assert!(
            system["cpu_joules"].as_f64().unwrap() > 0.0,
            "a labelled, non-zero estimate"
        );
        assert_eq!(system["dram_source"], "estimated-memory");
        let dram_w = joules(system, "dram") / seconds(system, "dram");
        assert!(
            (dram_w - memory_watts()).abs() < 0.01 * memory_watts(),
            "memory {dram_w} W"
        );
        assert_eq!(system["platform_source"], "none");
        assert!(
            system["energy"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["measured"] == false)
        );
        assert!(
            system.get("counters").is_none(),
            "nothing to watch: {system}"
        );
        // The books hold with the memory estimate: Σ processes + idle = estimated.
        let dram = &system["balance"]["dram"];
        let processes: f64 = line["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["dram_joules"].as_f64().unwrap())
            .sum();
        let (measured, idle) = (
            dram["measured_j"].as_f64().unwrap(),
            dram["idle_j"].as_f64().unwrap(),
        );
        assert!((processes + idle - measured).abs() <= 1e-9 * measured.max(1.0));
        assert!(processes > 0.0, "processes that ran hold memory");
    }
    let text = table(root);
    assert!(
        text.contains("(estimated-tdp)") && text.contains("(estimated-memory)"),
        "{text}"
    );
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
    for want in [
        format!("rapl-powercap  not available: no powercap tree at {root}/class/powercap"),
        "perf-power     not available".to_string(),
        "* estimated-tdp  found".to_string(),
        "nvml           not available: no NVIDIA driver".to_string(),
        "CPU energy: estimated-tdp (no energy counter".to_string(),
        "DRAM energy: estimated-memory (installed memory × 3 W per 8 GiB".to_string(),
        "Platform energy: none".to_string(),
        "GPU energy: none".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} not in\n{text}");
    }
}

#[test]
fn calibrate_measures_idle_power_and_baseline_uses_it() {
    let sysfs = powercap_copy("one-socket");
    let package = FifoCounter::serve(
        &energy_file(sysfs.path(), "intel-rapl:0"),
        at_watts(0, 12.0),
    );
    let dram_file = energy_file(sysfs.path(), "intel-rapl:0:2");
    let dram = FifoCounter::serve_with(&package, &dram_file, at_watts(0, 1.0));
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
    let lines = json_lines(&out);
    let deltas = tick_deltas(&package.served(), lines.len());
    for (line, delta) in lines.iter().zip(&deltas) {
        let system = &line["system"];
        assert_eq!(system["idle_policy"], "baseline");
        let cpu = &system["balance"]["cpu"];
        let (measured, idle) = (
            cpu["measured_j"].as_f64().unwrap(),
            cpu["idle_j"].as_f64().unwrap(),
        );
        assert_eq!(
            (measured * 1e6).round() as i128,
            *delta,
            "what greentop read"
        );
        // The calibrated idle power stays idle: exactly min(E, P0 × Δt).
        let want_idle = measured.min(idle_w * line["interval_s"].as_f64().unwrap());
        assert!(
            (idle - want_idle).abs() <= 1e-9 * measured,
            "idle {idle} J, expected {want_idle} J"
        );
        // 12 W measured, 12 W calibrated idle: (almost) all of it stays idle.
        assert!(idle >= 0.95 * measured, "idle {idle} of {measured} J");
    }
    drop(dram);
}
