//! The process table behind the eBPF ledger: identity (tgid + start time), names,
//! parents, owners and cgroups, kept current by fork/exec/exit events.
//!
//! `/proc` is read once per newly seen process or thread, never per tick for
//! processes that are idle, so a tick costs what ran, not what exists.
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use agent_common::{LifecycleEvent, event_kind};

use super::procfs::{ns_per_clock_tick, read_cgroup, read_stat, read_uid};

/// How many ticks an exited process stays known, so the last microseconds of its
/// exit path (charged at its final context switch) still find it.
const GRACE_TICKS: u64 = 2;

#[derive(Clone, Debug, Default)]
pub struct ThreadInfo {
    pub comm: String,
    /// Tick in which the thread's exit was seen.
    pub exited_at: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct ProcessInfo {
    pub tgid: u32,
    pub start_ns: u64,
    pub ppid: u32,
    pub uid: u32,
    pub comm: String,
    pub cgroup: String,
    pub threads: HashMap<u32, ThreadInfo>,
    /// Tick in which the process (leader and every known thread) was seen to exit.
    pub exited_at: Option<u64>,
    leader_exited: bool,
    /// `/proc` has been consulted (or found gone) since the process appeared.
    resolved: bool,
}

impl ProcessInfo {
    /// Fills parent and start time from an exec/exit event when `/proc` could not.
    fn learn_identity(&mut self, event: &LifecycleEvent) {
        if self.ppid == 0 {
            self.ppid = event.ppid;
        }
        if self.start_ns == 0 && event.start_boottime_ns != 0 {
            self.start_ns = start_of(event);
        }
    }

    /// True in the tick the process exited (and the grace ticks after it).
    pub fn exited(&self) -> bool {
        self.exited_at.is_some()
    }
}

/// Processes keyed by tgid, plus those whose pid was reused before they were reported.
pub struct TaskTable {
    procfs_root: PathBuf,
    processes: HashMap<u32, ProcessInfo>,
    /// Exited processes displaced by a new process with the same pid in one tick.
    pub displaced: Vec<ProcessInfo>,
    /// Processes that exited in the current tick (tgids).
    exited_now: Vec<u32>,
    /// Every exit seen, oldest first: (tick, tgid, tid), to forget them after the
    /// grace without visiting every known process each tick.
    exits: VecDeque<(u64, u32, u32)>,
    tick: u64,
}

impl TaskTable {
    pub fn new(procfs_root: &Path) -> Self {
        TaskTable {
            procfs_root: procfs_root.to_path_buf(),
            processes: HashMap::new(),
            displaced: Vec::new(),
            exited_now: Vec::new(),
            exits: VecDeque::new(),
            tick: 0,
        }
    }

    pub fn tick(&self) -> u64 {
        self.tick
    }

    pub fn get(&self, tgid: u32) -> Option<&ProcessInfo> {
        self.processes.get(&tgid)
    }

    /// Applies one lifecycle event.
    pub fn apply(&mut self, event: &LifecycleEvent) {
        let comm = comm_string(&event.comm);
        match event.kind {
            event_kind::FORK if event.child_tid != 0 => self.on_fork(event, comm),
            event_kind::EXEC => {
                let tick = self.tick;
                let process = self.process(event.tgid);
                process.learn_identity(event);
                process.comm.clone_from(&comm);
                process.uid = event.uid;
                // exec makes the caller the leader; the other threads are already gone.
                process
                    .threads
                    .retain(|_, t| t.exited_at.is_some() && t.exited_at == Some(tick));
                process.threads.insert(
                    event.tgid,
                    ThreadInfo {
                        comm,
                        exited_at: None,
                    },
                );
                // It lives on: a thread that execs takes over the leader's pid after
                // the old leader's exit, which looks like the process's end when the
                // table never knew the thread (it predates the agent and had not run).
                process.exited_at = None;
                process.leader_exited = false;
                self.exited_now.retain(|&tgid| tgid != event.tgid);
            }
            event_kind::RENAME if event.child_tid != 0 => {
                let process = self.process(event.child_tgid);
                if event.child_tid == event.child_tgid {
                    process.comm.clone_from(&comm);
                }
                process.threads.entry(event.child_tid).or_default().comm = comm;
            }
            event_kind::EXIT => {
                let tick = self.tick;
                let process = self.process(event.tgid);
                process.learn_identity(event);
                if process.comm.is_empty() || event.tid == event.tgid {
                    process.comm.clone_from(&comm);
                }
                let thread = process.threads.entry(event.tid).or_default();
                thread.comm = comm;
                thread.exited_at = Some(tick);
                if event.tid == event.tgid {
                    process.leader_exited = true;
                }
                if process.exited_at.is_none()
                    && process.leader_exited
                    && process.threads.values().all(|t| t.exited_at.is_some())
                {
                    process.exited_at = Some(tick);
                    self.exited_now.push(event.tgid);
                }
                self.exits.push_back((tick, event.tgid, event.tid));
            }
            _ => {}
        }
    }

