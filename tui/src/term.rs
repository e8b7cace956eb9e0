//! The terminal: raw mode, alternate screen and mouse capture on the way in, and a
//! Drop guard plus a panic hook that put the terminal back on every way out. Also
//! the terminal's file descriptors, which `stop` watches for a hang-up.
use std::fs::File;
use std::io::{self, Stdout, stdout};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// The terminal's descriptors, chosen as crossterm chooses them: keys come from stdin
/// when it is a terminal, else from `/dev/tty`; the screen is drawn on stdout.
pub struct TtyFds {
    /// Where keys are read.
    pub input: RawFd,
    /// stdout, when it is a terminal.
    pub output: Option<RawFd>,
    /// Keeps `/dev/tty` open when `input` is it.
    _dev_tty: Option<File>,
}

impl TtyFds {
    /// Finds the terminal; fails when there is none (e.g. no controlling terminal).
    pub fn open() -> io::Result<TtyFds> {
        // SAFETY: isatty(3) only inspects the descriptor number.
        let is_tty = |fd: RawFd| unsafe { libc::isatty(fd) } == 1;
        let (input, dev_tty) = if is_tty(libc::STDIN_FILENO) {
            (libc::STDIN_FILENO, None)
        } else {
            let file = File::options().read(true).write(true).open("/dev/tty")?;
            (file.as_raw_fd(), Some(file))
        };
        Ok(TtyFds {
            input,
            output: is_tty(libc::STDOUT_FILENO).then_some(libc::STDOUT_FILENO),
            _dev_tty: dev_tty,
        })
    }

    /// Every descriptor whose hang-up means nobody is watching.
    pub fn watched(&self) -> Vec<RawFd> {
        std::iter::once(self.input).chain(self.output).collect()
    }
}

/// Restores the terminal when dropped, whether the loop returned or failed.
pub struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back: best effort, as this also runs while panicking.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// The terminal settings before raw mode, with the descriptor they belong to.
static SAVED_MODE: OnceLock<(RawFd, libc::termios)> = OnceLock::new();

/// Puts back the terminal settings from before raw mode with one tcsetattr(3), taking
/// no lock and writing nothing, so it cannot block: for ending the process when the
/// UI thread is stuck. The screen may stay on the alternate buffer.
pub fn restore_mode_only() {
    if let Some((fd, mode)) = SAVED_MODE.get() {
        // SAFETY: `mode` is a termios tcgetattr filled for this descriptor.
        unsafe { libc::tcsetattr(*fd, libc::TCSANOW, mode) };
    }
}

fn save_mode(fd: RawFd) {
    // SAFETY: termios is plain data; all-zero is a valid value to be overwritten.
    let mut mode: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes one termios into `mode`, which lives for the call.
    if unsafe { libc::tcgetattr(fd, &mut mode) } == 0 {
        let _ = SAVED_MODE.set((fd, mode));
    }
}

/// Restores the terminal before the default hook prints the panic, so the message
/// is readable on the normal screen.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Enters raw mode and the alternate screen. Ctrl-C arrives as a key (raw mode),
/// so quitting with it goes through the guard too.
pub fn enter(tty: &TtyFds) -> anyhow::Result<(Term, TerminalGuard)> {
    install_panic_hook();
    save_mode(tty.input);
    enable_raw_mode().map_err(|e| anyhow::anyhow!("terminal raw mode: {e}"))?;
    let guard = TerminalGuard;
    execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)
        .map_err(|e| anyhow::anyhow!("alternate screen: {e}"))?;
    let mut terminal = Terminal::new(CrosstermBackend::new(stdout()))
        .map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    terminal
        .hide_cursor()
        .map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    // The last cursor-position query (`clear` asks the terminal): after this only the
    // input thread reads the terminal.
    terminal
        .clear()
        .map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    Ok((terminal, guard))
}
