//! The runtime ledger (slices from `se.sum_exec_runtime`) against the kernel's own
//! accounting, for real, as root: exact for short slices, RT and deadline tasks,
//! exec from a thread, the tick flush, and the clock fallback when BTF lacks the field.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use agent::probes::CpuLedger;
use agent::probes::loader::{LoadOptions, SliceSource};
use greentop_tests::*;

/// Ledger on-CPU ns per tgid over `samples`.
fn totals(samples: &[agent::probes::LedgerSample]) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    for p in samples.iter().flat_map(|s| s.processes.iter()) {
        *out.entry(p.tgid).or_default() += p.on_cpu_ns;
    }
    out
}

/// 500 processes each waking 10×/s for ~10 µs, for 5 s: every process's ledger CPU
/// against its schedstat growth. The oracle is read while every worker is blocked,
/// around a ledger tick whose flush saw the same figures (`sample_at_agreement`), so
/// nothing depends on when this test itself gets to run.
#[test]
fn five_hundred_short_sleepers_match_schedstat() {
    let mut ledger = ledger();
    assert_eq!(
        ledger.slice_source(),
        SliceSource::SchedRuntime,
        "runtime ledger on this kernel: {:?}",
        ledger.fidelity().note()
    );
    let mut run = GatedWakers::start(500);
    let pids = run.pids.clone();
    let (_, start) = sample_at_agreement(&mut ledger, &pids);
    let mut samples = run.go_and_tick(&mut ledger);
    let (last, end) = sample_at_agreement(&mut ledger, &pids);
    samples.extend(last);
    run.exit();
    let ledger_ns = totals(&samples);
    let (mut worst, mut sum_ledger, mut sum_oracle) = (0.0f64, 0u64, 0u64);
    for (i, pid) in pids.iter().enumerate() {
        let oracle = end[i] - start[i];
        let measured = ledger_ns.get(pid).copied().unwrap_or(0);
        assert!(oracle >= 400_000, "pid {pid} ran only {oracle} ns");
        let err = rel_diff(measured, oracle);
        assert!(
            err <= 0.01,
            "pid {pid}: ledger {measured} ns vs schedstat {oracle} ns"
        );
        worst = worst.max(err);
        sum_ledger += measured;
        sum_oracle += oracle;
    }
    let total_err = rel_diff(sum_ledger, sum_oracle);
    println!(
        "500 wakers: ledger {sum_ledger} ns vs schedstat {sum_oracle} ns (total error {:.4} %, \
         worst process {:.4} %, {} ticks)",
        total_err * 100.0,
        worst * 100.0,
        samples.len()
    );
    assert!(
        total_err <= 0.005,
        "total off by {:.3} %",
        total_err * 100.0
    );
}

/// `gt-load wakers N 5 10 10 --gated`, driven over its stdin and stdout.
struct GatedWakers {
    _child: KillOnDrop,
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    pids: Vec<u32>,
}

