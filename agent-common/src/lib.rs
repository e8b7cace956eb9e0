//! Plain `#[repr(C)]` values shared by the eBPF programs and the user-space reader.
//!
//! Everything here crosses the kernel boundary byte for byte, so every type is
//! `Copy`, has no padding holes the kernel could leave uninitialised, and carries its
//! unit in its field names.
#![no_std]

/// Slots per CPU in one epoch's open-addressed thread table (a power of two).
pub const TABLE_SLOTS: usize = 1024;
/// How many neighbouring slots a thread may probe before it spills to the overflow map.
pub const PROBE_DEPTH: u32 = 4;
/// Number of epoch tables: the kernel writes one while user space drains the other.
pub const EPOCHS: u32 = 2;
/// Bytes of a task's `comm`.
pub const COMM_LEN: usize = 16;

/// One thread's on-CPU time on one CPU during one epoch. `tid == 0` marks a free slot
/// (the idle task, pid 0, is never charged: idle time is the rest of [`CpuTable::span_ns`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotEntry {
    pub tgid: u32,
    pub tid: u32,
    pub on_cpu_ns: u64,
}

/// One CPU's ledger for one epoch: what ran there, and for how long the epoch lasted.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CpuTable {
    /// Wall time (CLOCK_MONOTONIC) from the flush that opened this epoch on this CPU to
    /// the one that closed it; 0 when the CPU was not flushed. Idle = span − busy.
    pub span_ns: u64,
    /// Σ of the slices charged below (and dropped): task time only, never the idle task.
    pub busy_ns: u64,
    /// Slices of this epoch that spilled to the overflow map.
    pub overflow_charges: u64,
    /// Slices of this epoch lost because the overflow map was full, and their time.
    pub dropped_slices: u64,
    pub dropped_ns: u64,
    pub entries: [SlotEntry; TABLE_SLOTS],
}

impl CpuTable {
    pub const ZERO: CpuTable = CpuTable {
        span_ns: 0,
        busy_ns: 0,
        overflow_charges: 0,
        dropped_slices: 0,
        dropped_ns: 0,
        entries: [SlotEntry {
            tgid: 0,
            tid: 0,
            on_cpu_ns: 0,
        }; TABLE_SLOTS],
    };
}

/// Per-CPU state of the slice now running (an on-CPU slice starts and ends on one CPU),
/// and a cumulative count of context switches seen on that CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSlot {
    /// Runtime ledger: the `task_struct` the slice belongs to (its address, only ever
    /// compared), and its `se.sum_exec_runtime` when the slice started or was last cut.
    pub task: u64,
    pub base_runtime_ns: u64,
    /// Clock ledger: `bpf_ktime_get_ns` when the slice started or was last cut.
    pub since_ns: u64,
    pub switches: u64,
    /// `bpf_ktime_get_ns` of this CPU's last tick flush: where the next span starts.
    pub flushed_ns: u64,
}

/// What the runtime ledger last charged one task up to, in the `LAST_CHARGED` array at
/// index `tid & (entries − 1)`; `task` (the `task_struct` address) tells whose it is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LastCharged {
    pub task: u64,
    pub runtime_ns: u64,
}

/// Key of the overflow map used when a thread finds no free slot in its CPU's table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OverflowKey {
    pub epoch_parity: u32,
    pub tgid: u32,
    pub tid: u32,
    pub pad: u32,
}

/// Cumulative per-CPU counters the ledger keeps about itself; never reset. (Losses
/// of CPU time are counted per epoch in [`CpuTable`], so they balance exactly.)
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// In-progress slices cut by the periodic flush or by a thread's exit.
    pub flush_events: u64,
    /// Lifecycle events lost because the ring buffer was full.
    pub ringbuf_lost: u64,
    /// Runtime ledger: slices that ended on a CPU whose slot belonged to another task
    /// (their start was never seen), so their time could not be charged.
    pub unowned_slices: u64,
    pub pad: u64,
}

/// What a [`LifecycleEvent`] reports.
pub mod event_kind {
    pub const FORK: u32 = 1;
    pub const EXEC: u32 = 2;
    pub const EXIT: u32 = 3;
    /// A thread changed its name (prctl PR_SET_NAME, /proc/PID/comm): `comm` is new.
    pub const RENAME: u32 = 4;
}

