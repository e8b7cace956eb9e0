//! The live view's event loop. The feed (`feed.rs`: the in-process pipeline, an
//! agent's socket or a log) sends the Intervals; an input thread reads the terminal; the
//! watcher (`stop`) reports signals and a dead terminal. All three send into one
//! channel; the UI thread blocks on it, applies messages with `update`, carries out
//! effects and redraws.
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use agent::cli::UsageError;
use ratatui::crossterm::event::{self, Event};

use crate::app::{App, Effect, Msg, Signal, update};
use crate::feed::{Feed, FeedKind};
use crate::keys::event_to_msg;
use crate::state::feed::FeedControl;
use crate::stop::{Stop, install_signals, spawn_watcher};
use crate::term::{Term, TtyFds, enter};
use crate::view::Screen;

/// What the UI thread waits for.
enum Incoming {
    App(Msg),
    Input(Event),
    Stop(Stop),
}

/// How the live view ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// `q`, F10 or Ctrl-C.
    Quit,
    Stopped(Stop),
}

impl Ended {
    /// 0 after quitting; 128 + the signal after a signal or a hang-up.
    pub fn exit_code(self) -> u8 {
        match self {
            Ended::Quit => 0,
            Ended::Stopped(stop) => stop.exit_code(),
        }
    }
}

/// Runs `greentop` live until the user quits, a signal comes or the terminal goes.
pub fn run_live(kind: FeedKind, delay_s: f64) -> anyhow::Result<Ended> {
    // SAFETY: isatty(3) only inspects the descriptor number.
    if unsafe { libc::isatty(libc::STDOUT_FILENO) } != 1 {
        let why = "stdout is not a terminal: the live view draws on one; use --batch for a file or a pipe";
        return Err(UsageError(why.into()).into());
    }
    let tty = TtyFds::open().map_err(|e| {
        UsageError(format!(
            "the live view needs a terminal (/dev/tty: {e}); use --batch"
        ))
    })?;
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(delay_s, std::process::id(), color);
    app.feed = kind.state();
    let (tx, rx) = channel();
    let data = tx.clone();
    let deliver = Box::new(move |msg| data.send(Incoming::App(msg)).is_ok());
    let feed = Feed::start(kind, app.refresh_s, deliver)?;
    let signals = install_signals().map_err(|e| anyhow::anyhow!("signal handlers: {e}"))?;
    let (mut terminal, _guard) = enter(&tty)?;
    let stop = tx.clone();
    spawn_watcher(signals, tty.watched(), move |reason| {
        let _ = stop.send(Incoming::Stop(reason));
    })
    .map_err(|e| anyhow::anyhow!("starting the terminal watcher: {e}"))?;
    spawn_input(tty.input, tx)?;
    let size = terminal
        .size()
        .map_err(|e| anyhow::anyhow!("terminal size: {e}"))?;
    update(
        &mut app,
        Msg::Resize {
            width: size.width,
            height: size.height,
        },
    );
    ui_loop(&mut terminal, &mut app, &rx, &feed)
}

/// Starts the thread that reads keys, mouse and resizes.
fn spawn_input(tty: RawFd, tx: Sender<Incoming>) -> anyhow::Result<()> {
    let (winch, writer) =
        UnixStream::pair().map_err(|e| anyhow::anyhow!("resize notification: {e}"))?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGWINCH, writer)
        .map_err(|e| anyhow::anyhow!("resize notification: {e}"))?;
    thread::Builder::new()
        .name("input".into())
        .spawn(move || read_input(tty, &winch, &tx))
        .map(drop)
        .map_err(|e| anyhow::anyhow!("starting the input thread: {e}"))
}

