//! The sched_switch ledger: charges every on-CPU slice to (tgid, tid) on its CPU.
//!
//! Hot path: one `ktime` read, two inlined array look-ups and a short probe of a
//! per-CPU open-addressed table. Only a thread that finds its neighbourhood full
//! touches a hash map. User space flips `LEDGER_EPOCH` each tick and drains the
//! table of the epoch that just ended, so its cost follows the threads that ran.
use agent_common::{
    CpuSlot, CpuTable, EPOCHS, LedgerStats, OverflowKey, PROBE_DEPTH, TABLE_SLOTS, TaskOffsets,
};
use aya_ebpf::{
    Global,
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{btf_tracepoint, map, raw_tracepoint, tracepoint},
    maps::{Array, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};

#[map(name = "LEDGER_TABLES")]
static LEDGER_TABLES: PerCpuArray<CpuTable> = PerCpuArray::with_max_entries(EPOCHS, 0);

#[map(name = "LEDGER_EPOCH")]
static LEDGER_EPOCH: Array<u64> = Array::with_max_entries(1, 0);

#[map(name = "CPU_SLOTS")]
static CPU_SLOTS: PerCpuArray<CpuSlot> = PerCpuArray::with_max_entries(1, 0);

/// Sized by the loader from the machine (pid_max); 1024 is only the object's default.
#[map(name = "LEDGER_OVERFLOW")]
static LEDGER_OVERFLOW: PerCpuHashMap<OverflowKey, u64> = PerCpuHashMap::with_max_entries(1024, 0);

#[map(name = "LEDGER_STATS")]
pub(crate) static LEDGER_STATS: PerCpuArray<LedgerStats> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "FLOOR_COUNT")]
static FLOOR_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The benchmark's reference: the textbook ledger, one LRU per-CPU hash update per switch.
#[map(name = "REFERENCE_TIMES")]
static REFERENCE_TIMES: LruPerCpuHashMap<u64, u64> = LruPerCpuHashMap::with_max_entries(32_768, 0);

#[map(name = "REFERENCE_SLOTS")]
static REFERENCE_SLOTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// How many table slots per CPU are in use (minus one); lowered only to test pressure.
#[unsafe(no_mangle)]
static SLOT_MASK: Global<u32> = Global::new(TABLE_SLOTS as u32 - 1);

/// Offsets of `pid` and `tgid` in `struct task_struct`, from the kernel's BTF.
#[unsafe(no_mangle)]
pub(crate) static TASK_OFFSETS: Global<TaskOffsets> = Global::new(TaskOffsets {
    pid: 0,
    tgid: 0,
    real_parent: 0,
    group_leader: 0,
    start_boottime: 0,
    pad: 0,
});

#[btf_tracepoint(function = "sched_switch")]
pub fn ledger_switch_btf(_ctx: BtfTracePointContext) -> u32 {
    on_switch()
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn ledger_switch_raw(_ctx: RawTracePointContext) -> u32 {
    on_switch()
}

#[tracepoint(category = "sched", name = "sched_switch")]
pub fn ledger_switch_tp(_ctx: TracePointContext) -> u32 {
    on_switch()
}

/// Cuts the slice in progress on the CPU it runs on. Never attached: user space runs
/// it on every CPU at each tick (BPF_PROG_TEST_RUN with BPF_F_TEST_RUN_ON_CPU, an IPI
/// into whatever that CPU is running), so each interval ends exactly at its tick even
/// for a thread that holds its CPU for seconds without a context switch.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn ledger_flush(_ctx: RawTracePointContext) -> u32 {
    flush_current();
    0
}

