//! What ends the live view besides `q`: SIGTERM, SIGINT, SIGHUP, and the terminal
//! going away. A watcher thread waits in poll(2) on the terminal's descriptors and a
//! signal pipe, so a dead terminal ends greentop even when no signal comes (SIGHUP
//! ignored under `nohup` or `trap '' HUP`) and even while crossterm's reader spins on
//! it (crossterm-rs/crossterm#793: it re-reads a hung-up tty forever).
use std::io::{self, Read};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Why the view ended, when the user did not quit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, SIGINT or SIGHUP.
    Signal(i32),
    /// The terminal hung up or failed: nobody is watching any more.
    HangUp,
}

impl Stop {
    /// The shell's convention, 128 + the signal; a hang-up counts as SIGHUP.
    pub fn exit_code(self) -> u8 {
        let signal = match self {
            Stop::Signal(signal) => signal,
            Stop::HangUp => SIGHUP,
        };
        u8::try_from(128 + signal).unwrap_or(u8::MAX)
    }
}

/// How long the normal way out (restore the terminal, return from `main`) may take
/// before the watcher ends the process itself.
pub const GRACE: Duration = Duration::from_millis(500);

/// The signals that end the view. SIGHUP and SIGINT stay ignored when they were
/// ignored at start (`nohup`, a background job of a non-interactive shell), as the
/// user asked; the terminal watch still ends greentop when the terminal goes.
const STOP_SIGNALS: [i32; 3] = [SIGTERM, SIGINT, SIGHUP];

/// The signal handlers, installed: they record the signal and wake the watcher.
pub struct Signals {
    wake: UnixStream,
    last: Arc<AtomicUsize>,
}

/// Installs the handlers (signal-hook's, which chain with crossterm's).
pub fn install_signals() -> io::Result<Signals> {
    let (wake, writer) = UnixStream::pair()?;
    wake.set_nonblocking(true)?;
    // The handlers write here for the rest of the process's life.
    let writer = writer.into_raw_fd();
    let last = Arc::new(AtomicUsize::new(0));
    for signal in STOP_SIGNALS {
        if signal != SIGTERM && ignored_at_start(signal) {
            continue;
        }
        // Registered first, so the signal is recorded before the watcher wakes.
        signal_hook::flag::register_usize(signal, Arc::clone(&last), signal as usize)?;
        signal_hook::low_level::pipe::register_raw(signal, writer)?;
    }
    Ok(Signals { wake, last })
}

/// Whether `signal` was set to be ignored by whoever started us.
fn ignored_at_start(signal: i32) -> bool {
    // SAFETY: sigaction is plain data; all-zero is a valid value to be overwritten.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `current`.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
    rc == 0 && current.sa_sigaction == libc::SIG_IGN
}

/// Starts the watcher: it waits for a stop signal or a hang-up of any of `ttys`,
/// calls `notify` once with the reason, and if the process is still there `GRACE`
/// later (the UI thread stuck), restores the terminal's mode and exits with the
/// reason's code.
pub fn spawn_watcher(
    signals: Signals,
    ttys: Vec<RawFd>,
    notify: impl FnOnce(Stop) + Send + 'static,
) -> io::Result<()> {
    thread::Builder::new()
        .name("tty-watch".into())
        .spawn(move || {
            let Ok(stop) = wait_for_stop(&ttys, &signals) else {
                return; // poll(2) itself failed: nothing left to watch with
            };
            notify(stop);
            thread::sleep(GRACE);
            if stop != Stop::HangUp {
                crate::term::restore_mode_only();
            }
            std::process::exit(i32::from(stop.exit_code()));
        })
        .map(drop)
}

/// Blocks until a stop signal arrives or one of `ttys` reports POLLHUP, POLLERR or
/// POLLNVAL. A hung-up terminal reports POLLHUP on every descriptor open on it, and
/// so does a pty whose other side closed.
pub fn wait_for_stop(ttys: &[RawFd], signals: &Signals) -> io::Result<Stop> {
    // `events: 0`: only the conditions poll(2) always reports.
    let mut fds: Vec<libc::pollfd> = ttys
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        })
        .collect();
    fds.push(libc::pollfd {
        fd: signals.wake.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    loop {
        // SAFETY: `fds` is a live array of `count` pollfd structs.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, -1) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let gone = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        if fds[..ttys.len()].iter().any(|p| p.revents & gone != 0) {
            return Ok(Stop::HangUp);
        }
        if fds[ttys.len()].revents != 0 {
            let _ = (&signals.wake).read(&mut [0u8; 16]);
            let signal = signals.last.load(Ordering::SeqCst);
            return Ok(Stop::Signal(i32::try_from(signal).unwrap_or(SIGTERM)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::fs::File;
    use std::os::fd::FromRawFd;

    /// A pseudo-terminal: (controller, terminal).
    fn pty() -> (File, File) {
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname take the descriptor they
        // return or are given; ptsname's string is copied before the next call.
        unsafe {
            let controller = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(controller >= 0, "{}", io::Error::last_os_error());
            assert_eq!(libc::grantpt(controller), 0);
            assert_eq!(libc::unlockpt(controller), 0);
            let name = CStr::from_ptr(libc::ptsname(controller)).to_owned();
            let terminal = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
            assert!(terminal >= 0, "{}", io::Error::last_os_error());
            (File::from_raw_fd(controller), File::from_raw_fd(terminal))
        }
    }

    fn signals() -> (Signals, UnixStream) {
        let (wake, writer) = UnixStream::pair().unwrap();
        let last = Arc::new(AtomicUsize::new(SIGTERM as usize));
        (Signals { wake, last }, writer)
    }

    #[test]
    fn a_closed_pty_is_a_hang_up() {
        let (controller, terminal) = pty();
        let (signals, _writer) = signals();
        let fd = terminal.as_raw_fd();
        let watcher = thread::spawn(move || wait_for_stop(&[fd], &signals).unwrap());
        thread::sleep(Duration::from_millis(100));
        assert!(!watcher.is_finished(), "a live terminal is not a hang-up");
        drop(controller);
        assert_eq!(watcher.join().unwrap(), Stop::HangUp);
        drop(terminal);
    }

    #[test]
    fn a_woken_pipe_is_the_recorded_signal() {
        let (_controller, terminal) = pty();
        let (signals, mut writer) = signals();
        std::io::Write::write_all(&mut writer, &[1]).unwrap();
        let stop = wait_for_stop(&[terminal.as_raw_fd()], &signals).unwrap();
        assert_eq!(stop, Stop::Signal(SIGTERM));
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        for (stop, code) in [
            (Stop::Signal(SIGTERM), 143),
            (Stop::Signal(SIGINT), 130),
            (Stop::Signal(SIGHUP), 129),
            (Stop::HangUp, 129),
        ] {
            assert_eq!(stop.exit_code(), code, "{stop:?}");
        }
    }
}
