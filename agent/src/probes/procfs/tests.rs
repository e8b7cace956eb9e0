//! Tests of the `/proc` ledger on fixture trees, and one on the real `/proc`.
use std::fs;
use std::path::Path;
use std::time::Duration;

use super::*;

/// Start time (in ticks) of processes older than any ledger.
const OLD_TICKS: u64 = 100;

/// A fixture `/proc` in a temporary directory.
struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    fn new() -> Self {
        let proc = FakeProc {
            dir: tempfile::tempdir().unwrap(),
        };
        proc.cpus(&[[0; 8]; 4]);
        proc
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes process `tgid` (stat, status, cgroup) with no threads yet.
    fn process(&self, tgid: u32, comm: &str, start_ticks: u64) {
        let dir = self.root().join(tgid.to_string());
        fs::create_dir_all(dir.join("task")).unwrap();
        fs::write(dir.join("stat"), stat_line(tgid, comm, start_ticks, 0)).unwrap();
        fs::write(
            dir.join("status"),
            "Name:\tx\nUid:\t1000\t1000\t1000\t1000\n",
        )
        .unwrap();
        fs::write(dir.join("cgroup"), "0::/user.slice/app.scope\n").unwrap();
    }

    fn thread(&self, tgid: u32, tid: u32, start_ticks: u64, cpu: u32, schedstat_ns: u64) {
        let dir = self.root().join(format!("{tgid}/task/{tid}"));
        fs::create_dir_all(&dir).unwrap();
        let comm = format!("t{tid}");
        fs::write(dir.join("stat"), stat_line(tid, &comm, start_ticks, cpu)).unwrap();
        fs::write(dir.join("schedstat"), format!("{schedstat_ns} 99 3\n")).unwrap();
    }

    fn schedstat(&self, tgid: u32, tid: u32, text: &str) {
        let path = self.root().join(format!("{tgid}/task/{tid}/schedstat"));
        fs::write(path, text).unwrap();
    }

    fn remove(&self, tgid: u32) {
        fs::remove_dir_all(self.root().join(tgid.to_string())).unwrap();
    }

    /// Writes `/proc/stat` with `user nice system idle iowait irq softirq steal` per CPU.
    fn cpus(&self, cpus: &[[u64; 8]]) {
        let mut text = "cpu  9 9 9 9 9 9 9 9 0 0\n".to_string();
        for (cpu, t) in cpus.iter().enumerate() {
            let fields: Vec<String> = t.iter().map(u64::to_string).collect();
            text += &format!("cpu{cpu} {} 0 0\n", fields.join(" "));
        }
        text += "intr 1 2 3\nctxt 5\n";
        fs::write(self.root().join("stat"), text).unwrap();
    }

    fn ledger(&self) -> ProcLedger {
        let topology = Topology {
            package_of_cpu: vec![0, 0, 1, 1],
            packages: vec![0, 1],
            notes: Vec::new(),
        };
        ProcLedger::new(self.root(), topology, "test".to_string()).unwrap()
    }
}

fn stat_line(pid: u32, comm: &str, start_ticks: u64, cpu: u32) -> String {
    let mut fields = vec!["0".to_string(); 50];
    fields[0] = "S".into();
    fields[1] = "1".into();
    fields[19] = start_ticks.to_string();
    fields[36] = cpu.to_string();
    format!("{pid} ({comm}) {}\n", fields.join(" "))
}

/// A start time (in ticks) after any ledger created by now.
fn future_ticks() -> u64 {
    boottime_ns() / ns_per_clock_tick() + 1_000
}

/// `(tgid, exited, on_cpu_ns, by package, [(tid, on_cpu_ns, exited)])` of a sample.
type Summary = (u32, bool, u64, Vec<u64>, Vec<(u32, u64, bool)>);

fn summary(sample: &LedgerSample) -> Vec<Summary> {
    let mut out: Vec<Summary> = (sample.processes.iter())
        .map(|p| {
            let threads = p
                .threads
                .iter()
                .map(|t| (t.tid, t.on_cpu_ns, t.exited))
                .collect();
            (
                p.tgid,
                p.exited,
                p.on_cpu_ns,
                p.on_cpu_ns_by_package.clone(),
                threads,
            )
        })
        .collect();
    out.sort_by_key(|s| (s.0, s.1));
    out
}

/// Process 100 (one thread, odd comm) and 200 (three threads on both packages).
fn two_processes() -> FakeProc {
    let proc = FakeProc::new();
    proc.process(100, "my (weird) name)", OLD_TICKS);
    proc.thread(100, 100, OLD_TICKS, 0, 5_000_000);
    proc.process(200, "worker", OLD_TICKS);
    for (tid, cpu) in [(200, 1), (201, 2), (202, 3)] {
        proc.thread(200, tid, OLD_TICKS, cpu, 1_000);
    }
    proc
}

