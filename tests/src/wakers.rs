//! `gt-load wakers`: many processes that each wake HZ times a second for WORK_US of
//! CPU — data-loader workers, RPC servers, inference front-ends: short slices, many
//! context switches.
//!
//! Gated (`--gated`), the run is driven over stdin/stdout so an oracle can read every
//! process's schedstat while all of them are blocked: the parent prints
//! `pids P1 P2 …`, waits for a `go` line, lets the workers run, prints `done` once
//! every worker has finished its wake-ups and is blocking, and waits for `exit` (or
//! EOF) before the workers exit. Workers die with the parent (PR_SET_PDEATHSIG).
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub processes: usize,
    pub secs: f64,
    pub work: Duration,
    pub hz: f64,
    pub gated: bool,
}

/// Runs the plan in forked workers; returns when they have all been reaped.
pub fn run(plan: Plan) -> std::io::Result<()> {
    let (start_r, start_w) = pipe()?;
    let (done_r, done_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    let parent = std::process::id() as libc::pid_t;
    let mut pids = Vec::with_capacity(plan.processes);
    for index in 0..plan.processes {
        // SAFETY: gt-load is single-threaded here, so the child may run any code.
        match unsafe { libc::fork() } {
            -1 => return Err(std::io::Error::last_os_error()),
            0 => {
                drop((start_w, done_r, exit_w));
                worker(plan, index, parent, &start_r, &done_w, &exit_r);
                // SAFETY: ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(0) }
            }
            pid => pids.push(pid),
        }
    }
    drop((start_r, done_w, exit_r));
    if plan.gated {
        let list: Vec<String> = pids.iter().map(ToString::to_string).collect();
        let mut out = std::io::stdout().lock();
        writeln!(out, "pids {}", list.join(" "))?;
        out.flush()?;
        wait_for_line("go");
        drop(start_w);
        read_bytes(&done_r, plan.processes);
        writeln!(out, "done")?;
        out.flush()?;
        wait_for_line("exit");
    } else {
        drop(start_w);
    }
    drop(exit_w);
    for pid in pids {
        let mut status = 0;
        // SAFETY: pid is our child; status is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    Ok(())
}

/// One worker: wait for the start, wake `hz` times a second for `secs`, spinning for
/// `work` each time, then report and block until told to exit.
fn worker(
    plan: Plan,
    index: usize,
    parent: libc::pid_t,
    start: &OwnedFd,
    done: &OwnedFd,
    exit: &OwnedFd,
) {
    // SAFETY: prctl with integer arguments; getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    if plan.gated {
        read_bytes(start, 1);
    }
    let period_ns = (1e9 / plan.hz) as u64;
    let wakeups = (plan.secs * plan.hz).round() as u64;
    let phase_ns = period_ns * index as u64 / plan.processes.max(1) as u64;
    let origin_ns = monotonic_ns() + phase_ns;
    for k in 0..wakeups {
        sleep_until(origin_ns + k * period_ns);
        let until = monotonic_ns() + plan.work.as_nanos() as u64;
        let mut x = 0u64;
        while monotonic_ns() < until {
            for i in 0..64u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
    }
    if plan.gated {
        // SAFETY: writes one byte from a valid buffer to our pipe end.
        unsafe { libc::write(done.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        read_bytes(exit, 1);
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = std::io::pipe()?;
    Ok((r.into(), w.into()))
}

/// Reads until `n` bytes arrived or the pipe reports EOF or an error.
fn read_bytes(fd: &OwnedFd, n: usize) {
    let mut left = n;
    let mut buf = [0u8; 256];
    while left > 0 {
        let want = left.min(buf.len());
        // SAFETY: reads at most `want` bytes into a buffer of at least that size.
        let got = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), want) };
        match got {
            n if n > 0 => left -= n as usize,
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// Blocks until stdin gives `word` on a line of its own, or ends.
fn wait_for_line(word: &str) {
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(line) if line.trim() == word => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: ts is valid; an absolute sleep needs no remaining-time output.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}
