//! `gt-procpoll`: the benchmarks' `/proc`-polling power collector, Kepler 0.10's
//! method (`greentop_tests::procpoll`). Every interval it prints one JSON line: the
//! node's joules, its active share, and each process that ran, with its CPU seconds
//! and joules (Kepler computes a record for every running process and exports them
//! all; only those with CPU time are printed here).
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use greentop_tests::procpoll::Poller;

/// A /proc-polling power collector with Kepler 0.10's method, for the benchmarks.
#[derive(Debug, Parser)]
struct Cli {
    /// Seconds per interval.
    #[arg(long, default_value_t = 1.0)]
    interval_s: f64,
    /// Stop after N intervals.
    #[arg(long)]
    count: Option<u64>,
    /// Root of the proc filesystem.
    #[arg(long, default_value = "/proc")]
    procfs_root: PathBuf,
    /// Root of sysfs (its class/powercap is read).
    #[arg(long, default_value = "/sys")]
    sysfs_root: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut poller = Poller::new(&cli.procfs_root, &cli.sysfs_root);
    let out = std::io::stdout();
    let delay = Duration::from_secs_f64(cli.interval_s);
    let start = Instant::now();
    let mut next = start + delay;
    // The first scan takes the baselines, as Kepler's first read does.
    poller.scan();
    let mut done = 0;
    let mut line = String::new();
    while cli.count.is_none_or(|n| done < n) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += delay;
        let scan = poller.scan();
        line.clear();
        line.push_str(&format!(
            "{{\"t\":{:.6},\"node_joules\":{},\"active_joules\":{},\"usage_ratio\":{},\"running\":{},\"terminated\":{},\"processes\":[",
            start.elapsed().as_secs_f64(),
            scan.node_joules,
            scan.active_joules,
            scan.usage_ratio,
            scan.processes.len(),
            scan.terminated,
        ));
        let mut first = true;
        for p in scan.processes.iter().filter(|p| p.cpu_seconds > 0.0) {
            if !first {
                line.push(',');
            }
            first = false;
            line.push_str(&format!(
                "{{\"pid\":{},\"cpu_seconds\":{},\"joules\":{}}}",
                p.pid, p.cpu_seconds, p.joules
            ));
        }
        line.push_str("]}\n");
        out.lock()
            .write_all(line.as_bytes())
            .context("writing an interval")?;
        done += 1;
    }
    Ok(())
}
