//! Reference programs for `cargo xtask bench ebpf`: never attached by greentop itself.
//!
//! The floor (a per-CPU counter), the clock floor (the counter plus one
//! `bpf_ktime_get_ns`) and the textbook ledger (one LRU per-CPU hash update per switch)
//! are what the ledger's cost per event is measured against.
use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::{LruPerCpuHashMap, PerCpuArray},
    programs::{BtfTracePointContext, RawTracePointContext},
};

#[map(name = "FLOOR_COUNT")]
static FLOOR_COUNT: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The benchmark's reference: the textbook ledger, one LRU per-CPU hash update per switch.
#[map(name = "REFERENCE_TIMES")]
static REFERENCE_TIMES: LruPerCpuHashMap<u64, u64> = LruPerCpuHashMap::with_max_entries(32_768, 0);

#[map(name = "REFERENCE_SLOTS")]
static REFERENCE_SLOTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

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

/// The benchmark's second floor: a counter plus the clock read a clock ledger needs.
#[btf_tracepoint(function = "sched_switch")]
pub fn clock_switch_btf(_ctx: BtfTracePointContext) -> u32 {
    count_clock()
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn clock_switch_raw(_ctx: RawTracePointContext) -> u32 {
    count_clock()
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
