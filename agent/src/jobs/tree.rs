//! The process-tree job: a launcher and everything it started, up to the session.
//!
//! Walks parents from a process to the topmost ancestor that is not session plumbing
//! (a shell, terminal multiplexer, login, sudo, init, container shim or Slurm
//! stepd): `torchrun` under `bash` roots its workers and their DataLoader children.

/// Commands that hold a session rather than do work: the job root is their child.
const SESSION_COMMS: &[&str] = &[
    "bash",
    "sh",
    "zsh",
    "fish",
    "dash",
    "ksh",
    "mksh",
    "tcsh",
    "csh",
    "tmux: server",
    "tmux",
    "screen",
    "SCREEN",
    "zellij",
    "mosh-server",
    "sshd",
    "sshd-session",
    "login",
    "sudo",
    "su",
    "doas",
    "runuser",
    "systemd",
    "init",
    "cron",
    "CRON",
    "atd",
    "conmon",
    "slurmstepd",
    "srun",
    "salloc",
    "sbatch",
    "gnome-terminal-",
    "konsole",
    "xterm",
    "kitty",
    "alacritty",
    "wezterm-gui",
];

/// The kernel truncates comm to 15 bytes: `containerd-shim-runc-v2` reads `containerd-shim`.
const SESSION_PREFIXES: &[&str] = &["containerd-shim"];

/// A chain deeper than this is a loop in stale data, not a real tree.
const MAX_DEPTH: usize = 512;

/// A process as its child sees it: what it runs and who its parent is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Parent {
    pub comm: String,
    pub ppid: u32,
}

pub(super) fn is_session_comm(comm: &str) -> bool {
    SESSION_COMMS.contains(&comm) || SESSION_PREFIXES.iter().any(|p| comm.starts_with(p))
}

/// pid 2 is kthreadd; every kernel thread is its child.
pub(super) fn is_kernel_thread(pid: u32, ppid: u32) -> bool {
    pid == 2 || ppid == 2
}

/// The job root of process `pid` as `(pid, comm)`: the process itself or its topmost
/// ancestor below pid 1, kthreadd or a session command. A parent `parent_of` cannot
/// find (exited, unreadable) ends the walk where it is. None for pids 0–2 and kernel
/// threads, which belong to no tree.
pub(super) fn find_root(
    pid: u32,
    comm: &str,
    ppid: u32,
    mut parent_of: impl FnMut(u32) -> Option<Parent>,
) -> Option<(u32, String)> {
    if pid <= 2 || is_kernel_thread(pid, ppid) {
        return None;
    }
    let mut root = (pid, comm.to_string());
    let mut next = ppid;
    for _ in 0..MAX_DEPTH {
        if next <= 2 || next == root.0 {
            break;
        }
        let Some(parent) = parent_of(next) else {
            break;
        };
        if is_session_comm(&parent.comm) {
            break;
        }
        root = (next, parent.comm);
        next = parent.ppid;
    }
    Some(root)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// pid → (comm, ppid): sshd 10 → bash 20 → torchrun 30 → worker 40 → loader 50;
    /// python 60 under init; 70 under vanished 71; 80 its own parent; kworker 90.
    fn table() -> HashMap<u32, Parent> {
        let rows = [
            (10, "sshd", 1),
            (20, "bash", 10),
            (30, "torchrun", 20),
            (40, "python", 30),
            (50, "pt_data_worker", 40),
            (60, "python", 1),
            (70, "python", 71),
            (80, "weird", 80),
            (90, "kworker/0:1", 2),
        ];
        let parent = |(pid, comm, ppid): (u32, &str, u32)| {
            let comm = comm.to_string();
            (pid, Parent { comm, ppid })
        };
        rows.into_iter().map(parent).collect()
    }

    #[test]
    fn roots() {
        let table = table();
        let cases = [
            (50, Some((30, "torchrun"))),
            (40, Some((30, "torchrun"))),
            (30, Some((30, "torchrun"))),
            (20, Some((20, "bash"))),
            (10, Some((10, "sshd"))),
            (60, Some((60, "python"))),
            (70, Some((70, "python"))),
            (80, Some((80, "weird"))),
            (90, None),
            (2, None),
            (1, None),
        ];
        for (pid, want) in cases {
            let (comm, ppid) = table
                .get(&pid)
                .map_or(("x", 0), |p| (p.comm.as_str(), p.ppid));
            let got = find_root(pid, comm, ppid, |p| table.get(&p).cloned());
            let want = want.map(|(pid, comm)| (pid, comm.to_string()));
            assert_eq!(got, want, "pid {pid}");
        }
    }

    #[test]
    fn a_parent_loop_ends() {
        let looped = |pid: u32| {
            let ppid = if pid == 100 { 101 } else { 100 };
            let comm = "loop".to_string();
            Some(Parent { comm, ppid })
        };
        assert!(find_root(100, "loop", 101, looped).is_some());
    }

    #[test]
    fn session_comms() {
        let cases = [
            ("bash", true),
            ("tmux: server", true),
            ("containerd-shim", true),
            ("slurmstepd", true),
            ("python", false),
            ("torchrun", false),
            ("bashful", false),
            ("", false),
        ];
        for (comm, want) in cases {
            assert_eq!(is_session_comm(comm), want, "{comm:?}");
        }
    }
}
