//! Fork, exec, exit and rename: who exists, what they are called, and when they left.
//!
//! On exit the leaving thread's running slice is charged first, so the final
//! microseconds of a 5 ms process land in the ledger before its parent can reap it.
use agent_common::{COMM_LEN, LifecycleEvent, event_kind};
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::RingBuf,
    programs::{BtfTracePointContext, RawTracePointContext},
};

use crate::ledger::{LEDGER_STATS, TASK_OFFSETS, flush_current, forget_current};
use crate::rare;
use crate::task::read_at;

/// Sized by the loader from the CPU count.
#[map(name = "LIFECYCLE_EVENTS")]
static LIFECYCLE_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

#[btf_tracepoint(function = "sched_process_fork")]
pub fn lifecycle_fork_btf(ctx: BtfTracePointContext) -> u32 {
    on_fork(ctx.arg::<*const u8>(1))
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn lifecycle_fork_raw(ctx: RawTracePointContext) -> u32 {
    on_fork(ctx.arg::<*const u8>(1))
}

#[btf_tracepoint(function = "sched_process_exec")]
pub fn lifecycle_exec_btf(_ctx: BtfTracePointContext) -> u32 {
    on_current(event_kind::EXEC)
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn lifecycle_exec_raw(_ctx: RawTracePointContext) -> u32 {
    on_current(event_kind::EXEC)
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn lifecycle_exit_btf(_ctx: BtfTracePointContext) -> u32 {
    on_exit()
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn lifecycle_exit_raw(_ctx: RawTracePointContext) -> u32 {
    on_exit()
}

/// The leaving thread's running slice is charged, its runtime entry forgotten (its tid
/// may come back on another task), then the exit is reported.
#[inline(always)]
fn on_exit() -> u32 {
    flush_current(false);
    forget_current(bpf_get_current_pid_tgid() as u32);
    on_current(event_kind::EXIT)
}

#[btf_tracepoint(function = "task_rename")]
pub fn lifecycle_rename_btf(ctx: BtfTracePointContext) -> u32 {
    on_rename(ctx.arg::<*const u8>(0), ctx.arg::<*const u8>(1))
}

#[raw_tracepoint(tracepoint = "task_rename")]
pub fn lifecycle_rename_raw(ctx: RawTracePointContext) -> u32 {
    on_rename(ctx.arg::<*const u8>(0), ctx.arg::<*const u8>(1))
}

/// Thread names are set after the thread starts (Rust, Python, PyTorch all do), so
/// the name at fork is usually the parent's: report every rename.
#[inline(always)]
fn on_rename(task: *const u8, new_comm: *const u8) -> u32 {
    let offsets = TASK_OFFSETS.load();
    let current = bpf_get_current_pid_tgid();
    let mut comm = [0u8; COMM_LEN];
    // SAFETY: the helper checks the address and bounds the copy by `comm`'s length.
    if unsafe { bpf_probe_read_kernel_str_bytes(new_comm, &mut comm) }.is_err() {
        return 0;
    }
    let (tid, tgid) = match (
        read_at::<u32>(task, offsets.pid),
        read_at::<u32>(task, offsets.tgid),
    ) {
        (tid, tgid) if tid != 0 && tgid != 0 => (tid, tgid),
        _ => (current as u32, (current >> 32) as u32),
    };
    let ids = Ids {
        child_tid: tid,
        child_tgid: tgid,
        ..Ids::default()
    };
    emit_event(event_kind::RENAME, ids, Some(comm))
}

/// `current` is the parent; the child's ids and start time are read from its
/// task_struct at the offsets the loader found in BTF (unknown: reported as 0).
#[inline(always)]
fn on_fork(child: *const u8) -> u32 {
    let offsets = TASK_OFFSETS.load();
    let ids = Ids {
        child_tid: read_at(child, offsets.pid),
        child_tgid: read_at(child, offsets.tgid),
        ppid: (bpf_get_current_pid_tgid() >> 32) as u32,
        start_boottime_ns: read_at(child, offsets.start_boottime),
    };
    if ids.child_tid == 0 && offsets.pid != 0 {
        rare::fork_ids_unread(bpf_get_current_pid_tgid() as u32);
    }
    emit(event_kind::FORK, ids)
}

/// Exec and exit: the process's parent and start time, from `current`.
#[inline(always)]
fn on_current(kind: u32) -> u32 {
    let offsets = TASK_OFFSETS.load();
    // SAFETY: helper without preconditions; the pointer is only passed to probe reads.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let parent: *const u8 = read_at(task, offsets.real_parent);
    let leader: *const u8 = read_at(task, offsets.group_leader);
    let ids = Ids {
        ppid: read_at(parent, offsets.tgid),
        start_boottime_ns: read_at(leader, offsets.start_boottime),
        ..Ids::default()
    };
    emit(kind, ids)
}

#[derive(Default)]
struct Ids {
    child_tid: u32,
    child_tgid: u32,
    ppid: u32,
    start_boottime_ns: u64,
}

#[inline(always)]
fn emit(kind: u32, ids: Ids) -> u32 {
    emit_event(kind, ids, None)
}

/// Sends one event about `current` (or, for renames, the task in `child_*`), with
/// `comm` when given, else current's.
#[inline(always)]
fn emit_event(kind: u32, ids: Ids, comm: Option<[u8; COMM_LEN]>) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(mut entry) = LIFECYCLE_EVENTS.reserve::<LifecycleEvent>(0) else {
        if let Some(stats) = LEDGER_STATS.get_ptr_mut(0) {
            // SAFETY: this CPU's stats value.
            unsafe { (*stats).ringbuf_lost += 1 };
        }
        rare::event_lost(kind, pid_tgid as u32);
        return 0;
    };
    let comm = comm.unwrap_or_else(|| bpf_get_current_comm().unwrap_or([0u8; COMM_LEN]));
    entry.write(LifecycleEvent {
        kind,
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        child_tid: ids.child_tid,
        child_tgid: ids.child_tgid,
        uid: bpf_get_current_uid_gid() as u32,
        // SAFETY: helper without preconditions.
        ts_ns: unsafe { bpf_ktime_get_boot_ns() },
        comm,
        ppid: ids.ppid,
        pad: 0,
        start_boottime_ns: ids.start_boottime_ns,
    });
    entry.submit(0);
    0
}