#[test]
fn deltas_are_exact_per_thread_and_summed_per_process() {
    let proc = two_processes();
    let mut ledger = proc.ledger();
    assert_eq!(
        ledger.fidelity(),
        &Fidelity::Procfs {
            reason: "test".into()
        }
    );
    proc.thread(100, 100, OLD_TICKS, 0, 6_500_000);
    proc.thread(200, 200, OLD_TICKS, 1, 1_007);
    proc.thread(200, 201, OLD_TICKS, 2, 31_000);
    proc.thread(200, 202, OLD_TICKS, 3, 1_000);
    let sample = ledger.sample().unwrap();
    let want: Vec<Summary> = vec![
        (
            100,
            false,
            1_500_000,
            vec![1_500_000, 0],
            vec![(100, 1_500_000, false)],
        ),
        (
            200,
            false,
            30_007,
            vec![7, 30_000],
            vec![(200, 7, false), (201, 30_000, false)],
        ),
    ];
    assert_eq!(summary(&sample), want);
    let weird = sample.processes.iter().find(|p| p.tgid == 100).unwrap();
    let identity = (
        weird.comm.as_str(),
        weird.uid,
        weird.cgroup.as_str(),
        weird.ppid,
    );
    assert_eq!(
        identity,
        ("my (weird) name)", 1000, "/user.slice/app.scope", 1)
    );
    assert_eq!(weird.start_ns, OLD_TICKS * ns_per_clock_tick());
    assert_eq!(weird.threads[0].comm, "t100");
    assert_eq!(sample.health, LedgerHealth::default());
    let idle = ledger.sample().unwrap();
    assert!(idle.processes.is_empty(), "{:?}", idle.processes);
}

#[test]
fn cpu_times_are_deltas_of_proc_stat() {
    let proc = two_processes();
    let mut ledger = proc.ledger();
    // CPU 3 went offline: it is absent from /proc/stat.
    proc.cpus(&[[10, 1, 2, 50, 5, 1, 1, 1], [0; 8], [0, 0, 0, 7, 0, 0, 0, 0]]);
    let sample = ledger.sample().unwrap();
    let tick = ns_per_clock_tick();
    let cpu = |busy: u64, idle: u64| CpuTime {
        busy_ns: busy * tick,
        idle_ns: idle * tick,
    };
    assert_eq!(
        sample.cpus,
        vec![cpu(16, 55), cpu(0, 0), cpu(0, 7), cpu(0, 0)]
    );
    assert_eq!(sample.packages, vec![0, 1]);
    assert_eq!(sample.cpu_package, vec![0, 0, 1, 1]);
    assert_eq!(ledger.sample().unwrap().cpus, vec![CpuTime::default(); 4]);
}

#[test]
fn exited_processes_and_threads_are_reported_once() {
    let proc = two_processes();
    let mut ledger = proc.ledger();
    proc.remove(100);
    fs::remove_dir_all(proc.root().join("200/task/202")).unwrap();
    proc.thread(200, 201, OLD_TICKS, 0, 2_000);
    let want: Vec<Summary> = vec![
        (100, true, 0, vec![0, 0], vec![]),
        (
            200,
            false,
            1_000,
            vec![1_000, 0],
            vec![(201, 1_000, false), (202, 0, true)],
        ),
    ];
    assert_eq!(summary(&ledger.sample().unwrap()), want);
    assert_eq!(summary(&ledger.sample().unwrap()), vec![]);
}

#[test]
fn first_sightings_count_fully_only_if_started_after_creation() {
    let proc = two_processes();
    let mut ledger = proc.ledger();
    let later = future_ticks();
    proc.process(300, "new", later);
    proc.thread(300, 300, later, 0, 4_000);
    proc.thread(300, 301, later, 3, 6_000);
    // New threads of an old process: one as old as the ledger, one younger.
    proc.thread(200, 203, OLD_TICKS, 0, 9_999_999);
    proc.thread(200, 204, later, 0, 8_000);
    let want: Vec<Summary> = vec![
        (200, false, 8_000, vec![8_000, 0], vec![(204, 8_000, false)]),
        (
            300,
            false,
            10_000,
            vec![4_000, 6_000],
            vec![(300, 4_000, false), (301, 6_000, false)],
        ),
    ];
    assert_eq!(summary(&ledger.sample().unwrap()), want);
}

