//! The terminal: raw mode, alternate screen and mouse capture on the way in, and a
//! Drop guard plus a panic hook that put the terminal back on every way out.
use std::io::{Stdout, stdout};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

pub type Term = Terminal<CrosstermBackend<Stdout>>;

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
pub fn enter() -> anyhow::Result<(Term, TerminalGuard)> {
    install_panic_hook();
    enable_raw_mode().map_err(|e| anyhow::anyhow!("terminal raw mode: {e}"))?;
    let guard = TerminalGuard;
    execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)
        .map_err(|e| anyhow::anyhow!("alternate screen: {e}"))?;
    let mut terminal = Terminal::new(CrosstermBackend::new(stdout()))
        .map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    terminal
        .hide_cursor()
        .map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    terminal
        .clear()
        .map_err(|e| anyhow::anyhow!("terminal: {e}"))?;
    Ok((terminal, guard))
}