/// A thread or process was created, exec'd, or exited. Sent through the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifecycleEvent {
    pub kind: u32,
    /// Thread group (process) of the task the event happened in (the parent for forks).
    pub tgid: u32,
    pub tid: u32,
    /// Forks: the child's thread id and thread group id (0 when unknown).
    pub child_tid: u32,
    pub child_tgid: u32,
    pub uid: u32,
    /// `CLOCK_BOOTTIME` time of the event, the clock of /proc/PID/stat starttime.
    pub ts_ns: u64,
    pub comm: [u8; COMM_LEN],
    /// Parent process: the forking process for forks, `real_parent->tgid` otherwise
    /// (0 when the task_struct offsets are unknown).
    pub ppid: u32,
    pub pad: u32,
    /// `start_boottime` of the process (the child's for forks, the group leader's
    /// otherwise): with the tgid, the process's identity; 0 when unknown.
    pub start_boottime_ns: u64,
}

/// Offsets into `struct task_struct`, found by user space in the kernel's BTF at load.
/// Zero means unknown: events then carry no child ids, parent or start time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskOffsets {
    pub pid: u32,
    pub tgid: u32,
    pub real_parent: u32,
    pub group_leader: u32,
    pub start_boottime: u32,
    /// `se.sum_exec_runtime`, the scheduler's own runtime of the task. Known (with
    /// `pid` and `tgid`): the ledger charges runtime deltas; 0: it reads the clock.
    pub sum_exec_runtime: u32,
}

impl TaskOffsets {
    /// All offsets known (none of these members is at offset 0 in any kernel).
    pub const fn complete(&self) -> bool {
        self.pid != 0
            && self.tgid != 0
            && self.real_parent != 0
            && self.group_leader != 0
            && self.start_boottime != 0
    }

    /// The ledger can charge the scheduler's runtime instead of reading the clock.
    pub const fn runtime_ledger(&self) -> bool {
        self.sum_exec_runtime != 0 && self.pid != 0 && self.tgid != 0
    }
}

/// Map and program names, shared so the loader and the programs cannot drift apart.
pub mod names {
    pub const TABLES: &str = "LEDGER_TABLES";
    pub const EPOCH: &str = "LEDGER_EPOCH";
    pub const SLOTS: &str = "CPU_SLOTS";
    pub const OVERFLOW: &str = "LEDGER_OVERFLOW";
    pub const STATS: &str = "LEDGER_STATS";
    pub const LAST_CHARGED: &str = "LAST_CHARGED";
    pub const EVENTS: &str = "LIFECYCLE_EVENTS";
    pub const FLOOR_COUNT: &str = "FLOOR_COUNT";
    pub const GLOBAL_SLOT_MASK: &str = "SLOT_MASK";
    pub const GLOBAL_TASK_OFFSETS: &str = "TASK_OFFSETS";
    pub const GLOBAL_LAST_CHARGED_MASK: &str = "LAST_CHARGED_MASK";
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all of these are `#[repr(C)]`, `Copy`, contain only integers and arrays
    // of integers, and have no implicit padding (every field is naturally aligned and
    // sizes are multiples of 8), so any byte pattern is a valid value.
    unsafe impl aya::Pod for SlotEntry {}
    unsafe impl aya::Pod for CpuTable {}
    unsafe impl aya::Pod for CpuSlot {}
    unsafe impl aya::Pod for OverflowKey {}
    unsafe impl aya::Pod for LedgerStats {}
    unsafe impl aya::Pod for LifecycleEvent {}
    unsafe impl aya::Pod for TaskOffsets {}
    unsafe impl aya::Pod for LastCharged {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_no_padding() {
        assert_eq!(size_of::<SlotEntry>(), 16);
        assert_eq!(size_of::<CpuTable>(), 40 + 16 * TABLE_SLOTS);
        assert_eq!(size_of::<OverflowKey>(), 16);
        assert_eq!(size_of::<LedgerStats>(), 32);
        assert_eq!(size_of::<CpuSlot>(), 40);
        assert_eq!(size_of::<LifecycleEvent>(), 64);
        assert_eq!(size_of::<TaskOffsets>(), 24);
        assert_eq!(size_of::<LastCharged>(), 16);
        // Per-CPU map values are limited to 32 KiB by the kernel (PCPU_MIN_UNIT_SIZE).
        assert!(size_of::<CpuTable>() <= 32 * 1024);
    }
}
