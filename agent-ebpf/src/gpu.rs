//! GPU activity per thread: CUDA driver calls counted by uprobes on libcuda (context
//! switches, launches, syncs), the time blocked in sync calls by their uretprobes, and
//! ioctls on NVIDIA character devices from the `sys_enter` tracepoint.
//!
//! Counters are cumulative in a per-CPU hash keyed by (tgid, tid): a thread's value on
//! one CPU is only written by that thread (a task runs in one place at a time), so no
//! atomics are needed; user space sums the CPUs and takes deltas.
use agent_common::{FileOffsets, GPU_MAJOR_SLOTS, GpuCounters, GpuStats, GpuThreadKey, SyncStart};
use aya_ebpf::{
    Global,
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_ktime_get_ns},
    macros::{btf_tracepoint, map, uprobe, uretprobe},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::{BtfTracePointContext, ProbeContext, RetProbeContext},
};

use crate::rare;

/// Sized by the loader; 16 Ki threads is only the object's default.
#[map(name = "GPU_THREADS")]
static GPU_THREADS: PerCpuHashMap<GpuThreadKey, GpuCounters> =
    PerCpuHashMap::with_max_entries(16_384, 0);

/// Sync calls in progress, by tid. A hash, not a per-CPU slot: a thread blocked in a
/// sync call may return on another CPU.
#[map(name = "GPU_SYNC_STARTS")]
static GPU_SYNC_STARTS: HashMap<u32, SyncStart> = HashMap::with_max_entries(16_384, 0);

/// Majors of the NVIDIA character devices (0: unused slot). Written by user space:
/// `nvidia-uvm`'s major is dynamic and its module may load after greentop.
#[map(name = "GPU_MAJORS")]
static GPU_MAJORS: Array<[u32; GPU_MAJOR_SLOTS]> = Array::with_max_entries(1, 0);

#[map(name = "GPU_STATS")]
static GPU_STATS: PerCpuArray<GpuStats> = PerCpuArray::with_max_entries(1, 0);

/// From the kernel's BTF at load; a read-only global the verifier sees as constants.
#[unsafe(no_mangle)]
static FILE_OFFSETS: Global<FileOffsets> = Global::new(FileOffsets {
    files: 0,
    fdt: 0,
    max_fds: 0,
    fd_array: 0,
    f_inode: 0,
    i_rdev: 0,
    i_mode: 0,
    pad: 0,
});

#[cfg(bpf_target_arch = "x86_64")]
const SYS_IOCTL: i64 = 16;
#[cfg(bpf_target_arch = "aarch64")]
const SYS_IOCTL: i64 = 29;
/// Other architectures: never matches, the counter stays at 0.
#[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
const SYS_IOCTL: i64 = -1;

/// Where the first syscall argument (the fd) sits in `struct pt_regs`.
#[cfg(bpf_target_arch = "x86_64")]
const FD_REG_OFFSET: usize = core::mem::offset_of!(aya_ebpf::bindings::pt_regs, rdi);
#[cfg(not(bpf_target_arch = "x86_64"))]
const FD_REG_OFFSET: usize = 0;

/// The kernel's `dev_t`: 12 bits of major above 20 bits of minor.
const MINOR_BITS: u32 = 20;
const S_IFMT: u16 = 0o170_000;
const S_IFCHR: u16 = 0o020_000;

/// Which counter a hit adds to.
#[derive(Clone, Copy)]
enum Hit {
    CtxSwitch,
    Launch,
    Sync,
    SyncWait(u64),
    Ioctl,
}

#[uprobe]
pub fn gpu_ctx(_ctx: ProbeContext) -> u32 {
    count(Hit::CtxSwitch);
    0
}

#[uprobe]
pub fn gpu_launch(_ctx: ProbeContext) -> u32 {
    count(Hit::Launch);
    0
}

#[uprobe]
pub fn gpu_sync(_ctx: ProbeContext) -> u32 {
    sync_enter();
    0
}

#[uretprobe]
pub fn gpu_sync_ret(_ctx: RetProbeContext) -> u32 {
    sync_return();
    0
}

/// Only as a BTF tracepoint: the fd-table walk needs offsets from the kernel's BTF
/// anyway, so without BTF there is nothing a raw tracepoint could do.
#[btf_tracepoint(function = "sys_enter")]
pub fn gpu_ioctl_btf(ctx: BtfTracePointContext) -> u32 {
    let id: i64 = ctx.arg(1);
    if id != SYS_IOCTL {
        return 0;
    }
    let regs: *const u8 = ctx.arg(0);
    // SAFETY: `regs` is the tracepoint's BTF-typed `struct pt_regs *`; the verifier
    // checks this load against the member at FD_REG_OFFSET, and faults read as 0.
    let fd = unsafe { core::ptr::read_volatile(regs.add(FD_REG_OFFSET).cast::<u64>()) };
    on_ioctl(fd as u32)
}

