//! The sched_switch ledger: charges every on-CPU slice to (tgid, tid) on its CPU.
//!
//! Where the kernel's BTF gives `task_struct.se.sum_exec_runtime`, a slice is what the
//! scheduler itself charged: at sched_switch the kernel has just brought `prev`'s
//! runtime up to date, so the slice is that runtime minus the one `prev` had when it
//! was switched in (kept in a per-CPU slot: a slice starts and ends on one CPU). No
//! clock is read on the hot path. Without that offset the ledger falls back to
//! `bpf_ktime_get_ns` deltas (the clock ledger).
//!
//! Either way, a slice goes into a per-CPU open-addressed table; only a thread that
//! finds its neighbourhood full touches a hash map. User space flips `LEDGER_EPOCH`
//! each tick and drains the table of the epoch that just ended.
use agent_common::{
    CpuSlot, CpuTable, EPOCHS, LastCharged, LedgerStats, OverflowKey, PROBE_DEPTH, TABLE_SLOTS,
    TaskOffsets,
};
use aya_ebpf::{
    Global,
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns},
    macros::{btf_tracepoint, map, raw_tracepoint, tracepoint},
    maps::{Array, PerCpuArray, PerCpuHashMap},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};

use crate::rare;
use crate::task::{Direct, Probed, TaskRead};

#[map(name = "LEDGER_TABLES")]
static LEDGER_TABLES: PerCpuArray<CpuTable> = PerCpuArray::with_max_entries(EPOCHS, 0);

#[map(name = "LEDGER_EPOCH")]
static LEDGER_EPOCH: Array<u64> = Array::with_max_entries(1, 0);

#[map(name = "CPU_SLOTS")]
static CPU_SLOTS: PerCpuArray<CpuSlot> = PerCpuArray::with_max_entries(1, 0);

/// Sized by the loader from the machine (pid_max); 1024 is only the object's default.
#[map(name = "LEDGER_OVERFLOW")]
static LEDGER_OVERFLOW: PerCpuHashMap<OverflowKey, u64> = PerCpuHashMap::with_max_entries(1024, 0);

/// The runtime each task was last charged up to, indexed by `tid & LAST_CHARGED_MASK`
/// and tagged with the task: a slice is the runtime now minus this, so a switch the
/// ledger never saw (the kernel skips tracing programs in rare windows) only delays
/// a charge. An array, not a hash or task storage: its look-up is inlined (no helper
/// call). Sized by the loader from pid_max.
#[map(name = "LAST_CHARGED")]
static LAST_CHARGED: Array<LastCharged> = Array::with_max_entries(1024, 0);

/// `TASK_DEAD` in `task_struct.__state`: sched_switch's `prev_state` at a task's final switch.
const TASK_DEAD: u64 = 0x80;

/// `LAST_CHARGED`'s entries minus one (a power of two minus one).
#[unsafe(no_mangle)]
static LAST_CHARGED_MASK: Global<u32> = Global::new(1023);

#[map(name = "LEDGER_STATS")]
pub(crate) static LEDGER_STATS: PerCpuArray<LedgerStats> = PerCpuArray::with_max_entries(1, 0);

/// How many table slots per CPU are in use (minus one); lowered only to test pressure.
#[unsafe(no_mangle)]
static SLOT_MASK: Global<u32> = Global::new(TABLE_SLOTS as u32 - 1);

/// Offsets of `struct task_struct` members, from the kernel's BTF. A read-only global:
/// the verifier knows the values, so unused branches are removed at load.
#[unsafe(no_mangle)]
pub(crate) static TASK_OFFSETS: Global<TaskOffsets> = Global::new(TaskOffsets {
    pid: 0,
    tgid: 0,
    real_parent: 0,
    group_leader: 0,
    start_boottime: 0,
    sum_exec_runtime: 0,
});

#[btf_tracepoint(function = "sched_switch")]
pub fn ledger_switch_btf(ctx: BtfTracePointContext) -> u32 {
    let offsets = TASK_OFFSETS.load();
    if !offsets.runtime_ledger() {
        return on_switch_clock();
    }
    on_switch_runtime::<Direct>(ctx.arg(1), ctx.arg(2), ctx.arg(3), &offsets)
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn ledger_switch_raw(ctx: RawTracePointContext) -> u32 {
    let offsets = TASK_OFFSETS.load();
    if !offsets.runtime_ledger() {
        return on_switch_clock();
    }
    on_switch_runtime::<Probed>(ctx.arg(1), ctx.arg(2), ctx.arg(3), &offsets)
}

/// The classic tracepoint carries no task pointers: the loader only attaches it with
/// the clock ledger.
#[tracepoint(category = "sched", name = "sched_switch")]
pub fn ledger_switch_tp(_ctx: TracePointContext) -> u32 {
    on_switch_clock()
}

/// Cuts the slice in progress on the CPU it runs on and ends this CPU's span. Never
/// attached: user space runs it on every CPU at each tick (BPF_PROG_TEST_RUN with
/// BPF_F_TEST_RUN_ON_CPU, an IPI into whatever that CPU is running), so each interval
/// ends at its tick even for a thread that holds its CPU for seconds.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn ledger_flush(_ctx: RawTracePointContext) -> u32 {
    flush_current(true);
    0
}

