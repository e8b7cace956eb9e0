//! Reading `task_struct` members at the byte offsets user space found in the kernel's
//! BTF (`TASK_OFFSETS`, a read-only global the verifier sees as constants).

/// How a program may read a task's memory.
pub(crate) trait TaskRead {
    /// The `T` at `offset` bytes into `task`; `T::default()` when unreadable.
    fn read<T: Copy + Default>(task: *const u8, offset: u32) -> T;
}

/// Plain loads: a `tp_btf` argument is a typed kernel pointer the verifier checks each
/// load against (and a fault reads as 0), so no helper call is needed.
pub(crate) struct Direct;

/// `bpf_probe_read_kernel`: raw tracepoint arguments and `current` are untyped.
pub(crate) struct Probed;

impl TaskRead for Direct {
    #[inline(always)]
    fn read<T: Copy + Default>(task: *const u8, offset: u32) -> T {
        // SAFETY: `task` is a BTF-typed task_struct pointer and `offset` a member's
        // offset from the running kernel's BTF; the verifier rejects the program if
        // the load does not fall on that member, and faults are caught by the JIT.
        unsafe { core::ptr::read_volatile(task.add(offset as usize).cast::<T>()) }
    }
}

impl TaskRead for Probed {
    #[inline(always)]
    fn read<T: Copy + Default>(task: *const u8, offset: u32) -> T {
        read_at(task, offset)
    }
}

/// Reads a `T` at `offset` bytes into a kernel object; 0 when unknown or unreadable.
#[inline(always)]
pub(crate) fn read_at<T: Default>(base: *const u8, offset: u32) -> T {
    if base.is_null() || offset == 0 {
        return T::default();
    }
    // SAFETY: bpf_probe_read_kernel checks the address; a bad read returns Err.
    unsafe {
        aya_ebpf::helpers::bpf_probe_read_kernel(base.add(offset as usize) as *const T)
            .unwrap_or_default()
    }
}
