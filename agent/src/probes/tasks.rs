//! The process table behind the eBPF ledger: identity (tgid + start time), names,
//! parents, owners and cgroups, kept current by fork/exec/exit events.
//!
//! `/proc` is read once per newly seen process or thread, never per tick for
//! processes that are idle, so a tick costs what ran, not what exists.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use agent_common::{LifecycleEvent, event_kind};

use super::procfs::{read_cgroup, read_stat, read_uid};

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
    tick: u64,
}

impl TaskTable {
    pub fn new(procfs_root: &Path) -> Self {
        TaskTable {
            procfs_root: procfs_root.to_path_buf(),
            processes: HashMap::new(),
            displaced: Vec::new(),
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
            }
            event_kind::EXIT => {
                let tick = self.tick;
                let process = self.process(event.tgid);
                if process.comm.is_empty() || event.tid == event.tgid {
                    process.comm.clone_from(&comm);
                }
                let thread = process.threads.entry(event.tid).or_default();
                thread.comm = comm;
                thread.exited_at = Some(tick);
                if event.tid == event.tgid {
                    process.leader_exited = true;
                }
                if process.leader_exited && process.threads.values().all(|t| t.exited_at.is_some())
                {
                    process.exited_at.get_or_insert(tick);
                }
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
            start_ns: event.ts_ns,
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

    /// Processes that exited in the current tick.
    pub fn exited_this_tick(&self) -> impl Iterator<Item = &ProcessInfo> {
        let tick = self.tick;
        self.processes
            .values()
            .filter(move |p| p.exited_at == Some(tick))
            .chain(self.displaced.iter())
    }

    /// Ends the tick: forgets processes and threads whose grace has run out.
    pub fn end_tick(&mut self) {
        let tick = self.tick;
        let expired = |at: Option<u64>| at.is_some_and(|at| at + GRACE_TICKS <= tick);
        self.processes.retain(|_, p| !expired(p.exited_at));
        for process in self.processes.values_mut() {
            process.threads.retain(|_, t| !expired(t.exited_at));
        }
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
    let Ok(stat) = read_stat(root, info.tgid, None) else {
        return;
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

fn comm_string(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}
