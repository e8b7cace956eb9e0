//! `gt-bench-tui [FRAMES] [--rounds N] [--json FILE]` (`cargo xtask bench tui`): the
//! live view's costs.
//!
//! 1. Render time per frame of the whole screen for 2,000 processes at 200×60 into a
//!    ratatui `TestBackend` (layout, widgets and the buffer diff; no terminal I/O),
//!    and the time to apply one 2,000-process Interval (`update`). Target: ≤ 2 ms.
//! 2. Steady-state CPU of the real `greentop` (probes, pipeline and view) at a 1 s
//!    refresh in a 120×40 tmux pane: its CPU-time clock over N rounds (default 5) of
//!    8 s after a 5 s warm-up, the median (needs root, tmux).
//!
//! `--json FILE` writes both as one block of `cargo xtask bench`'s table.
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

/// Seconds per CPU round.
const ROUND_S: u64 = 8;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|at| args.get(at + 1))
    };
    let frames: usize = args
        .first()
        .filter(|a| !a.starts_with("--"))
        .map_or(Ok(300), |s| s.parse())
        .context("FRAMES")?;
    let rounds: usize = option("--rounds")
        .map_or(Ok(5), |s| s.parse())
        .context("--rounds")?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let render = render_bench(frames)?;
    let cpu = cpu_bench(rounds)?;
    if let Some(path) = option("--json") {
        let block = json_block(&load, frames, &render, rounds, cpu);
        std::fs::write(path, serde_json::to_string_pretty(&[block])?)
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}

/// One block of `cargo xtask bench`'s table (`greentop_tests::benchkit::table::Block`).
fn json_block(
    load: &str,
    frames: usize,
    render: &[f64; 3],
    rounds: usize,
    cpu_pct: f64,
) -> serde_json::Value {
    let load: Vec<f64> = load
        .split_whitespace()
        .take(3)
        .map(|l| l.parse().unwrap_or(f64::NAN))
        .collect();
    let met = |ok: bool| if ok { "met" } else { "missed" };
    serde_json::json!({
        "title": "Live view",
        "command": "cargo xtask bench tui",
        "load_before": load,
        "header": ["figure", "median", "target"],
        "rows": [
            ["frame render, 2,000 rows at 200×60", format!("{:.0} µs (p95 {:.0} µs)", render[0], render[1]),
             format!("≤ 2,000 µs: {}", met(render[0] <= 2000.0))],
            ["applying one 2,000-process Interval", format!("{:.0} µs", render[2]), String::new()],
            ["whole `greentop -d 1` in a tmux pane", format!("{cpu_pct:.2} % of one core"), String::new()],
        ],
        "notes": [format!(
            "Render: median and 95th percentile of {frames} frames into a ratatui TestBackend \
             (layout, widgets, buffer diff; no terminal I/O). CPU: the real greentop (probes, \
             pipeline, view) at 1 s refresh in a 120×40 tmux pane, its CPU-time clock over \
             {rounds} rounds of {ROUND_S} s after a 5 s warm-up, the median."
        )],
    })
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

/// Median and p95 µs per frame, median µs per applied Interval.
fn render_bench(frames: usize) -> anyhow::Result<[f64; 3]> {
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
    let figures = [
        percentile(&mut frame_us, 0.5),
        percentile(&mut frame_us, 0.95),
        percentile(&mut update_us, 0.5),
    ];
    println!(
        "render 200x60, {PROCESSES} processes: median {:.0} us/frame, p95 {:.0} us (target <= 2000 us); apply Interval: median {:.0} us",
        figures[0], figures[1], figures[2],
    );
    Ok(figures)
}

/// Median % of one CPU of the real greentop over `rounds` rounds.
fn cpu_bench(rounds: usize) -> anyhow::Result<f64> {
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
    let result = measure_pane(&session, rounds);
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    let mut per_round = result?;
    let cpu_pct = percentile(&mut per_round, 0.5);
    println!(
        "steady state at 1 s refresh: greentop used {cpu_pct:.2} % of one CPU (median of {rounds} rounds of {ROUND_S} s: {per_round:.2?})"
    );
    Ok(cpu_pct)
}

/// CPU % of the greentop in the pane in each round, after a 5 s warm-up.
fn measure_pane(session: &str, rounds: usize) -> anyhow::Result<Vec<f64>> {
    std::thread::sleep(Duration::from_secs(5));
    let out = Command::new("tmux")
        .args(["list-panes", "-t", session, "-F", "#{pane_pid}"])
        .output()?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("pane pid")?;
    let mut per_round = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (cpu0, t0) = (cpu_ns(pid)?, Instant::now());
        std::thread::sleep(Duration::from_secs(ROUND_S));
        let (cpu1, wall) = (cpu_ns(pid)?, t0.elapsed().as_secs_f64());
        per_round.push(100.0 * (cpu1 - cpu0) as f64 / 1e9 / wall);
    }
    Ok(per_round)
}

/// CPU time of a process (all its threads, live and exited), ns: its CPU-time clock,
/// `(~pid << 3) | CPUCLOCK_SCHED` as glibc's clock_getcpuclockid makes it.
fn cpu_ns(pid: u32) -> anyhow::Result<u64> {
    let clock = (!(pid as libc::clockid_t) << 3) | 2;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        bail!("greentop (pid {pid}) is not running");
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values
        .get(((values.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}