/// Counts the ioctl if `fd` is an NVIDIA character device: follows `current`'s fd
/// table to the file's inode and checks its major. The walk down to the fd array is
/// plain loads on BTF-typed pointers (the verifier checks each against the kernel's
/// BTF, a fault reads 0); the array slot, the file and the inode are three probe
/// reads, and only ioctls get this far.
#[inline(always)]
fn on_ioctl(fd: u32) -> u32 {
    let offsets = FILE_OFFSETS.load();
    if !offsets.complete() {
        return 0;
    }
    // SAFETY: helper without preconditions; it returns a BTF-typed task_struct pointer.
    let task = unsafe { bpf_get_current_task_btf() } as *const u8;
    let files: *const u8 = load(task, offsets.files);
    if files.is_null() {
        return 0;
    }
    let fdt: *const u8 = load(files, offsets.fdt);
    if fdt.is_null() {
        return 0;
    }
    let max_fds: u32 = load(fdt, offsets.max_fds);
    if fd >= max_fds {
        return 0;
    }
    let fd_array: *const u8 = load(fdt, offsets.fd_array);
    let slot = (fd as usize).wrapping_mul(core::mem::size_of::<u64>());
    // Only the address is computed here; `probe` reads it with a checked helper.
    let file: *const u8 = probe(fd_array.wrapping_add(slot), 0);
    let inode: *const u8 = probe(file, offsets.f_inode);
    let rdev: u32 = probe(inode, offsets.i_rdev);
    if rdev == 0 || !is_nvidia_major(rdev >> MINOR_BITS) {
        return 0;
    }
    let mode: u16 = probe(inode, offsets.i_mode);
    if mode & S_IFMT == S_IFCHR {
        count(Hit::Ioctl);
    }
    0
}

/// A plain load of the member at `offset` of a BTF-typed kernel pointer.
#[inline(always)]
fn load<T: Copy>(base: *const u8, offset: u32) -> T {
    // SAFETY: `base` is a BTF-typed pointer (from bpf_get_current_task_btf, or loaded
    // from one) and `offset` a member's offset from the running kernel's BTF: the
    // verifier rejects the program unless the load falls on that member, and a fault
    // reads as 0.
    unsafe { core::ptr::read_volatile(base.wrapping_add(offset as usize).cast::<T>()) }
}

#[inline(always)]
fn is_nvidia_major(major: u32) -> bool {
    let Some(majors) = GPU_MAJORS.get(0) else {
        return false;
    };
    let mut i = 0;
    while i < GPU_MAJOR_SLOTS {
        if majors[i] != 0 && majors[i] == major {
            return true;
        }
        i += 1;
    }
    false
}

/// A sync call starts: counted, and timed unless it is nested in another one.
#[inline(always)]
fn sync_enter() {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tid = pid_tgid as u32;
    if let Some(start) = GPU_SYNC_STARTS.get_ptr_mut(tid) {
        // SAFETY: only this thread touches its own entry, and it is here.
        unsafe { (*start).depth = (*start).depth.saturating_add(1) };
        return;
    }
    count(Hit::Sync);
    let start = SyncStart {
        // SAFETY: helper without preconditions.
        start_ns: unsafe { bpf_ktime_get_ns() },
        depth: 1,
        tgid: (pid_tgid >> 32) as u32,
    };
    if GPU_SYNC_STARTS
        .insert(tid, start, BPF_NOEXIST.into())
        .is_err()
    {
        stats(|s| s.untimed_syncs += 1);
        rare::gpu_sync_full(tid);
    }
}

/// A sync call returns: the outermost one charges the time since it started.
#[inline(always)]
fn sync_return() {
    let tid = bpf_get_current_pid_tgid() as u32;
    let Some(start) = GPU_SYNC_STARTS.get_ptr_mut(tid) else {
        return;
    };
    // SAFETY: only this thread touches its own entry, and it is here.
    let start = unsafe { &mut *start };
    if start.depth > 1 {
        start.depth -= 1;
        return;
    }
    // SAFETY: helper without preconditions.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    let wait_ns = now_ns.saturating_sub(start.start_ns);
    let _ = GPU_SYNC_STARTS.remove(tid);
    count(Hit::SyncWait(wait_ns));
}

/// Adds one hit to the calling thread's counters on this CPU.
#[inline(always)]
fn count(hit: Hit) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let key = GpuThreadKey {
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
    };
    if let Some(counters) = GPU_THREADS.get_ptr_mut(key) {
        // SAFETY: this thread's value on this CPU: programs keep the CPU (migration
        // is disabled) and no other thread writes this key.
        apply(unsafe { &mut *counters }, hit);
        return;
    }
    let mut counters = GpuCounters::default();
    apply(&mut counters, hit);
    if GPU_THREADS
        .insert(key, counters, BPF_NOEXIST.into())
        .is_err()
    {
        stats(|s| s.dropped_hits += 1);
        rare::gpu_threads_full(key.tid);
    }
}

#[inline(always)]
fn apply(counters: &mut GpuCounters, hit: Hit) {
    match hit {
        Hit::CtxSwitch => counters.ctx_switches += 1,
        Hit::Launch => counters.launches += 1,
        Hit::Sync => counters.syncs += 1,
        Hit::SyncWait(ns) => counters.sync_wait_ns += ns,
        Hit::Ioctl => counters.ioctls += 1,
    }
}

/// Loss counters; a rare lost update between two preempted uprobe programs on one CPU
/// only under-reports a loss counter.
#[inline(never)]
fn stats(update: impl FnOnce(&mut GpuStats)) {
    if let Some(stats) = GPU_STATS.get_ptr_mut(0) {
        // SAFETY: this CPU's stats value.
        update(unsafe { &mut *stats });
    }
}

/// A `T` at `offset` bytes into a kernel object; `T::default()` when `base` is null or
/// the read faults.
#[inline(always)]
fn probe<T: Default>(base: *const u8, offset: u32) -> T {
    if base.is_null() {
        return T::default();
    }
    // SAFETY: bpf_probe_read_kernel checks the address; a bad read returns Err.
    unsafe {
        aya_ebpf::helpers::bpf_probe_read_kernel(base.wrapping_add(offset as usize).cast::<T>())
            .unwrap_or_default()
    }
}
