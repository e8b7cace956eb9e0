//! Helpers for the integration tests: a real eBPF ledger, workloads, and the
//! kernel's own accounting (`/proc/PID/schedstat`) as the oracle.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use agent::probes::ebpf::EbpfLedger;
use agent::probes::loader::{LoadOptions, error_chain};
use agent::probes::{CpuLedger, LedgerSample, ProcessSample};

pub mod benchkit;
pub mod cuda;
pub mod idle;
pub mod pid;
pub mod policy;
pub mod procpoll;
pub mod wakers;

/// Path of the workload generator built with this package: integration tests run
/// from `target/<profile>/deps/`, the binary sits in `target/<profile>/`.
pub fn gt_load() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join("gt-load");
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// Default options on the real /sys and /proc.
pub fn options() -> LoadOptions {
    LoadOptions::new(Path::new("/sys"), Path::new("/proc"))
}

/// Loads the eBPF ledger, or fails the test saying exactly why.
pub fn ledger_with(opts: &LoadOptions) -> EbpfLedger {
    match EbpfLedger::new(opts) {
        Ok(ledger) => ledger,
        Err(err) => panic!(
            "eBPF probes could not load: {} (these tests need root on a kernel with BTF; uid={})",
            error_chain(&err),
            // SAFETY: getuid cannot fail.
            unsafe { libc::getuid() }
        ),
    }
}

pub fn ledger() -> EbpfLedger {
    ledger_with(&options())
}

/// Starts `gt-load ARGS` with stdout captured.
pub fn spawn_load(args: &[&str]) -> Child {
    Command::new(gt_load())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn gt-load")
}

/// The kernel's account of one exited child.
pub struct Oracle {
    /// `/proc/PID/schedstat` of the zombie: on-CPU ns of the main thread.
    pub leader_ns: u64,
    /// getrusage(RUSAGE_CHILDREN) growth over the reap: the whole process, all threads.
    pub process_ns: u64,
    /// Start time from `/proc/PID/stat` (clock ticks since boot, in ns).
    pub start_ns: u64,
}

/// Waits for the child to exit without reaping it, reads its final on-CPU ns from
/// `/proc/PID/schedstat`, then reaps it and measures what getrusage gained.
pub fn wait_with_schedstat(child: &mut Child) -> Oracle {
    oracle_of(child.id(), || {
        let status = child.wait().expect("reap child");
        assert!(status.success(), "gt-load failed: {status}");
    })
}

/// The kernel's account of child `pid` once it has exited; `reap` reaps it.
pub(crate) fn oracle_of(pid: u32, reap: impl FnOnce()) -> Oracle {
    wait_for_zombie(pid);
    let leader_ns = schedstat_ns(&format!("/proc/{pid}/schedstat"));
    let start_ns = agent::probes::procfs::read_stat(std::path::Path::new("/proc"), pid, None)
        .expect("stat of the zombie")
        .start_ns;
    let before = children_cpu_ns();
    reap();
    Oracle {
        leader_ns,
        process_ns: children_cpu_ns() - before,
        start_ns,
    }
}

/// utime + stime of this process's reaped children, in ns (µs resolution).
pub fn children_cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let ns = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// First field of a schedstat file: on-CPU ns.
pub fn schedstat_ns(path: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("bad schedstat in {path}: {text:?}"))
}

/// All samples' rows for one pid, in order.
pub fn rows_for(samples: &[LedgerSample], pid: u32) -> Vec<&ProcessSample> {
    samples
        .iter()
        .flat_map(|s| s.processes.iter())
        .filter(|p| p.tgid == pid)
        .collect()
}

/// Sum of on-CPU ns over rows.
pub fn total_ns(rows: &[&ProcessSample]) -> u64 {
    rows.iter().map(|p| p.on_cpu_ns).sum()
}

/// Takes one sample, failing the test with the error if the tick fails.
pub fn sample(ledger: &mut dyn CpuLedger) -> LedgerSample {
    ledger
        .sample()
        .unwrap_or_else(|e| panic!("ledger tick failed: {}", error_chain(&e)))
}

/// Relative difference |a-b|/b.
pub fn rel_diff(a: u64, b: u64) -> f64 {
    (a as f64 - b as f64).abs() / (b as f64).max(1.0)
}

/// Online CPUs, from sysconf.
pub fn online_cpus() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) as u64 }
}

/// A child that is killed and reaped when dropped, pass or fail.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `/proc/PID/schedstat` on-CPU ns of each pid (single-threaded processes).
pub fn schedstats(pids: &[u32]) -> Vec<u64> {
    pids.iter()
        .map(|pid| schedstat_ns(&format!("/proc/{pid}/schedstat")))
        .collect()
}

/// Takes ledger samples until one is bracketed by two identical schedstat readings of
/// every pid: its flushes then saw exactly those runtimes (the ledger and schedstat
/// read the same kernel figure), whatever delays the test itself suffered. Returns
/// the samples taken (the last is the bracketed one) and the readings.
pub fn sample_at_agreement(
    ledger: &mut dyn CpuLedger,
    pids: &[u32],
) -> (Vec<LedgerSample>, Vec<u64>) {
    let mut samples = Vec::new();
    for _ in 0..1000 {
        let before = schedstats(pids);
        samples.push(sample(ledger));
        if schedstats(pids) == before {
            return (samples, before);
        }
    }
    panic!("the processes never stopped running around a ledger tick");
}

/// Starts a new interval, runs a child that spins for half a second of CPU in long
/// slices, and checks the ledger charges it its schedstat runtime within 2 % (`what`
/// names the ledger in messages). The claim is the clock ledger's, "within 2 % for
/// long slices": the child is SCHED_FIFO, so other work on a loaded machine cannot
/// cut it into the short slices where a clock-timed ledger is documented to be less
/// exact. It is then left a zombie and the ledger ticked until its schedstat reads
/// the same before and after a tick: the last flush and the oracle saw the same
/// runtime, whenever this test got to run. (Read at once, a zombie's schedstat can
/// still miss its exit path: its parent is woken before its final switch.)
pub fn assert_busy_child_measured(ledger: &mut dyn CpuLedger, what: &str) {
    let mut samples = vec![sample(ledger)];
    let mut child = KillOnDrop(spawn_load(&["policy", "fifo", "busy-ms", "500"]));
    let pid = child.0.id();
    wait_for_zombie(pid);
    let (more, oracle) = sample_at_agreement(ledger, &[pid]);
    samples.extend(more);
    let status = child.0.wait().expect("reap gt-load");
    assert!(status.success(), "gt-load failed: {status}");
    let measured = total_ns(&rows_for(&samples, pid));
    assert!(
        rel_diff(measured, oracle[0]) < 0.02,
        "{what} ledger {measured} vs schedstat {}",
        oracle[0]
    );
}

/// Waits, without reaping, until child `pid` has exited.
pub fn wait_for_zombie(pid: u32) {
    // SAFETY: an all-zero siginfo_t is valid; waitid writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; WNOWAIT leaves the zombie for us to read.
    let rc = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
    assert_eq!(rc, 0, "waitid({pid}) failed");
}
