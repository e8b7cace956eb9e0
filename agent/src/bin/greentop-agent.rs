//! `greentop-agent`: the headless collector. It prints one JSON interval per line to
//! stdout and, with `--metrics-addr`, serves Prometheus metrics; the binary log and
//! socket sinks come with the daemon.
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use agent::cli::{CommonArgs, exit_status, parse_count, parse_seconds};
use agent::pipeline::{Settings, open_pipeline, open_sources};
use agent::privilege::{self, CapSet};
use agent::sinks::Sink;
use agent::sinks::json::JsonLines;
use agent::sinks::metrics::{Metrics, MetricsArgs, MetricsSettings, server};
use anyhow::Context;
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
    /// A capability to keep after start-up (repeatable), e.g. sys_admin and
    /// sys_ptrace so that libcuda files first mapped after start are probed too.
    /// Every other is dropped once the probes are loaded and the counters open.
    #[arg(long, value_name = "CAP", value_parser = privilege::parse_capability)]
    keep_capability: Vec<u32>,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
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
        print!("{}", open_sources(&cli.common)?.report());
        return Ok(());
    }
    // Checked before anything is loaded: a refused address costs nothing.
    let settings = Settings::resolve(&cli.common)?;
    let settings = MetricsSettings::resolve(&cli.metrics, settings.config.metrics.as_ref())?;
    let mut pipeline = open_pipeline(&cli.common)?;
    if let Some(note) = pipeline.ledger().fidelity().note() {
        tracing::warn!("{note}");
    }
    for line in pipeline.sources().startup_lines() {
        eprintln!("greentop-agent: {line}");
    }
    let metrics = Metrics::new(settings.options);
    let listener = match settings.addr {
        Some(addr) => Some(
            server::bind(addr).with_context(|| format!("binding the metrics address {addr}"))?,
        ),
        None => None,
    };
    // Everything is open and bound: from here on the agent needs no capability
    // (docs/deploy/README.md#capabilities), and no thread has started yet.
    let dropped =
        privilege::drop_to(CapSet::of(&cli.keep_capability)).context("dropping capabilities")?;
    eprintln!("greentop-agent: {dropped}");
    if let Some(listener) = listener {
        eprintln!(
            "greentop-agent: metrics on http://{}/metrics",
            listener.local_addr()?
        );
        server::spawn_thread(listener, metrics.clone()).context("starting the metrics server")?;
    }
    let delay = Duration::from_secs_f64(cli.interval_s);
    let mut next = Instant::now() + delay;
    let mut done = 0;
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonLines::new(std::io::stdout()))];
    if settings.addr.is_some() {
        sinks.insert(0, Box::new(metrics.sink()));
    }
    for sink in &sinks {
        metrics.register_sink(sink.name());
    }
    while cli.count.is_none_or(|n| done < n) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += delay;
        let started = Instant::now();
        let interval = pipeline.tick(cli.threads)?;
        metrics.observe_tick(started.elapsed());
        for change in interval.system.trust_changes() {
            eprintln!("greentop-agent: {change}");
        }
        for sink in &mut sinks {
            if let Err(err) = sink.write(&interval) {
                metrics.count_sink_error(sink.name());
                return Err(err.into());
            }
        }
        done += 1;
    }
    for sink in &mut sinks {
        sink.close()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "greentop-agent",
            "--metrics-addr",
            "9911",
            "--keep-capability",
            "sys_admin",
            "--keep-capability",
            "CAP_SYS_PTRACE",
        ])
        .unwrap();
        assert_eq!(cli.keep_capability, [21, 19]);
        let err = Cli::try_parse_from(["greentop-agent", "--keep-capability", "cap_nope"]);
        assert!(err.unwrap_err().to_string().contains("not a capability name"));
    }
}
