//! The raw syscalls the ledger's tick needs that aya does not wrap: a global
//! membarrier, BPF_PROG_TEST_RUN on a chosen CPU, and CLOCK_BOOTTIME.

use std::time::Duration;

/// Every sched_switch program that read the old epoch started before our map write;
/// a global membarrier waits for an RCU grace period, which they all end within.
pub(super) fn wait_for_running_programs() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;
    // SAFETY: membarrier takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if rc != 0 {
        // No membarrier: programs run for well under a microsecond; give them 1 ms.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The `test` member of `union bpf_attr` (BPF_PROG_TEST_RUN), up to `batch_size`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

/// Runs a raw_tp program once on `cpu` (an IPI into whatever runs there).
pub(super) fn run_on_cpu(prog_fd: std::os::fd::RawFd, cpu: u32) -> std::io::Result<()> {
    const BPF_PROG_TEST_RUN: libc::c_long = 10;
    const BPF_F_TEST_RUN_ON_CPU: u32 = 1;
    let mut attr = TestRunAttr {
        prog_fd: prog_fd as u32,
        flags: BPF_F_TEST_RUN_ON_CPU,
        cpu,
        ..TestRunAttr::default()
    };
    // SAFETY: attr is a valid, initialised bpf_attr prefix of the size we pass, and
    // exclusively borrowed for the call: the kernel reads it, then writes the program's
    // return value and run time back into `retval` and `duration`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `CLOCK_BOOTTIME` now, the clock of the lifecycle events' timestamps.
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}