/// Waits in poll(2) until the terminal has input or was resized, and only then lets
/// crossterm read and parse what is there. On a hang-up (POLLHUP, POLLERR) it stops
/// instead: crossterm's reader would spin on the dead terminal forever.
fn read_input(tty: RawFd, winch: &UnixStream, tx: &Sender<Incoming>) {
    let ready = libc::POLLIN;
    let gone = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    let mut fds = [
        libc::pollfd {
            fd: tty,
            events: ready,
            revents: 0,
        },
        libc::pollfd {
            fd: winch.as_raw_fd(),
            events: ready,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a live array of two pollfd structs.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if rc < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if rc < 0 || fds[0].revents & gone != 0 {
            let _ = tx.send(Incoming::Stop(Stop::HangUp));
            return;
        }
        let mut events = Vec::new();
        if fds[1].revents & ready != 0 {
            let _ = (&*winch).read(&mut [0u8; 64]);
            if let Ok((width, height)) = ratatui::crossterm::terminal::size() {
                events.push(Event::Resize(width, height));
            }
        }
        while fds[0].revents & ready != 0 && event::poll(Duration::ZERO).unwrap_or(false) {
            match event::read() {
                Ok(event) => events.push(event),
                Err(_) => break,
            }
        }
        for event in events {
            if tx.send(Incoming::Input(event)).is_err() {
                return;
            }
        }
    }
}

fn ui_loop(
    terminal: &mut Term,
    app: &mut App,
    incoming: &Receiver<Incoming>,
    feed: &Feed,
) -> anyhow::Result<Ended> {
    loop {
        if let Err(err) = terminal.draw(|frame| frame.render_widget(Screen(app), frame.area())) {
            // A terminal that hung up fails the draw; the watcher says so right away.
            return match stop_pending(incoming) {
                Some(stop) => Ok(Ended::Stopped(stop)),
                None => Err(anyhow::anyhow!("drawing: {err}")),
            };
        }
        let mut dirty = false;
        while !dirty {
            let first = incoming
                .recv()
                .map_err(|_| anyhow::anyhow!("every input of the live view ended"))?;
            // Apply everything already waiting before drawing once.
            for next in std::iter::once(first).chain(incoming.try_iter()) {
                match next {
                    Incoming::Stop(stop) => return Ok(Ended::Stopped(stop)),
                    Incoming::Input(event) => {
                        if let Some(msg) = event_to_msg(app, &event) {
                            dispatch(app, msg, feed);
                            dirty = true;
                        }
                    }
                    Incoming::App(msg) => {
                        // A paused replay only sends what a seek asked for.
                        let shown = !app.paused || app.feed.is_replay();
                        dispatch(app, msg, feed);
                        dirty |= shown;
                    }
                }
                if app.quit {
                    return Ok(Ended::Quit);
                }
            }
        }
    }
}

/// A stop among the messages that arrive within a moment, if any.
fn stop_pending(incoming: &Receiver<Incoming>) -> Option<Stop> {
    let deadline = Instant::now() + Duration::from_millis(200);
    while let Ok(next) = incoming.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Incoming::Stop(stop) = next {
            return Some(stop);
        }
    }
    None
}

/// `update`, then whatever it asked for.
fn dispatch(app: &mut App, msg: Msg, feed: &Feed) {
    match update(app, msg) {
        Some(Effect::SetRefresh(secs)) => feed.control(FeedControl::Refresh(secs)),
        Some(Effect::Feed(request)) => feed.control(request),
        Some(Effect::Signal { pid, signal }) => {
            let result = send_signal(pid, signal);
            update(app, Msg::SignalResult(result));
        }
        None => {}
    }
}

/// Sends `signal` to `pid`; never to pid 0 or 1 (0 would signal our process group).
pub fn send_signal(pid: u32, signal: Signal) -> Result<String, String> {
    if pid <= 1 {
        return Err(format!("will not signal pid {pid}"));
    }
    let target = i32::try_from(pid).map_err(|_| format!("pid {pid} is out of range"))?;
    let number = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(target, number) };
    if rc == 0 {
        Ok(format!("sent {} to {pid}", signal.name()))
    } else {
        Err(format!(
            "kill {pid} {}: {}",
            signal.name(),
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_signals_init_or_the_process_group() {
        for pid in [0, 1] {
            assert_eq!(
                send_signal(pid, Signal::Kill),
                Err(format!("will not signal pid {pid}"))
            );
        }
    }

    #[test]
    fn signals_a_child_and_reports_errors() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let sent = send_signal(child.id(), Signal::Term);
        assert_eq!(sent, Ok(format!("sent SIGTERM to {}", child.id())));
        assert!(!child.wait().unwrap().success());
        let gone = send_signal(u32::MAX - 1, Signal::Term);
        assert!(gone.is_err(), "{gone:?}");
    }
}