/// Runtime ledger. At sched_switch the kernel has run `update_curr()` for `prev`
/// (its runtime is current) and `set_next_task()` for `next` (it has not run yet).
#[inline(always)]
fn on_switch_runtime<R: TaskRead>(
    prev: *const u8,
    next: *const u8,
    prev_state: u64,
    offsets: &TaskOffsets,
) -> u32 {
    let Some(slot) = CPU_SLOTS.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's slot; sched_switch runs with interrupts off and the flush
    // runs in an IPI or with preemption off, so the two never interleave on a CPU.
    let slot = unsafe { &mut *slot };
    let prev_runtime_ns: u64 = R::read(prev, offsets.sum_exec_runtime);
    let next_runtime_ns: u64 = R::read(next, offsets.sum_exec_runtime);
    let owner = core::mem::replace(&mut slot.task, next as u64);
    let base_ns = core::mem::replace(&mut slot.base_runtime_ns, next_runtime_ns);
    slot.switches += 1;
    let tid: u32 = R::read(prev, offsets.pid);
    if tid != 0 {
        let slice_start = (owner == prev as u64).then_some(base_ns);
        let tgid: u32 = R::read(prev, offsets.tgid);
        if tgid == 0 {
            rare::tgid_zero(tid);
        }
        // A dead task's final switch leaves no entry to vouch for a successor.
        let owner = if prev_state & TASK_DEAD == 0 {
            prev as u64
        } else {
            0
        };
        charge_runtime(prev as u64, owner, prev_runtime_ns, slice_start, tgid, tid);
    }
    0
}

/// Charges a task its runtime up to `runtime_ns` from where it was last charged, so
/// a switch the ledger never saw only delays a charge: the kernel skips tracing
/// programs in rare windows (see docs/methodology.md). A task without an entry (seen
/// for the first time, or whose entry another tid took) is charged from the start of
/// its slice on this CPU, if this CPU saw it start. The entry is left to `owner`
/// (the task, or 0 once it is dead).
#[inline(always)]
fn charge_runtime(
    task: u64,
    owner: u64,
    runtime_ns: u64,
    slice_start: Option<u64>,
    tgid: u32,
    tid: u32,
) {
    let index = tid & LAST_CHARGED_MASK.load();
    let from_ns = match LAST_CHARGED.get_ptr_mut(index) {
        Some(entry) => {
            // SAFETY: an element of a plain array; a task runs on one CPU at a time,
            // so only the CPU running it writes its entry (a colliding tid just
            // takes the entry over, and both fall back to `slice_start`).
            let entry = unsafe { &mut *entry };
            let from = if entry.task == task {
                Some(entry.runtime_ns)
            } else {
                slice_start
            };
            entry.task = owner;
            entry.runtime_ns = runtime_ns;
            from
        }
        None => slice_start,
    };
    match from_ns {
        Some(from) if runtime_ns > from => charge(tgid, tid, runtime_ns - from),
        Some(_) => {}
        None => count_unowned(),
    }
}

/// A task is leaving for good: its entry must not vouch for a later task that gets
/// the same tid and the same task_struct address. Its last slice is then charged
/// from the slot the exit flush just set.
#[inline(always)]
pub(crate) fn forget_current(tid: u32) {
    if let Some(entry) = LAST_CHARGED.get_ptr_mut(tid & LAST_CHARGED_MASK.load()) {
        // SAFETY: an element of a plain array, see `charge_runtime`.
        unsafe { (*entry).task = 0 };
    }
}

#[inline(never)]
fn count_unowned() {
    if let Some(stats) = LEDGER_STATS.get_ptr_mut(0) {
        // SAFETY: this CPU's stats value.
        unsafe { (*stats).unowned_slices += 1 };
    }
}

/// Clock ledger. At sched_switch `current` is still the task being switched out: it
/// is charged with the time since the last switch (or flush) on this CPU.
#[inline(always)]
fn on_switch_clock() -> u32 {
    // SAFETY: helper without preconditions.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    let Some(slot) = CPU_SLOTS.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's slot, see `on_switch_runtime`.
    let slot = unsafe { &mut *slot };
    let since_ns = core::mem::replace(&mut slot.since_ns, now_ns);
    slot.switches += 1;
    if since_ns != 0 && now_ns > since_ns {
        let pid_tgid = bpf_get_current_pid_tgid();
        charge((pid_tgid >> 32) as u32, pid_tgid as u32, now_ns - since_ns);
    }
    0
}