/// The benchmark's floor: the least a sched_switch program can do.
#[btf_tracepoint(function = "sched_switch")]
pub fn floor_switch_btf(_ctx: BtfTracePointContext) -> u32 {
    count_floor()
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn floor_switch_raw(_ctx: RawTracePointContext) -> u32 {
    count_floor()
}

#[btf_tracepoint(function = "sched_switch")]
pub fn reference_switch_btf(_ctx: BtfTracePointContext) -> u32 {
    reference_switch()
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn reference_switch_raw(_ctx: RawTracePointContext) -> u32 {
    reference_switch()
}

#[inline(always)]
fn reference_switch() -> u32 {
    // SAFETY: helper without preconditions.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    let Some(since) = REFERENCE_SLOTS.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's value; interrupts are off in sched_switch.
    let since_ns = unsafe { core::mem::replace(&mut *since, now_ns) };
    if since_ns == 0 {
        return 0;
    }
    let key = bpf_get_current_pid_tgid();
    let ns = now_ns - since_ns;
    match REFERENCE_TIMES.get_ptr_mut(key) {
        // SAFETY: this CPU's value of a per-CPU hash element.
        Some(total) => unsafe { *total += ns },
        None => {
            let _ = REFERENCE_TIMES.insert(key, ns, BPF_NOEXIST.into());
        }
    }
    0
}

/// The benchmark's second floor: a counter plus the clock read every ledger needs.
#[btf_tracepoint(function = "sched_switch")]
pub fn clock_switch_btf(_ctx: BtfTracePointContext) -> u32 {
    count_clock()
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn clock_switch_raw(_ctx: RawTracePointContext) -> u32 {
    count_clock()
}

#[inline(always)]
fn count_clock() -> u32 {
    // SAFETY: helper without preconditions.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    if let Some(count) = FLOOR_COUNT.get_ptr_mut(0) {
        // SAFETY: per-CPU value of this CPU; programs on one CPU do not nest here.
        unsafe { *count = now_ns };
    }
    0
}

#[inline(always)]
fn count_floor() -> u32 {
    if let Some(count) = FLOOR_COUNT.get_ptr_mut(0) {
        // SAFETY: per-CPU value of this CPU; programs on one CPU do not nest here.
        unsafe { *count += 1 };
    }
    0
}

/// At sched_switch `current` is still the task being switched out: it is charged
/// with the time since the last switch (or flush) on this CPU.
#[inline(always)]
fn on_switch() -> u32 {
    // SAFETY: helper without preconditions.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    let Some(slot) = CPU_SLOTS.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: this CPU's slot; sched_switch runs with interrupts off and the flush
    // runs in an IPI or with preemption off, so the two never interleave on a CPU.
    let slot = unsafe { &mut *slot };
    let since_ns = slot.since_ns;
    slot.since_ns = now_ns;
    slot.switches += 1;
    if since_ns != 0 && now_ns > since_ns {
        charge(bpf_get_current_pid_tgid(), now_ns - since_ns);
    }
    0
}

/// Charges the running slice to `current` now and starts a new one (flush and exit).
#[inline(always)]
pub(crate) fn flush_current() {
    // SAFETY: helper without preconditions.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    let Some(slot) = CPU_SLOTS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot, see `on_switch`.
    let slot = unsafe { &mut *slot };
    let since_ns = slot.since_ns;
    slot.since_ns = now_ns;
    if since_ns != 0 && now_ns > since_ns {
        charge(bpf_get_current_pid_tgid(), now_ns - since_ns);
    }
    if let Some(stats) = LEDGER_STATS.get_ptr_mut(0) {
        // SAFETY: this CPU's stats value.
        unsafe { (*stats).flush_events += 1 };
    }
}

#[inline(always)]
fn charge(pid_tgid: u64, ns: u64) {
    let tid = pid_tgid as u32;
    let tgid = (pid_tgid >> 32) as u32;
    let parity = match LEDGER_EPOCH.get(0) {
        Some(epoch) => (*epoch & 1) as u32,
        None => 0,
    };
    let Some(table) = LEDGER_TABLES.get_ptr_mut(parity) else {
        return;
    };
    // SAFETY: this CPU's table for the current epoch; only this CPU writes it.
    let table = unsafe { &mut *table };
    if tid == 0 {
        table.idle_ns += ns;
        return;
    }
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
    }
}
