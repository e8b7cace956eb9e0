//! The unprivileged, lower-fidelity ledger: per-thread CPU time sampled from `/proc`.
//!
//! Exact for what lives across two ticks (`schedstat` is in ns), blind to what starts
//! and ends between them, and per-package attribution uses each thread's last CPU.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod parse;

use parse::{
    CpuTicks, boottime_ns, garbage, list_numeric, parse_cgroup, parse_cpu_line, parse_schedstat,
    parse_stat, parse_uid, read_child, read_into, vanished,
};
pub use parse::{TaskStat, ns_per_clock_tick, read_cgroup, read_stat, read_uid};

use super::{
    CpuLedger, CpuTime, Fidelity, LedgerError, LedgerHealth, LedgerSample, ProcessSample,
    ThreadSample,
};
use crate::topology::Topology;

/// CPU numbers in `/proc/stat` above this are garbage, not a reason to allocate.
const MAX_CPUS: usize = 1 << 16;

/// Samples `/proc` every tick; see the module doc for what it misses.
pub struct ProcLedger {
    root: PathBuf,
    topology: Topology,
    fidelity: Fidelity,
    /// CLOCK_BOOTTIME at creation: threads started later are counted from zero.
    created_boot_ns: u64,
    ns_per_tick: u64,
    last_sample: Instant,
    tick: u64,
    cpu_ticks: Vec<CpuTicks>,
    processes: HashMap<u32, ProcState>,
    /// Reused for every file read and directory listing of a tick.
    buf: Vec<u8>,
    pids: Vec<u32>,
    tids: Vec<u32>,
}

/// A process as last seen; keyed by tgid, identified by tgid and `start_ticks`.
struct ProcState {
    start_ticks: u64,
    ppid: u32,
    uid: u32,
    comm: String,
    cgroup: String,
    threads: HashMap<u32, ThreadState>,
    seen_tick: u64,
}

struct ThreadState {
    start_ticks: u64,
    schedstat_ns: u64,
    comm: String,
    seen_tick: u64,
}

/// What one tick's scan needs besides the process being scanned.
struct TickCtx<'a> {
    buf: &'a mut Vec<u8>,
    topology: &'a Topology,
    created_boot_ns: u64,
    ns_per_tick: u64,
    tick: u64,
}

impl ProcLedger {
    /// Creates the ledger and takes the baseline: CPU time used before now is not
    /// reported. Fails if `<procfs_root>/stat` or the root itself cannot be read.
    pub fn new(
        procfs_root: &Path,
        topology: Topology,
        reason: String,
    ) -> Result<ProcLedger, LedgerError> {
        let mut ledger = ProcLedger {
            root: procfs_root.to_path_buf(),
            cpu_ticks: vec![CpuTicks::default(); topology.package_of_cpu.len()],
            topology,
            fidelity: Fidelity::Procfs { reason },
            created_boot_ns: boottime_ns(),
            ns_per_tick: ns_per_clock_tick(),
            last_sample: Instant::now(),
            tick: 0,
            processes: HashMap::new(),
            buf: Vec::with_capacity(4096),
            pids: Vec::new(),
            tids: Vec::new(),
        };
        ledger.sample()?;
        Ok(ledger)
    }

    fn read_cpu_times(&mut self) -> Result<Vec<CpuTime>, LedgerError> {
        let path = self.root.join("stat");
        read_into(&path, &mut self.buf).map_err(|source| io_error(&path, source))?;
        let mut cpus = vec![CpuTime::default(); self.cpu_ticks.len()];
        for line in self.buf.split(|&b| b == b'\n') {
            let Some((cpu, now)) = parse_cpu_line(line).filter(|(cpu, _)| *cpu < MAX_CPUS) else {
                continue;
            };
            if cpu >= self.cpu_ticks.len() {
                self.cpu_ticks.resize(cpu + 1, CpuTicks::default());
                cpus.resize(cpu + 1, CpuTime::default());
            }
            let prev = std::mem::replace(&mut self.cpu_ticks[cpu], now);
            cpus[cpu] = CpuTime {
                busy_ns: now
                    .busy
                    .saturating_sub(prev.busy)
                    .saturating_mul(self.ns_per_tick),
                idle_ns: now
                    .idle
                    .saturating_sub(prev.idle)
                    .saturating_mul(self.ns_per_tick),
            };
        }
        Ok(cpus)
    }

    fn scan_process(&mut self, tgid: u32, out: &mut Vec<ProcessSample>) {
        match self.try_scan_process(tgid, out) {
            Ok(()) => {}
            Err(err) if vanished(&err) => {}
            Err(err) => tracing::debug!(tgid, %err, "skipping process in /proc scan"),
        }
    }