impl GatedWakers {
    /// Starts the workers (blocked until `go`) and reads their pids.
    fn start(processes: usize) -> GatedWakers {
        let mut child = KillOnDrop(
            Command::new(gt_load())
                .args(["wakers", &processes.to_string(), "5", "10", "10", "--gated"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn gt-load wakers"),
        );
        let stdin = child.0.stdin.take().expect("stdin");
        let lines = spawn_line_reader(child.0.stdout.take().expect("stdout"));
        let first = lines.recv().expect("pids line");
        let pids: Vec<u32> = first
            .strip_prefix("pids ")
            .unwrap_or_else(|| panic!("gt-load said {first:?}"))
            .split_whitespace()
            .map(|p| p.parse().expect("pid"))
            .collect();
        assert_eq!(pids.len(), processes);
        GatedWakers {
            _child: child,
            stdin,
            lines,
            pids,
        }
    }

    /// Lets the workers run and ticks as the agent would until every one is done (a
    /// hang guard, not a timing assumption: nothing depends on when the ticks fell).
    fn go_and_tick(&mut self, ledger: &mut dyn CpuLedger) -> Vec<agent::probes::LedgerSample> {
        writeln!(self.stdin, "go").expect("go");
        let mut samples = Vec::new();
        loop {
            match self.lines.try_recv() {
                Ok(line) if line == "done" => return samples,
                Ok(line) => panic!("gt-load said {line:?}"),
                Err(mpsc::TryRecvError::Disconnected) => panic!("gt-load wakers ended early"),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            assert!(
                samples.len() < 240,
                "the workers did not finish in 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(500));
            samples.push(sample(ledger));
        }
    }

    /// Lets the (blocked) workers exit.
    fn exit(&mut self) {
        writeln!(self.stdin, "exit").expect("exit");
    }
}

fn spawn_line_reader(out: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// A thread that spins without switching is charged at every tick. Per interval, the
/// ledger must lie between schedstat's growth from the end of the previous tick to
/// the start of this one and its growth from the start of the previous to the end of
/// this one: exact, since both read the runtime the kernel last brought up to date.
#[test]
fn a_thread_that_holds_its_cpu_is_charged_at_every_tick() {
    let mut ledger = ledger();
    let child = KillOnDrop(spawn_load(&["busy", "4"]));
    let stat = format!("/proc/{}/schedstat", child.0.id());
    let pid = child.0.id();
    let mut bounds = Vec::new();
    for _ in 0..9 {
        let before = schedstat_ns(&stat);
        let s = sample(&mut ledger);
        let after = schedstat_ns(&stat);
        let charged = total_ns(&rows_for(std::slice::from_ref(&s), pid));
        assert!(
            s.health.flushes >= online_cpus(),
            "every CPU flushed: {:?}",
            s.health
        );
        bounds.push((before, charged, after));
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut ran = 0;
    for (k, pair) in bounds.windows(2).enumerate() {
        let ((before0, _, after0), (before1, charged, after1)) = (pair[0], pair[1]);
        let (low, high) = (before1.saturating_sub(after0), after1 - before0);
        assert!(
            (low..=high).contains(&charged),
            "interval {k}: charged {charged} ns, schedstat says {low}..={high}"
        );
        if low > 0 {
            ran += 1;
            assert!(charged > 0, "interval {k}: ran {low} ns, charged nothing");
        }
    }
    assert!(ran >= 4, "the busy thread ran in only {ran} of 8 intervals");
}

/// SCHED_FIFO and SCHED_DEADLINE tasks keep their runtime in the same field: charged
/// exactly what the kernel charged them (read from the zombie once its last switch is in).
#[test]
fn real_time_and_deadline_tasks_are_charged_their_runtime() {
    for policy in ["fifo", "deadline"] {
        let mut ledger = ledger();
        let mut samples = vec![sample(&mut ledger)];
        let mut child = spawn_load(&["policy", policy, "busy-ms", "150"]);
        let pid = child.id();
        let final_ns = final_runtime_agreement(&mut ledger, &mut child, &mut samples);
        let measured = total_ns(&rows_for(&samples, pid));
        assert_eq!(measured, final_ns, "{policy}: ledger vs schedstat");
        assert!(final_ns >= 150_000_000, "{policy}: ran {final_ns} ns");
    }
}

/// Waits for the child to exit (unreaped), then ticks until the ledger's total for it
/// equals its schedstat: the zombie's last slice is charged at its final switch, just
/// after its parent is woken. Reaps it; returns the final runtime.
fn final_runtime_agreement(
    ledger: &mut dyn CpuLedger,
    child: &mut std::process::Child,
    samples: &mut Vec<agent::probes::LedgerSample>,
) -> u64 {
    let pid = child.id();
    wait_for_zombie(pid);
    let stat = format!("/proc/{pid}/schedstat");
    for _ in 0..500 {
        samples.push(sample(ledger));
        let oracle = schedstat_ns(&stat);
        if total_ns(&rows_for(samples, pid)) == oracle {
            let status = child.wait().expect("reap");
            assert!(status.success(), "gt-load failed: {status}");
            return oracle;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (measured, oracle) = (total_ns(&rows_for(samples, pid)), schedstat_ns(&stat));
    let _ = child.wait();
    panic!("ledger {measured} ns never reached schedstat {oracle} ns");
}

/// A thread that execs takes over the leader's pid mid-slice; the slice is still its
/// own (the per-CPU slot follows the task, not the pid).
#[test]
fn exec_from_a_thread_keeps_its_slice() {
    let mut ledger = ledger();
    let mut samples = vec![sample(&mut ledger)];
    let mut child = spawn_load(&["thread-exec", "200"]);
    let pid = child.id();
    let oracle = wait_with_schedstat(&mut child);
    samples.push(sample(&mut ledger));
    let measured = total_ns(&rows_for(&samples, pid));
    assert!(
        oracle.process_ns >= 400_000_000,
        "spun twice 200 ms: {}",
        oracle.process_ns
    );
    assert!(
        rel_diff(measured, oracle.process_ns) < 0.01,
        "ledger {measured} ns vs getrusage {} ns",
        oracle.process_ns
    );
}

/// A kernel whose BTF has no `sched_entity.sum_exec_runtime`: the ledger falls back to
/// the clock, says why, and still measures. The fixture is this kernel's BTF with the
/// member renamed, so type ids (and tp_btf attachment) are unchanged.
#[test]
fn btf_without_the_runtime_field_falls_back_to_the_clock_and_says_so() {
    let sysfs = tempfile::tempdir().unwrap();
    let btf_dir = sysfs.path().join("kernel/btf");
    std::fs::create_dir_all(&btf_dir).unwrap();
    let mut blob = std::fs::read("/sys/kernel/btf/vmlinux").expect("kernel BTF");
    let (from, to) = (b"sum_exec_runtime\0", b"sum_exec_runtimX\0");
    let mut renamed = 0;
    for at in 0..blob.len() - from.len() {
        if &blob[at..at + from.len()] == from {
            blob[at..at + to.len()].copy_from_slice(to);
            renamed += 1;
        }
    }
    assert!(renamed > 0, "the kernel's BTF names sum_exec_runtime");
    std::fs::write(btf_dir.join("vmlinux"), &blob).unwrap();
    let opts = LoadOptions::new(sysfs.path(), std::path::Path::new("/proc"));
    let mut ledger = ledger_with(&opts);
    let note = ledger.fidelity().note().unwrap_or_default();
    assert_eq!(ledger.fidelity().label(), "ebpf-tp_btf");
    assert_eq!(ledger.slice_source(), SliceSource::Clock);
    assert!(
        note.contains("timed by the clock") && note.contains("has no member `sum_exec_runtime`"),
        "note says why: {note}"
    );
    assert_busy_child_measured(&mut ledger, "clock");
}