#[test]
fn a_reused_pid_is_a_new_process() {
    let proc = two_processes();
    let mut ledger = proc.ledger();
    proc.remove(100);
    let later = future_ticks();
    proc.process(100, "reborn", later);
    proc.thread(100, 100, later, 2, 3_000);
    let sample = ledger.sample().unwrap();
    let want: Vec<Summary> = vec![
        (100, false, 3_000, vec![0, 3_000], vec![(100, 3_000, false)]),
        (100, true, 0, vec![0, 0], vec![]),
    ];
    assert_eq!(summary(&sample), want);
    let starts: Vec<(bool, u64, &str)> = (sample.processes.iter())
        .map(|p| (p.exited, p.start_ns / ns_per_clock_tick(), p.comm.as_str()))
        .collect();
    assert!(starts.contains(&(false, later, "reborn")), "{starts:?}");
    assert!(
        starts.contains(&(true, OLD_TICKS, "my (weird) name)")),
        "{starts:?}"
    );
}

#[test]
fn garbage_schedstat_skips_only_that_thread() {
    let proc = two_processes();
    let mut ledger = proc.ledger();
    let cases = [
        ("garbage\n", None),
        ("", None),
        ("41000 1 1\n", Some(40_000)),
    ];
    for (tick, (text, want_201)) in (1..).zip(cases) {
        proc.schedstat(200, 201, text);
        // Thread 200 runs 5 ns every tick, so process 200 is always reported.
        proc.thread(200, 200, OLD_TICKS, 1, 1_000 + 5 * tick);
        let sample = ledger.sample().unwrap();
        let p200 = sample.processes.iter().find(|p| p.tgid == 200).unwrap();
        let t201 = p200.threads.iter().find(|t| t.tid == 201);
        assert_eq!(t201.map(|t| t.on_cpu_ns), want_201, "{text:?}");
        assert_eq!(p200.on_cpu_ns, 5 + want_201.unwrap_or(0), "{text:?}");
        assert!(p200.threads.iter().all(|t| !t.exited), "{text:?}");
    }
}

#[test]
fn unreadable_proc_stat_is_an_error_naming_the_path() {
    let proc = two_processes();
    let mut ledger = proc.ledger();
    fs::remove_file(proc.root().join("stat")).unwrap();
    let err = ledger.sample().unwrap_err().to_string();
    assert!(
        err.contains(&proc.root().join("stat").display().to_string()),
        "{err}"
    );
    let topology = Topology::single_package(1);
    let err = ProcLedger::new(proc.root(), topology, String::new())
        .err()
        .unwrap();
    assert!(err.to_string().contains("stat"), "{err}");
}

#[test]
fn public_readers_for_the_process_table() {
    let proc = two_processes();
    let stat = read_stat(proc.root(), 200, Some(202)).unwrap();
    let want = TaskStat {
        comm: "t202".into(),
        ppid: 1,
        start_ns: OLD_TICKS * ns_per_clock_tick(),
        processor: 3,
    };
    assert_eq!(stat, want);
    assert_eq!(
        read_stat(proc.root(), 100, None).unwrap().comm,
        "my (weird) name)"
    );
    assert_eq!(read_uid(proc.root(), 100).unwrap(), 1000);
    assert_eq!(
        read_cgroup(proc.root(), 100).unwrap(),
        "/user.slice/app.scope"
    );
    let missing = read_stat(proc.root(), 999, None).unwrap_err();
    assert!(vanished(&missing), "{missing}");
}

/// A busy child shows up with the CPU time it burned between two samples: between its
/// schedstat growth from just after the first sample to just before the second and
/// its growth from just before the first to just after the second, however little
/// CPU a loaded machine gave it.
#[test]
fn live_proc_sees_a_busy_child() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let stat = format!("/proc/{}/schedstat", child.id());
    let runtime_ns = || -> u64 {
        let text = fs::read_to_string(&stat).unwrap();
        text.split_whitespace().next().unwrap().parse().unwrap()
    };
    let root = Path::new("/proc");
    let topology = Topology::single_package(64);
    let mut bounds = Vec::new();
    let mut timed_sample = |ledger: &mut ProcLedger| {
        let before = runtime_ns();
        let sample = ledger.sample();
        bounds.push((before, runtime_ns()));
        sample
    };
    let measured =
        ProcLedger::new(root, topology, "live test".to_string()).and_then(|mut ledger| {
            std::thread::sleep(Duration::from_millis(100));
            timed_sample(&mut ledger)?;
            std::thread::sleep(Duration::from_millis(500));
            timed_sample(&mut ledger)
        });
    child.kill().unwrap();
    child.wait().unwrap();
    let sample = measured.unwrap();
    let found = sample.processes.iter().find(|p| p.tgid == child.id());
    let on_cpu_ns = found.map(|p| p.on_cpu_ns).unwrap_or(0);
    let ((before1, after1), (before2, after2)) = (bounds[0], bounds[1]);
    assert!(before2 > after1, "the child ran between the samples");
    assert!(
        (before2 - after1..=after2 - before1).contains(&on_cpu_ns),
        "{on_cpu_ns} ns, schedstat says {}..={}",
        before2 - after1,
        after2 - before1
    );
    let interval_ms = sample.interval.as_millis();
    assert!(interval_ms >= 500, "{interval_ms} ms");
}
