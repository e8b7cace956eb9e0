//! greentop's kernel side: the CPU-time ledger and process lifecycle events.
//!
//! Entry points are thin wrappers; the logic lives in `ledger` and `lifecycle`;
//! `bench` holds the reference programs `cargo xtask bench ebpf` compares against.
#![no_std]
#![no_main]

mod bench;
mod ledger;
mod lifecycle;
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