    fn try_scan_process(&mut self, tgid: u32, out: &mut Vec<ProcessSample>) -> io::Result<()> {
        let mut dir = self.root.join(tgid.to_string());
        read_child(&mut dir, "stat", &mut self.buf)?;
        let stat = parse_stat(&self.buf).ok_or_else(garbage)?;
        let (start_ticks, ppid) = (stat.start_ticks, stat.ppid);
        let known = self.processes.get(&tgid);
        let same = known.is_some_and(|p| p.start_ticks == start_ticks);
        let new_comm = match known {
            Some(p) if same && p.comm.as_bytes() == stat.comm => None,
            _ => Some(String::from_utf8_lossy(stat.comm).into_owned()),
        };
        dir.push("task");
        list_numeric(&dir, &mut self.tids)?;
        let (width, ns_per_tick) = (self.topology.packages.len(), self.ns_per_tick);
        if !same && let Some(old) = self.processes.remove(&tgid) {
            out.push(exited_sample(tgid, old, width, ns_per_tick));
        }
        let state = self
            .processes
            .entry(tgid)
            .or_insert_with(|| ProcState::new(start_ticks));
        state.ppid = ppid;
        state.seen_tick = self.tick;
        if let Some(comm) = new_comm {
            state.comm = comm;
        }
        let mut ctx = TickCtx {
            buf: &mut self.buf,
            topology: &self.topology,
            created_boot_ns: self.created_boot_ns,
            ns_per_tick,
            tick: self.tick,
        };
        let threads = scan_threads(&mut ctx, &mut dir, &self.tids, state);
        dir.pop();
        // uid and cgroup may change after fork: re-read them for processes that ran.
        if !same || !threads.is_empty() {
            read_identity(&mut dir, ctx.buf, state);
        }
        if !threads.is_empty() {
            out.push(process_sample(tgid, state, threads, width, ns_per_tick));
        }
        Ok(())
    }
}

impl ProcState {
    fn new(start_ticks: u64) -> Self {
        ProcState {
            start_ticks,
            ppid: 0,
            uid: 0,
            comm: String::new(),
            cgroup: String::new(),
            threads: HashMap::new(),
            seen_tick: 0,
        }
    }
}

impl CpuLedger for ProcLedger {
    fn sample_with(&mut self, at_boundary: &mut dyn FnMut()) -> Result<LedgerSample, LedgerError> {
        let now = Instant::now();
        at_boundary();
        self.tick += 1;
        let cpus = self.read_cpu_times()?;
        list_numeric(&self.root, &mut self.pids).map_err(|source| io_error(&self.root, source))?;
        let mut processes = Vec::new();
        let pids = std::mem::take(&mut self.pids);
        for &tgid in &pids {
            self.scan_process(tgid, &mut processes);
        }
        self.pids = pids;
        let (tick, width, ns_per_tick) =
            (self.tick, self.topology.packages.len(), self.ns_per_tick);
        let gone: Vec<u32> = self
            .processes
            .iter()
            .filter(|(_, p)| p.seen_tick != tick)
            .map(|(&tgid, _)| tgid)
            .collect();
        for tgid in gone {
            if let Some(state) = self.processes.remove(&tgid) {
                processes.push(exited_sample(tgid, state, width, ns_per_tick));
            }
        }
        let interval = now.duration_since(self.last_sample);
        self.last_sample = now;
        let cpu_package = (0..cpus.len()).map(|cpu| self.topology.package_index(cpu));
        Ok(LedgerSample {
            interval,
            cpu_package: cpu_package.collect(),
            cpus,
            packages: self.topology.packages.clone(),
            processes,
            health: LedgerHealth::default(),
            gpu: None,
        })
    }

    fn fidelity(&self) -> &Fidelity {
        &self.fidelity
    }
}

/// Scans the threads in `tids`; returns those that ran, plus those that exited when
/// any ran. A thread whose files are garbage keeps its previous reading.
fn scan_threads(
    ctx: &mut TickCtx,
    task_dir: &mut PathBuf,
    tids: &[u32],
    state: &mut ProcState,
) -> Vec<ThreadSample> {
    let mut ran = Vec::new();
    let mut tid_name = String::new();
    for &tid in tids {
        tid_name.clear();
        // Writing to a String cannot fail.
        let _ = write!(tid_name, "{tid}");
        task_dir.push(&tid_name);
        let delta = thread_delta(ctx, task_dir, tid, state);
        task_dir.pop();
        match delta {
            Ok(Some(sample)) => ran.push(sample),
            Ok(None) => {}
            Err(err) if vanished(&err) => {}
            Err(err) => {
                tracing::debug!(tid, %err, "skipping thread in /proc scan");
                if let Some(thread) = state.threads.get_mut(&tid) {
                    thread.seen_tick = ctx.tick;
                }
            }
        }
    }
    let (tick, any_ran) = (ctx.tick, !ran.is_empty());
    state.threads.retain(|&tid, thread| {
        let live = thread.seen_tick == tick;
        if !live && any_ran {
            ran.push(ThreadSample {
                tid,
                comm: std::mem::take(&mut thread.comm),
                on_cpu_ns_by_package: vec![0; ctx.topology.packages.len()],
                exited: true,
                ..ThreadSample::default()
            });
        }
        live
    });
    ran
}

