//! `gt-bench-tui [FRAMES]` (`cargo xtask bench tui`): the live view's costs.
//!
//! 1. Render time per frame of the whole screen for 2,000 processes at 200×60 into a
//!    ratatui `TestBackend` (layout, widgets and the buffer diff; no terminal I/O),
//!    and the time to apply one 2,000-process Interval (`update`). Target: ≤ 2 ms.
//! 2. Steady-state CPU of the real `greentop` (probes, pipeline and view) at a 1 s
//!    refresh in a 120×40 tmux pane, from /proc/PID/stat over 20 s (needs root, tmux).
use std::process::Command;
use std::time::{Duration, Instant};

use agent::model::{Interval, ProcessEnergy};
use anyhow::{Context, bail};
use greentop_tui::app::{App, Msg, update};
use greentop_tui::fixtures::{OWN_PID, interval};
use greentop_tui::view::Screen;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const PROCESSES: u32 = 2_000;

fn main() -> anyhow::Result<()> {
    let frames: usize = std::env::args()
        .nth(1)
        .map_or(Ok(300), |s| s.parse())
        .context("FRAMES")?;
    render_bench(frames)?;
    cpu_bench()
}

/// The fixture interval with 2,000 processes of varied names, jobs and power.
fn big_interval(tick: u32) -> Interval {
    let mut interval = interval(tick, true);
    let template = interval.processes[0].clone();
    interval.processes = (0..PROCESSES)
        .map(|i| ProcessEnergy {
            pid: 10_000 + i,
            ppid: if i % 10 == 0 { 1 } else { 10_000 + i - i % 10 },
            comm: format!("worker-{i}"),
            job: Some(format!("job-{}", i % 37)),
            start_ns: u64::from(i),
            cpu_seconds: f64::from(i % 100) / 100.0,
            joules: f64::from((i * 7919 + tick) % 1000) / 10.0,
            threads: None,
            ..template.clone()
        })
        .collect();
    interval
}

fn render_bench(frames: usize) -> anyhow::Result<()> {
    let mut app = App::new(1.0, OWN_PID, true);
    let mut update_us = Vec::new();
    for tick in 1..=5 {
        let next = Box::new(big_interval(tick));
        let start = Instant::now();
        update(&mut app, Msg::Interval(next));
        update_us.push(start.elapsed().as_secs_f64() * 1e6);
    }
    let mut terminal = Terminal::new(TestBackend::new(200, 60))?;
    let mut frame_us = Vec::with_capacity(frames);
    for i in 0..frames {
        // Move the selection so every frame differs, as scrolling would.
        update(&mut app, Msg::Move(if i % 50 < 25 { 1 } else { -1 }));
        let start = Instant::now();
        terminal.draw(|frame| frame.render_widget(Screen(&app), frame.area()))?;
        frame_us.push(start.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "render 200x60, {PROCESSES} processes: median {:.0} us/frame, p95 {:.0} us (target <= 2000 us); apply Interval: median {:.0} us",
        percentile(&mut frame_us, 0.5),
        percentile(&mut frame_us, 0.95),
        percentile(&mut update_us, 0.5),
    );
    Ok(())
}

fn cpu_bench() -> anyhow::Result<()> {
    let greentop = std::env::current_exe()?.with_file_name("greentop");
    if !greentop.exists() {
        bail!(
            "{} not built (cargo build --release -p greentop)",
            greentop.display()
        );
    }
    let session = format!("gt-bench-{}", std::process::id());
    let status = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "40"])
        .arg(format!("{} -d 1 --no-gpu", greentop.display()))
        .status()
        .context("starting tmux (is it installed?)")?;
    if !status.success() {
        bail!("tmux new-session failed");
    }
    let result = measure_pane(&session);
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    let (cpu_pct, seconds) = result?;
    println!(
        "steady state at 1 s refresh: greentop used {cpu_pct:.2} % of one CPU over {seconds:.0} s"
    );
    Ok(())
}

/// CPU % of the greentop in the pane, measured after a 5 s warm-up.
fn measure_pane(session: &str) -> anyhow::Result<(f64, f64)> {
    std::thread::sleep(Duration::from_secs(5));
    let out = Command::new("tmux")
        .args(["list-panes", "-t", session, "-F", "#{pane_pid}"])
        .output()?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("pane pid")?;
    let (ticks0, t0) = (cpu_ticks(pid)?, Instant::now());
    std::thread::sleep(Duration::from_secs(20));
    let (ticks1, seconds) = (cpu_ticks(pid)?, t0.elapsed().as_secs_f64());
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((100.0 * (ticks1 - ticks0) as f64 / hz / seconds, seconds))
}

/// utime + stime of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("greentop (pid {pid}) is not running"))?;
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the comm.
    Ok(get(11) + get(12))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values
        .get(((values.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}
