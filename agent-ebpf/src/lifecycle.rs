//! Fork, exec and exit: who exists, what they are called, and when they left.
//!
//! On exit the leaving thread's running slice is charged first, so the final
//! microseconds of a 5 ms process land in the ledger before its parent can reap it.
use agent_common::{COMM_LEN, LifecycleEvent, event_kind};
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::RingBuf,
    programs::{BtfTracePointContext, RawTracePointContext},
};

use crate::ledger::{LEDGER_STATS, TASK_OFFSETS, flush_current};

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
    emit(event_kind::EXEC, 0, 0)
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn lifecycle_exec_raw(_ctx: RawTracePointContext) -> u32 {
    emit(event_kind::EXEC, 0, 0)
}

#[btf_tracepoint(function = "sched_process_exit")]
pub fn lifecycle_exit_btf(_ctx: BtfTracePointContext) -> u32 {
    flush_current();
    emit(event_kind::EXIT, 0, 0)
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn lifecycle_exit_raw(_ctx: RawTracePointContext) -> u32 {
    flush_current();
    emit(event_kind::EXIT, 0, 0)
}

/// `current` is the parent; the child's ids are read from its task_struct at the
/// offsets the loader found in BTF (zero offsets: unknown, reported as 0).
#[inline(always)]
fn on_fork(child: *const u8) -> u32 {
    let offsets = TASK_OFFSETS.load();
    let (mut child_tid, mut child_tgid) = (0u32, 0u32);
    if offsets.pid != 0 && offsets.tgid != 0 && !child.is_null() {
        // SAFETY: bpf_probe_read_kernel checks the address; a bad read returns Err.
        unsafe {
            child_tid =
                bpf_probe_read_kernel(child.add(offsets.pid as usize) as *const u32).unwrap_or(0);
            child_tgid =
                bpf_probe_read_kernel(child.add(offsets.tgid as usize) as *const u32).unwrap_or(0);
        }
    }
    emit(event_kind::FORK, child_tid, child_tgid)
}

#[inline(always)]
fn emit(kind: u32, child_tid: u32, child_tgid: u32) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(mut entry) = LIFECYCLE_EVENTS.reserve::<LifecycleEvent>(0) else {
        if let Some(stats) = LEDGER_STATS.get_ptr_mut(0) {
            // SAFETY: this CPU's stats value.
            unsafe { (*stats).ringbuf_lost += 1 };
        }
        return 0;
    };
    let comm = bpf_get_current_comm().unwrap_or([0u8; COMM_LEN]);
    entry.write(LifecycleEvent {
        kind,
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        child_tid,
        child_tgid,
        uid: bpf_get_current_uid_gid() as u32,
        // SAFETY: helper without preconditions.
        ts_ns: unsafe { bpf_ktime_get_boot_ns() },
        comm,
    });
    entry.submit(0);
    0
}
