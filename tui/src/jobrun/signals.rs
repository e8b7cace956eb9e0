//! Signals sent to greentop reach the job's command: SIGINT, SIGTERM, SIGHUP,
//! SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH are forwarded, and greentop keeps running
//! until the command exits, so the summary is still printed.
//!
//! Signals the kernel sends (a key on the terminal, a hang-up, a resize) go to the
//! whole foreground process group, which the command shares with greentop: it has
//! them already, and they are not sent twice. Neither are signals the command sends
//! to greentop itself. A signal that was ignored when greentop started stays ignored,
//! and the command inherits that (as under `nohup`).
use std::io;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use libc::c_int;

/// Forwarded to the command.
pub const FORWARDED: [c_int; 7] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// The command's pid while it runs, else 0.
static COMMAND_PID: AtomicI32 = AtomicI32::new(0);
/// The last signal asking greentop to stop (INT, TERM, HUP, QUIT), else 0.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Signals (bit `1 << signal`) that came while the command was being started.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Installs the forwarding handlers.
pub fn install() -> io::Result<()> {
    for signal in FORWARDED {
        if ignored_at_start(signal) {
            continue;
        }
        // SAFETY: all-zero is a valid sigaction to fill in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a valid sigset_t to clear.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised; the handler is async-signal-safe.
        if unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Forgets signals held for a command about to start: call it before spawning.
pub fn hold() {
    PENDING.store(0, Ordering::SeqCst);
}

/// Forwards signals to `pid` from now on (0: to nobody), first those that came
/// since `hold` (the command may have run, and been signalled, before this).
pub fn forward_to(pid: i32) {
    COMMAND_PID.store(pid, Ordering::SeqCst);
    if pid > 0 {
        send_pending(pid);
    }
}

fn send_pending(pid: i32) {
    let bits = PENDING.swap(0, Ordering::SeqCst);
    for signal in FORWARDED {
        if bits & (1 << signal) != 0 {
            // SAFETY: kill is async-signal-safe and takes plain integers.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// The last INT, TERM, HUP or QUIT greentop received, from anyone.
pub fn stop_requested() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

extern "C" fn on_signal(signal: c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: errno is thread-local; kill below may change it.
    let saved_errno = unsafe { *libc::__errno_location() };
    if matches!(
        signal,
        libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT
    ) {
        STOP_SIGNAL.store(signal, Ordering::SeqCst);
    }
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    // si_code > 0: sent by the kernel to the process group, the command has it.
    if code <= 0 {
        let pid = COMMAND_PID.load(Ordering::SeqCst);
        if pid > 0 && sender != pid {
            // SAFETY: kill is async-signal-safe.
            unsafe { libc::kill(pid, signal) };
        } else if pid <= 0 {
            // The command may be starting: hold the signal for it. If it got its
            // pid meanwhile, whoever swaps PENDING first sends it, once.
            PENDING.fetch_or(1 << signal, Ordering::SeqCst);
            let pid = COMMAND_PID.load(Ordering::SeqCst);
            if pid > 0 {
                send_pending(pid);
            }
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

fn ignored_at_start(signal: c_int) -> bool {
    // SAFETY: all-zero is a valid sigaction to read into.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
    rc == 0 && current.sa_sigaction == libc::SIG_IGN
}
