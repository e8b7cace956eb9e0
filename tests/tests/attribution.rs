//! Attribution end to end, as root: the real eBPF ledger, a fixture powercap tree
//! whose counters are FIFOs answered at each read with the energy of a known constant
//! power at that instant, and real busy processes. The oracles are what the fixture
//! actually served at the instants greentop read it (so every interval's split is
//! checked exactly, however late any thread ran) and, over the whole run, the known
//! power × each process's CPU time from the kernel's own schedstat.
use std::path::Path;
use std::time::{Duration, Instant};

use agent::attribution::{Calibration, IdlePolicy};
use agent::config::Config;
use agent::energy::select::{CpuSourceChoice, SourceOptions, Sources};
use agent::energy::testkit::{FifoCounter, at_watts, copy_tree};
use agent::model::Interval;
use agent::pipeline::{Pipeline, Settings};
use greentop_tests::*;

const PACKAGE_W: f64 = 30.0;
const DRAM_W: f64 = 3.0;

/// A copy of the one-socket fixture whose package and DRAM counters run at PACKAGE_W
/// and DRAM_W.
struct PowercapFixture {
    // Fields drop in order: the counters before the directory that holds them.
    package: FifoCounter,
    dram: FifoCounter,
    dir: tempfile::TempDir,
}

impl PowercapFixture {
    fn start() -> PowercapFixture {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../agent/tests/fixtures/powercap/one-socket");
        copy_tree(&fixture, dir.path());
        let zone = dir
            .path()
            .join("devices/virtual/powercap/intel-rapl/intel-rapl:0");
        let package = FifoCounter::serve(&zone.join("energy_uj"), at_watts(0, PACKAGE_W));
        // Read right after the package in each pass: valued at the same instant.
        let dram_file = zone.join("intel-rapl:0:2/energy_uj");
        let dram = FifoCounter::serve_with(&package, &dram_file, at_watts(0, DRAM_W));
        PowercapFixture { package, dram, dir }
    }
}

fn pipeline(fixture: &PowercapFixture, policy: IdlePolicy, calibration: Calibration) -> Pipeline {
    let sources = Sources::open(&SourceOptions {
        sysfs_root: fixture.dir.path().to_path_buf(),
        procfs_root: "/proc".into(),
        cpu: CpuSourceChoice::Auto,
        cpu_tdp_watts: None,
        nvml_lib: None,
        no_gpu: true,
        probe_window: Duration::from_millis(50),
    })
    .expect("fixture powercap opens");
    assert_eq!(
        sources.cpu.name(),
        "rapl-powercap",
        "{}",
        sources.cpu_reason
    );
    let settings = Settings {
        procfs_root: "/proc".into(),
        policy,
        calibration,
        config: Config::default(),
    };
    Pipeline::new(Box::new(ledger()), sources, settings).expect("pipeline")
}

/// A busy child as the kernel saw it.
struct Child {
    pid: u32,
    start_ns: u64,
    /// On-CPU seconds, from its schedstat.
    schedstat_s: f64,
    /// Wall seconds from its spawn to its exit.
    wall_s: f64,
}