/// Charges the running slice to `current` and starts a new one (tick flush and exit).
/// The runtime ledger charges the task's runtime as the kernel last updated it (at
/// its last tick or switch, as `/proc/PID/schedstat` shows it); the rest is charged
/// at the next flush or switch. A tick flush also closes this CPU's span.
#[inline(always)]
pub(crate) fn flush_current(tick: bool) {
    let Some(slot) = CPU_SLOTS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot, see `on_switch_runtime`.
    let slot = unsafe { &mut *slot };
    let offsets = TASK_OFFSETS.load();
    // SAFETY: helper without preconditions.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    if tick {
        let flushed_ns = core::mem::replace(&mut slot.flushed_ns, now_ns);
        if flushed_ns != 0
            && now_ns > flushed_ns
            && let Some((table, _)) = epoch_table()
        {
            table.span_ns += now_ns - flushed_ns;
        }
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    if offsets.runtime_ledger() {
        // SAFETY: helper without preconditions; the pointer is only probe-read.
        let task = unsafe { bpf_get_current_task() } as *const u8;
        let runtime_ns: u64 = Probed::read(task, offsets.sum_exec_runtime);
        let owner = core::mem::replace(&mut slot.task, task as u64);
        let base_ns = core::mem::replace(&mut slot.base_runtime_ns, runtime_ns);
        if tid != 0 {
            let slice_start = (owner == task as u64).then_some(base_ns);
            charge_runtime(task as u64, task as u64, runtime_ns, slice_start, tgid, tid);
        }
    } else {
        let since_ns = core::mem::replace(&mut slot.since_ns, now_ns);
        if since_ns != 0 && now_ns > since_ns {
            charge(tgid, tid, now_ns - since_ns);
        }
    }
    if let Some(stats) = LEDGER_STATS.get_ptr_mut(0) {
        // SAFETY: this CPU's stats value.
        unsafe { (*stats).flush_events += 1 };
    }
}

/// This CPU's table of the current epoch, and the epoch's parity.
#[inline(always)]
fn epoch_table() -> Option<(&'static mut CpuTable, u32)> {
    let parity = match LEDGER_EPOCH.get(0) {
        Some(epoch) => (*epoch & 1) as u32,
        None => 0,
    };
    let table = LEDGER_TABLES.get_ptr_mut(parity)?;
    // SAFETY: this CPU's table for the current epoch; only this CPU writes it, and
    // never from two programs at once (see `on_switch_runtime`).
    Some((unsafe { &mut *table }, parity))
}

/// Adds `ns` to (tgid, tid) in this CPU's table. The idle task (tid 0) is not charged:
/// idle time is what the span leaves.
#[inline(always)]
fn charge(tgid: u32, tid: u32, ns: u64) {
    if tid == 0 {
        return;
    }
    let Some((table, parity)) = epoch_table() else {
        return;
    };
    table.busy_ns += ns;
    let mask = SLOT_MASK.load() & (TABLE_SLOTS as u32 - 1);
    let home = tid.wrapping_mul(0x9E37_79B1) >> 16;
    for step in 0..PROBE_DEPTH {
        let index = (home.wrapping_add(step) & mask) as usize;
        let Some(entry) = table.entries.get_mut(index) else {
            return;
        };
        if entry.tid == tid && entry.tgid == tgid {
            entry.on_cpu_ns += ns;
            return;
        }
        if entry.tid == 0 {
            entry.tid = tid;
            entry.tgid = tgid;
            entry.on_cpu_ns = ns;
            return;
        }
    }
    charge_overflow(table, parity, tgid, tid, ns);
}

#[inline(never)]
fn charge_overflow(table: &mut CpuTable, parity: u32, tgid: u32, tid: u32, ns: u64) {
    table.overflow_charges += 1;
    let key = OverflowKey {
        epoch_parity: parity,
        tgid,
        tid,
        pad: 0,
    };
    if let Some(value) = LEDGER_OVERFLOW.get_ptr_mut(key) {
        // SAFETY: this CPU's value of a per-CPU hash element.
        unsafe { *value += ns };
        return;
    }
    if LEDGER_OVERFLOW.insert(key, ns, BPF_NOEXIST.into()).is_err() {
        table.dropped_slices += 1;
        table.dropped_ns += ns;
        rare::ledger_slice_dropped(tgid, tid, ns);
    }
}
