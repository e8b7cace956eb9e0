//! `gt-load sleepers` and `gt-load idle-threads`: processes and threads that exist but
//! do not run — what a collector that scans every process or thread pays for, and a
//! ledger that follows only what ran does not.
use std::time::Duration;

/// Stack of each idle thread: they only sleep, and 10,000 default 2 MiB stacks
/// would reserve 20 GiB of address space.
const IDLE_STACK_BYTES: usize = 64 * 1024;

/// Forks `n` children that sleep for `secs` (they die with the parent), then reaps
/// them.
pub fn sleepers(n: usize, secs: Duration) {
    let parent = std::process::id() as libc::pid_t;
    let mut pids = Vec::with_capacity(n);
    for _ in 0..n {
        // SAFETY: gt-load is single-threaded here, so the child may run any code.
        match unsafe { libc::fork() } {
            -1 => break,
            0 => {
                // SAFETY: prctl with integer arguments; getppid has no preconditions.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                }
                std::thread::sleep(secs);
                // SAFETY: ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            pid => pids.push(pid),
        }
    }
    println!("sleepers {}", pids.len());
    for pid in pids {
        let mut status = 0;
        // SAFETY: pid is our child; status is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}

/// Starts `n` threads that sleep for `secs` beside the main thread, prints
/// `threads N` once all exist, and returns when they have ended.
pub fn threads(n: usize, secs: Duration) -> usize {
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        let spawned = std::thread::Builder::new()
            .stack_size(IDLE_STACK_BYTES)
            .spawn(move || std::thread::sleep(secs));
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(err) => {
                eprintln!("gt-load idle-threads: thread {}: {err}", handles.len());
                break;
            }
        }
    }
    let started = handles.len();
    println!("threads {started}");
    for handle in handles {
        let _ = handle.join();
    }
    started
}
