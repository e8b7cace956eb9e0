//! `gt-load policy fifo|deadline MODE ARGS…`: runs a workload as a real-time or
//! deadline task, whose runtime the kernel keeps in the same `se.sum_exec_runtime`.
use std::io;

/// A scheduling policy to switch the calling thread to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// SCHED_FIFO at priority 1.
    Fifo,
    /// SCHED_DEADLINE: 5 ms of runtime every 10 ms (half a CPU), enough for a short
    /// workload to finish and well inside the admission limit.
    Deadline,
}

impl Policy {
    pub fn parse(name: &str) -> Option<Policy> {
        match name {
            "fifo" => Some(Policy::Fifo),
            "deadline" => Some(Policy::Deadline),
            _ => None,
        }
    }
}

/// `struct sched_attr` (SCHED_ATTR_SIZE_VER0), for sched_setattr(2).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime_ns: u64,
    deadline_ns: u64,
    period_ns: u64,
}

/// Switches the calling thread to `policy`.
pub fn apply(policy: Policy) -> io::Result<()> {
    const SCHED_DEADLINE: u32 = 6;
    let attr = match policy {
        Policy::Fifo => SchedAttr {
            policy: libc::SCHED_FIFO as u32,
            priority: 1,
            ..SchedAttr::default()
        },
        Policy::Deadline => SchedAttr {
            policy: SCHED_DEADLINE,
            runtime_ns: 5_000_000,
            deadline_ns: 10_000_000,
            period_ns: 10_000_000,
            ..SchedAttr::default()
        },
    };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        ..attr
    };
    // SAFETY: attr is a valid sched_attr of the size it declares; the kernel only reads it.
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