/// Reads one thread and returns its CPU time since the last tick if nonzero. A thread
/// not seen before counts from zero if it started after the ledger was created, else
/// is only a baseline.
fn thread_delta(
    ctx: &mut TickCtx,
    thread_dir: &mut PathBuf,
    tid: u32,
    state: &mut ProcState,
) -> io::Result<Option<ThreadSample>> {
    read_child(thread_dir, "schedstat", ctx.buf)?;
    let now_ns = parse_schedstat(ctx.buf).ok_or_else(garbage)?;
    if let Some(thread) = state.threads.get_mut(&tid)
        && thread.schedstat_ns == now_ns
    {
        thread.seen_tick = ctx.tick;
        return Ok(None);
    }
    read_child(thread_dir, "stat", ctx.buf)?;
    let stat = parse_stat(ctx.buf).ok_or_else(garbage)?;
    let prev_ns = state
        .threads
        .get(&tid)
        .filter(|t| t.start_ticks == stat.start_ticks && t.schedstat_ns <= now_ns)
        .map(|t| t.schedstat_ns);
    let started_after_creation =
        stat.start_ticks.saturating_mul(ctx.ns_per_tick) >= ctx.created_boot_ns;
    let delta_ns = match prev_ns {
        Some(prev_ns) => now_ns - prev_ns,
        None if started_after_creation => now_ns,
        None => 0,
    };
    let thread = state.threads.entry(tid).or_insert_with(|| ThreadState {
        start_ticks: stat.start_ticks,
        schedstat_ns: now_ns,
        comm: String::new(),
        seen_tick: ctx.tick,
    });
    if thread.comm.as_bytes() != stat.comm {
        thread.comm = String::from_utf8_lossy(stat.comm).into_owned();
    }
    thread.start_ticks = stat.start_ticks;
    thread.schedstat_ns = now_ns;
    thread.seen_tick = ctx.tick;
    if delta_ns == 0 {
        return Ok(None);
    }
    let mut by_package = vec![0; ctx.topology.packages.len()];
    let package = ctx.topology.package_index(stat.processor as usize);
    if let Some(slot) = by_package.get_mut(package) {
        *slot = delta_ns;
    }
    Ok(Some(ThreadSample {
        tid,
        comm: thread.comm.clone(),
        on_cpu_ns: delta_ns,
        on_cpu_ns_by_package: by_package,
        exited: false,
        gpu: Default::default(),
    }))
}

fn process_sample(
    tgid: u32,
    state: &ProcState,
    threads: Vec<ThreadSample>,
    width: usize,
    ns_per_tick: u64,
) -> ProcessSample {
    let mut by_package = vec![0u64; width];
    for thread in &threads {
        for (sum, ns) in by_package.iter_mut().zip(&thread.on_cpu_ns_by_package) {
            *sum += ns;
        }
    }
    ProcessSample {
        tgid,
        start_ns: state.start_ticks.saturating_mul(ns_per_tick),
        ppid: state.ppid,
        uid: state.uid,
        comm: state.comm.clone(),
        cgroup: state.cgroup.clone(),
        on_cpu_ns: threads.iter().map(|t| t.on_cpu_ns).sum(),
        on_cpu_ns_by_package: by_package,
        exited: false,
        gpu: Default::default(),
        threads,
    }
}

fn exited_sample(tgid: u32, state: ProcState, width: usize, ns_per_tick: u64) -> ProcessSample {
    ProcessSample {
        tgid,
        start_ns: state.start_ticks.saturating_mul(ns_per_tick),
        ppid: state.ppid,
        uid: state.uid,
        comm: state.comm,
        cgroup: state.cgroup,
        on_cpu_ns: 0,
        on_cpu_ns_by_package: vec![0; width],
        exited: true,
        gpu: Default::default(),
        threads: Vec::new(),
    }
}

/// Refreshes uid and cgroup; what cannot be read keeps its previous value.
fn read_identity(dir: &mut PathBuf, buf: &mut Vec<u8>, state: &mut ProcState) {
    if read_child(dir, "status", buf).is_ok()
        && let Some(uid) = parse_uid(buf)
    {
        state.uid = uid;
    }
    if read_child(dir, "cgroup", buf).is_ok()
        && let Some(cgroup) = parse_cgroup(buf)
        && state.cgroup != cgroup
    {
        state.cgroup = cgroup.to_string();
    }
}

fn io_error(path: &Path, source: io::Error) -> LedgerError {
    LedgerError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;
