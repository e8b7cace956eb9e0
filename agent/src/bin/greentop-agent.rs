//! `greentop-agent`: the headless collector. For now it prints one JSON interval per
//! line to stdout; the binary log, metrics and socket sinks come next.
use std::time::{Duration, Instant};

use agent::cli::CommonArgs;
use agent::pipeline::{open_pipeline, open_sources};
use agent::sinks::Sink;
use agent::sinks::json::JsonLines;
use clap::Parser;

/// Headless greentop: measures per-process CPU time (and, soon, energy and carbon).
#[derive(Debug, Parser)]
#[command(name = "greentop-agent", version)]
struct Cli {
    /// Seconds per interval.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    interval_s: f64,
    /// Stop after N intervals.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Include threads in each process.
    #[arg(long)]
    threads: bool,
    /// Print the energy sources found, which one is used and why, then exit.
    #[arg(long)]
    list_sources: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    anyhow::ensure!(
        (0.05..=3600.0).contains(&cli.interval_s),
        "--interval-s {} is outside 0.05..=3600",
        cli.interval_s
    );
    if cli.list_sources {
        print!("{}", open_sources(&cli.common)?.report());
        return Ok(());
    }
    let mut pipeline = open_pipeline(&cli.common)?;
    if let Some(note) = pipeline.ledger().fidelity().note() {
        tracing::warn!("{note}");
    }
    let delay = Duration::from_secs_f64(cli.interval_s);
    let mut next = Instant::now() + delay;
    let mut done = 0;
    let mut sink = JsonLines::new(std::io::stdout());
    while cli.count.is_none_or(|n| done < n) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += delay;
        let interval = pipeline.tick(cli.threads)?;
        sink.write(&interval)?;
        done += 1;
    }
    sink.close()?;
    Ok(())
}