/// Runs two busy children for ~1.6 s while ticking every 400 ms; returns the intervals
/// and the children.
fn run_busy_pair(pipeline: &mut Pipeline) -> (Vec<Interval>, Vec<Child>) {
    let mut intervals = vec![pipeline.tick(false).unwrap()];
    let start = Instant::now();
    let mut children = [spawn_load(&["busy", "1.6"]), spawn_load(&["busy", "1.6"])];
    while start.elapsed() < Duration::from_millis(1400) {
        std::thread::sleep(Duration::from_millis(400));
        intervals.push(pipeline.tick(false).unwrap());
    }
    let oracle: Vec<Child> = children
        .iter_mut()
        .map(|c| {
            let kernel = wait_with_schedstat(c);
            Child {
                pid: c.id(),
                start_ns: kernel.start_ns,
                schedstat_s: kernel.leader_ns as f64 / 1e9,
                wall_s: start.elapsed().as_secs_f64(),
            }
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    intervals.push(pipeline.tick(false).unwrap());
    (intervals, oracle)
}

/// Each interval's energy is exactly what the fixture served between greentop's reads:
/// its last reads were the pipeline's baseline and one per tick.
fn assert_energy_is_what_was_served(intervals: &[Interval], fixture: &PowercapFixture) {
    for (counter, kind) in [(&fixture.package, "package"), (&fixture.dram, "dram")] {
        let served = counter.served();
        let ticks = served.len() - intervals.len();
        for (k, interval) in intervals.iter().enumerate() {
            let want_uj = served[ticks + k] - served[ticks + k - 1];
            let domain = interval
                .system
                .energy
                .iter()
                .find(|d| d.kind == kind)
                .unwrap();
            assert_eq!(
                (domain.joules * 1e6).round() as u64,
                want_uj,
                "{kind} interval {k}"
            );
            assert!(domain.measured && domain.source == "rapl-powercap");
        }
    }
}

fn joules_of(intervals: &[Interval], pid: u32) -> (f64, f64, f64) {
    let rows = intervals
        .iter()
        .flat_map(|i| i.processes.iter())
        .filter(|p| p.pid == pid);
    rows.fold((0.0, 0.0, 0.0), |(cpu, dram, s), p| {
        (cpu + p.cpu_joules, dram + p.dram_joules, s + p.cpu_seconds)
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn assert_books_balance(intervals: &[Interval]) {
    for i in intervals {
        let s = &i.system;
        for (name, b) in [("cpu", s.balance.cpu), ("dram", s.balance.dram)] {
            assert!(
                b.residual_j.abs() <= 1e-9 * b.measured_j.max(1.0),
                "{name} residual {}",
                b.residual_j
            );
            let processes: f64 = i
                .processes
                .iter()
                .map(|p| {
                    if name == "cpu" {
                        p.cpu_joules
                    } else {
                        p.dram_joules
                    }
                })
                .sum();
            assert!(
                close(processes + b.idle_j, b.measured_j),
                "{name}: Σ processes {processes} + idle {} != measured {}",
                b.idle_j,
                b.measured_j
            );
        }
        assert!(close(s.cpu_joules, s.balance.cpu.measured_j));
        assert!(close(s.dram_joules, s.balance.dram.measured_j));
    }
}

/// The rows of `child` are that process (its start time, exactly), and the ledger
/// neither lost its CPU time nor invented more than its life allows. (How close the
/// ledger is to schedstat is ledger.rs's job: the kernel takes IRQ and steal time off
/// the task, the ledger charges each slice's wall time, several % for a starved
/// child on a loaded VM.)
fn assert_same_process(intervals: &[Interval], child: &Child, ledger_s: f64) {
    let rows = intervals.iter().flat_map(|i| &i.processes);
    let starts: Vec<u64> = rows
        .filter(|p| p.pid == child.pid)
        .map(|p| p.start_ns)
        .collect();
    assert!(
        !starts.is_empty() && starts.iter().all(|&s| s == child.start_ns),
        "pid {} rows start at {starts:?}, the kernel says {}",
        child.pid,
        child.start_ns
    );
    assert!(
        ledger_s >= 0.95 * child.schedstat_s && ledger_s <= child.wall_s,
        "ledger {ledger_s} s vs schedstat {} s in a life of {} s",
        child.schedstat_s,
        child.wall_s
    );
}

#[test]
fn exclude_charges_cpu_share_of_capacity_times_known_power() {
    let fixture = PowercapFixture::start();
    let mut pipeline = pipeline(&fixture, IdlePolicy::Exclude, Calibration::default());
    let (intervals, oracle) = run_busy_pair(&mut pipeline);
    assert_books_balance(&intervals);
    assert_energy_is_what_was_served(&intervals, &fixture);
    // Every interval: E × c / capacity, for the package and DRAM alike.
    for i in &intervals {
        let s = &i.system;
        let capacity_s = s.cpu_seconds + s.idle_seconds;
        for p in &i.processes {
            let share = p.cpu_seconds / capacity_s.max(s.cpu_seconds);
            assert!(
                close(p.cpu_joules, s.cpu_joules * share),
                "pid {} package",
                p.pid
            );
            assert!(
                close(p.dram_joules, s.dram_joules * share),
                "pid {} DRAM",
                p.pid
            );
        }
    }
    // Over the run: the known power × CPU time / CPUs, whatever else ran.
    let cpus = online_cpus() as f64;
    for child in &oracle {
        let pid = child.pid;
        let (cpu_j, dram_j, cpu_s) = joules_of(&intervals, pid);
        assert_same_process(&intervals, child, cpu_s);
        let want = PACKAGE_W * cpu_s / cpus;
        assert!(
            (cpu_j - want).abs() <= 0.02 * want,
            "pid {pid}: {cpu_j} J, expected {want} J ± 2 %"
        );
        let want_dram = DRAM_W * cpu_s / cpus;
        assert!(
            (dram_j - want_dram).abs() <= 0.02 * want_dram,
            "pid {pid} DRAM: {dram_j} J, expected {want_dram} J ± 2 %"
        );
    }
}

#[test]
fn share_and_baseline_split_the_energy_above_idle_by_busy_time() {
    let calibration = Calibration {
        package_idle_w: [(0, 10.0)].into(),
        ..Calibration::default()
    };
    for (policy, idle_w) in [(IdlePolicy::Share, 0.0), (IdlePolicy::Baseline, 10.0)] {
        let fixture = PowercapFixture::start();
        let mut pipeline = pipeline(&fixture, policy, calibration.clone());
        let (intervals, oracle) = run_busy_pair(&mut pipeline);
        assert_books_balance(&intervals);
        assert_energy_is_what_was_served(&intervals, &fixture);
        // Each interval: (E − P0·Δt) × the process's share of the busy time, exactly.
        for i in &intervals[1..] {
            let shared_j = (i.system.cpu_joules - idle_w * i.interval_s).max(0.0);
            let busy_s: f64 = i.processes.iter().map(|p| p.cpu_seconds).sum();
            for p in &i.processes {
                let want = shared_j * p.cpu_seconds / busy_s;
                assert!(
                    close(p.cpu_joules, want),
                    "{policy:?} pid {}: {} vs {want}",
                    p.pid,
                    p.cpu_joules
                );
            }
            assert!(close(
                i.system.balance.cpu.idle_j,
                i.system.cpu_joules - shared_j
            ));
        }
        // Over the run: the fixture's power, and each child's share of what is above idle.
        let (mut energy_j, mut wall_s) = (0.0, 0.0);
        for i in &intervals[1..] {
            energy_j += i.system.cpu_joules;
            wall_s += i.interval_s;
        }
        assert!(
            (energy_j - PACKAGE_W * wall_s).abs() < 0.02 * energy_j,
            "fixture power: {energy_j} J in {wall_s} s"
        );
        for child in &oracle {
            let pid = &child.pid;
            let mut want = 0.0;
            for i in &intervals[1..] {
                let Some(row) = i.processes.iter().find(|p| p.pid == *pid) else {
                    continue;
                };
                want +=
                    (PACKAGE_W - idle_w) * i.interval_s * row.cpu_seconds / i.system.cpu_seconds;
            }
            let (cpu_j, _, ledger_s) = joules_of(&intervals[1..], *pid);
            assert_same_process(&intervals, child, ledger_s);
            assert!(
                (cpu_j - want).abs() <= 0.02 * want,
                "{policy:?} pid {pid}: {cpu_j} J, expected {want} J ± 2 %"
            );
        }
        let idle: f64 = intervals[1..]
            .iter()
            .map(|i| i.system.balance.cpu.idle_j)
            .sum();
        assert!(
            (idle - idle_w * wall_s).abs() <= 0.02 * (idle_w * wall_s).max(0.05),
            "{policy:?} idle {idle} J"
        );
    }
}
