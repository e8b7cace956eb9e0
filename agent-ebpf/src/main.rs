//! greentop's kernel side: the CPU-time ledger, process lifecycle events and GPU
//! activity (libcuda uprobes, NVIDIA ioctls).
//!
//! Entry points are thin wrappers; the logic lives in `ledger`, `lifecycle` and `gpu`;
//! `rare` logs their rare events (aya-log); `bench` holds the reference programs
//! `cargo xtask bench ebpf` compares against.
#![no_std]
#![no_main]

mod bench;
mod gpu;
mod ledger;
mod lifecycle;
mod rare;
mod task;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the eBPF verifier rejects any program with a reachable panic path, so a
    // loaded program can never get here.
    unsafe { core::hint::unreachable_unchecked() }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
