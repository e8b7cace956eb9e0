//! `greentop-agent`: the headless collector. For now it prints one JSON interval per
//! line to stdout; the binary log, metrics and socket sinks come next.
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use agent::cli::{CommonArgs, exit_status, parse_count, parse_seconds};
use agent::driver::{Cadence, Driver};
use agent::pipeline::{open_pipeline, open_sources};
use agent::sinks::json::JsonLines;
use agent::sinks::notes::TrustNotes;
use clap::Parser;

/// Headless greentop: measures per-process CPU time (and, soon, energy and carbon).
#[derive(Debug, Parser)]
#[command(name = "greentop-agent", version)]
struct Cli {
    /// Seconds per interval, 0.05 to 3600.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = parse_seconds)]
    interval_s: f64,
    /// Stop after N intervals.
    #[arg(long, value_name = "N", value_parser = parse_count)]
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli: Cli = agent::cli::parse_args("greentop-agent");
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "greentop-agent: {err:#}");
            exit_status(&err).into()
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    if cli.list_sources {
        print!("{}", open_sources(&cli.common.source_options())?.report());
        return Ok(());
    }
    let pipeline = open_pipeline(&cli.common.pipeline_options())?;
    if let Some(note) = pipeline.ledger().fidelity().note() {
        tracing::warn!("{note}");
    }
    for line in pipeline.sources().startup_lines() {
        eprintln!("greentop-agent: {line}");
    }
    let mut driver = Driver::new(pipeline)
        .threads(cli.threads)
        .sink(TrustNotes::new("greentop-agent"))
        .sink(JsonLines::new(std::io::stdout()));
    let cadence = Cadence::every(Duration::from_secs_f64(cli.interval_s)).count(cli.count);
    driver.run(cadence)?;
    driver.finish()?;
    Ok(())
}