    fn on_fork(&mut self, event: &LifecycleEvent, comm: String) {
        let (child_tid, child_tgid) = (event.child_tid, event.child_tgid);
        if child_tid != child_tgid {
            let process = self.process(child_tgid);
            process.threads.entry(child_tid).or_insert(ThreadInfo {
                comm,
                exited_at: None,
            });
            return;
        }
        let cgroup = self
            .processes
            .get(&event.tgid)
            .map(|p| p.cgroup.clone())
            .unwrap_or_default();
        let fresh = ProcessInfo {
            tgid: child_tgid,
            start_ns: start_of(event),
            ppid: event.tgid,
            uid: event.uid,
            comm: comm.clone(),
            cgroup,
            threads: HashMap::from([(
                child_tid,
                ThreadInfo {
                    comm,
                    exited_at: None,
                },
            )]),
            ..ProcessInfo::default()
        };
        if let Some(old) = self.processes.insert(child_tgid, fresh) {
            // The pid was reused: the old process must still be reported as exited.
            if old.exited_at == Some(self.tick) {
                self.displaced.push(old);
            }
        }
    }

    /// The process with this tgid, discovered from `/proc` if it was not known.
    pub fn process(&mut self, tgid: u32) -> &mut ProcessInfo {
        let root = &self.procfs_root;
        self.processes.entry(tgid).or_insert_with(|| {
            let mut info = ProcessInfo {
                tgid,
                ..ProcessInfo::default()
            };
            resolve(root, &mut info);
            info
        })
    }

    /// Fills in what events cannot tell (cgroup, a name set by prctl, the real start
    /// time of processes older than the agent) the first time a process is reported.
    pub fn resolve(&mut self, tgid: u32) {
        let root = self.procfs_root.clone();
        if let Some(info) = self.processes.get_mut(&tgid)
            && !info.resolved
        {
            resolve(&root, info);
        }
    }

    /// The thread's name, read from `/proc` the first time the thread is seen.
    pub fn thread_comm(&mut self, tgid: u32, tid: u32) -> String {
        let root = self.procfs_root.clone();
        let process = self.process(tgid);
        let fallback = process.comm.clone();
        let thread = process.threads.entry(tid).or_insert_with(|| {
            let path = root.join(format!("{tgid}/task/{tid}/comm"));
            let comm = std::fs::read_to_string(path)
                .map(|s| s.trim_end().to_string())
                .unwrap_or(fallback);
            ThreadInfo {
                comm,
                exited_at: None,
            }
        });
        thread.comm.clone()
    }

    /// Names a process that `/proc` could not (it was gone before we looked) from
    /// events not applied yet: an exit stamped after this tick's end still carries
    /// the leaving process's name and owner.
    pub fn learn_from_pending(&mut self, tgid: u32, pending: &[LifecycleEvent]) {
        let Some(process) = self.processes.get_mut(&tgid) else {
            return;
        };
        if !process.comm.is_empty() {
            return;
        }
        let mut events = pending
            .iter()
            .filter(|e| e.tgid == tgid && e.kind != event_kind::FORK);
        if let Some(event) = events
            .clone()
            .find(|e| e.tid == tgid)
            .or_else(|| events.next())
        {
            process.comm = comm_string(&event.comm);
            process.uid = event.uid;
        }
    }

    /// Processes that exited in the current tick.
    pub fn exited_this_tick(&self) -> impl Iterator<Item = &ProcessInfo> {
        let tick = self.tick;
        self.exited_now
            .iter()
            .filter_map(|tgid| self.processes.get(tgid))
            .filter(move |p| p.exited_at == Some(tick))
            .chain(self.displaced.iter())
    }

    /// Ends the tick: forgets processes and threads whose grace has run out. Costs
    /// what exited, never what exists.
    pub fn end_tick(&mut self) {
        let tick = self.tick;
        let expired = |at: Option<u64>| at.is_some_and(|at| at + GRACE_TICKS <= tick);
        while let Some(&(at, tgid, tid)) = self.exits.front() {
            if at + GRACE_TICKS > tick {
                break;
            }
            self.exits.pop_front();
            let Some(process) = self.processes.get_mut(&tgid) else {
                continue;
            };
            // A pid reused since then belongs to a live thread or process: kept.
            if process
                .threads
                .get(&tid)
                .is_some_and(|t| expired(t.exited_at))
            {
                process.threads.remove(&tid);
            }
            if expired(process.exited_at) {
                self.processes.remove(&tgid);
            }
        }
        self.exited_now.clear();
        self.displaced.clear();
        self.tick += 1;
    }

    /// Number of processes known (live and in their grace period).
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }
}

fn resolve(root: &Path, info: &mut ProcessInfo) {
    info.resolved = true;
    let stat = match read_stat(root, info.tgid, None) {
        Ok(stat) => stat,
        Err(err) => {
            tracing::debug!(tgid = info.tgid, %err, "process gone before it could be resolved");
            return;
        }
    };
    // A start time differing by more than two clock ticks means a different
    // process now holds this pid: keep what the events said.
    let same = info.start_ns == 0 || stat.start_ns.abs_diff(info.start_ns) <= 20_000_000;
    if !same {
        return;
    }
    if info.start_ns == 0 {
        info.start_ns = stat.start_ns;
        info.ppid = stat.ppid;
    }
    info.comm = stat.comm;
    if let Ok(uid) = read_uid(root, info.tgid) {
        info.uid = uid;
    }
    if let Ok(cgroup) = read_cgroup(root, info.tgid) {
        info.cgroup = cgroup;
    }
}

/// The process start time an event reports, in whole clock ticks like
/// `/proc/PID/stat` so both paths give the same identity; the event time when the
/// kernel's start time is unknown.
fn start_of(event: &LifecycleEvent) -> u64 {
    if event.start_boottime_ns == 0 {
        return event.ts_ns;
    }
    let tick = ns_per_clock_tick().max(1);
    event.start_boottime_ns / tick * tick
}

fn comm_string(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests;
