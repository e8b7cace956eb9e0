//! The programs' rare events — a full map, a lost event, a task_struct that does not
//! look like one — as aya-log lines, which user space reads each tick and writes
//! through tracing (target `greentop_ebpf`: `RUST_LOG=greentop_ebpf=warn`).
//!
//! Never a line per switch: each kind is logged at its 1st, 2nd, 4th, 8th, …
//! occurrence on a CPU, so a flood costs a logarithmic number of lines, and the
//! logging code sits in subprograms off the hot path (`#[inline(never)]`).
use aya_ebpf::{macros::map, maps::PerCpuArray};
use aya_log_ebpf::warn;

/// Kinds of rare events, the index of their counter.
#[derive(Clone, Copy)]
#[repr(u32)]
enum Rare {
    LedgerDrop = 0,
    EventLost = 1,
    TgidZero = 2,
    ForkIdsUnread = 3,
    GpuThreadsFull = 4,
    GpuSyncFull = 5,
}

const KINDS: u32 = 6;

/// How many times each kind happened on each CPU since load.
#[map(name = "RARE_EVENTS")]
static RARE_EVENTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(KINDS, 0);

/// Counts one `kind` on this CPU; the count when it is a power of two (time to log).
#[inline(always)]
fn due(kind: Rare) -> Option<u64> {
    let count = RARE_EVENTS.get_ptr_mut(kind as u32)?;
    // SAFETY: this CPU's value; programs on one CPU do not interleave on it except a
    // preempted uprobe, which only miscounts a log throttle.
    let n = unsafe {
        *count += 1;
        *count
    };
    n.is_power_of_two().then_some(n)
}

/// The ledger's overflow map was full: a slice is counted as dropped.
#[inline(never)]
pub(crate) fn ledger_slice_dropped(tgid: u32, tid: u32, ns: u64) {
    if let Some(n) = due(Rare::LedgerDrop) {
        warn!(
            &(),
            "ledger overflow map full: a slice of {} ns (tgid {}, tid {}) dropped, {} on this CPU so far",
            ns,
            tgid,
            tid,
            n
        );
    }
}

/// The lifecycle ring buffer was full: an event of `kind` is lost.
#[inline(never)]
pub(crate) fn event_lost(kind: u32, tid: u32) {
    if let Some(n) = due(Rare::EventLost) {
        warn!(
            &(),
            "lifecycle ring buffer full: event kind {} of tid {} lost, {} on this CPU so far",
            kind,
            tid,
            n
        );
    }
}

/// A running task whose tgid reads as 0: the task_struct offsets from BTF do not
/// match this kernel's layout.
#[inline(never)]
pub(crate) fn tgid_zero(tid: u32) {
    if let Some(n) = due(Rare::TgidZero) {
        warn!(
            &(),
            "unexpected task layout: tid {} has tgid 0 (task_struct offsets wrong?), {} on this CPU so far",
            tid,
            n
        );
    }
}

/// A fork whose child ids read as 0 although their offsets are known.
#[inline(never)]
pub(crate) fn fork_ids_unread(parent_tid: u32) {
    if let Some(n) = due(Rare::ForkIdsUnread) {
        warn!(
            &(),
            "unexpected task layout: the child of tid {} has no pid at the BTF offset, {} on this CPU so far",
            parent_tid,
            n
        );
    }
}

/// The GPU per-thread map was full: a hit is lost.
#[inline(never)]
pub(crate) fn gpu_threads_full(tid: u32) {
    if let Some(n) = due(Rare::GpuThreadsFull) {
        warn!(
            &(),
            "GPU_THREADS full: a CUDA call of tid {} not counted, {} on this CPU so far", tid, n
        );
    }
}

/// Too many sync calls in flight: one is not timed.
#[inline(never)]
pub(crate) fn gpu_sync_full(tid: u32) {
    if let Some(n) = due(Rare::GpuSyncFull) {
        warn!(
            &(),
            "GPU_SYNC_STARTS full: a sync call of tid {} not timed, {} on this CPU so far", tid, n
        );
    }
}
