//! The live view's event loop. A collector thread owns the `Pipeline` and sends one
//! `Interval` per refresh over a channel; the UI thread polls input with a timeout,
//! applies messages with `update`, carries out effects and redraws when needed.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use agent::cli::CommonArgs;
use agent::pipeline::open_pipeline;
use ratatui::crossterm::event;

use crate::app::{App, Effect, Msg, Signal, update};
use crate::keys::event_to_msg;
use crate::term::{Term, enter};
use crate::view::Screen;

/// How long the UI waits for input before looking for new data.
const INPUT_POLL: Duration = Duration::from_millis(50);

/// Runs `greentop` live until the user quits.
pub fn run_live(common: &CommonArgs, delay_s: f64) -> anyhow::Result<()> {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(delay_s, std::process::id(), color);
    let (data_tx, data_rx) = channel();
    let (refresh_tx, refresh_rx) = channel();
    let (ready_tx, ready_rx) = channel();
    let args = common.clone();
    let refresh_s = app.refresh_s;
    thread::Builder::new()
        .name("collector".into())
        .spawn(move || collect(&args, refresh_s, &ready_tx, &data_tx, &refresh_rx))
        .map_err(|e| anyhow::anyhow!("starting the collector thread: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the collector thread ended before it started"))?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut terminal, _guard) = enter()?;
    stop_on_signals();
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
    ui_loop(&mut terminal, &mut app, &data_rx, &refresh_tx)
}

/// Owns the pipeline: ticks every refresh interval (changed through `refresh_rx`)
/// until the UI hangs up.
fn collect(
    args: &CommonArgs,
    refresh_s: f64,
    ready: &Sender<Result<(), String>>,
    data: &Sender<Msg>,
    refresh_rx: &Receiver<f64>,
) {
    let mut pipeline = match open_pipeline(args) {
        Ok(pipeline) => pipeline,
        Err(err) => {
            let _ = ready.send(Err(format!("{err:#}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut delay = Duration::from_secs_f64(refresh_s);
    let mut last = Instant::now();
    loop {
        match refresh_rx.recv_timeout((last + delay).saturating_duration_since(Instant::now())) {
            Ok(secs) => {
                delay = Duration::from_secs_f64(secs);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        last = Instant::now();
        // Threads always: `H` and the details pane can show them at any time.
        let msg = match pipeline.tick(true) {
            Ok(interval) => Msg::Interval(Box::new(interval)),
            Err(err) => Msg::CollectorError(format!("tick failed: {err}")),
        };
        if data.send(msg).is_err() {
            return;
        }
    }
}

fn ui_loop(
    terminal: &mut Term,
    app: &mut App,
    data: &Receiver<Msg>,
    refresh: &Sender<f64>,
) -> anyhow::Result<()> {
    let mut dirty = true;
    while !app.quit && !STOP.load(Ordering::Relaxed) {
        if dirty {
            terminal
                .draw(|frame| frame.render_widget(Screen(app), frame.area()))
                .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
            dirty = false;
        }
        if event::poll(INPUT_POLL).map_err(|e| anyhow::anyhow!("terminal input: {e}"))? {
            let event = event::read().map_err(|e| anyhow::anyhow!("terminal input: {e}"))?;
            if let Some(msg) = event_to_msg(app, &event) {
                dispatch(app, msg, refresh);
                dirty = true;
            }
        }
        while let Ok(msg) = data.try_recv() {
            let paused = app.paused;
            dispatch(app, msg, refresh);
            dirty |= !paused;
        }
    }
    Ok(())
}

/// Set by SIGTERM, SIGHUP or SIGINT: the loop ends and the guard restores the terminal.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// `kill`, a closed terminal or a stray Ctrl-C (outside raw mode) end greentop
/// through the normal path, so the terminal is restored as after `q`.
fn stop_on_signals() {
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe;
        // the function pointer has the C signature signal(2) expects.
        unsafe { libc::signal(signal, on_stop_signal as *const () as libc::sighandler_t) };
    }
}

/// `update`, then whatever it asked for.
fn dispatch(app: &mut App, msg: Msg, refresh: &Sender<f64>) {
    match update(app, msg) {
        Some(Effect::SetRefresh(secs)) => {
            let _ = refresh.send(secs);
        }
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
