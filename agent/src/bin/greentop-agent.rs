//! `greentop-agent`: the headless collector. Records every interval to a binary
//! log, serves the live Intervals to `greentop --connect` on a unix socket and
//! Prometheus metrics on `--metrics-addr`, and prints JSON lines when asked to (or
//! when it has no log or socket). Drops its capabilities once all is open. Runs until
//! SIGTERM or SIGINT; SIGHUP reads the config again and reopens the log.
//! docs/agent.md.
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use agent::cli::{CommonArgs, exit_status, parse_count};
use agent::config::AgentConfig;
use agent::daemon::{self, DaemonOptions};
use agent::pipeline::open_sources;
use agent::privilege::{self, CapSet};
use clap::Parser;

/// Headless greentop: measures the energy and carbon of every process, records
/// it to a binary log, serves it live on a unix socket and as Prometheus metrics.
///
/// Without --log-dir and --socket it prints one JSON interval per line on stdout.
/// Every option of the agent can also be set in the config file's [agent] table
/// (the --metrics-* ones in [metrics]); the command line wins. SIGHUP reads the
/// config file again and reopens the log.
#[derive(Debug, Parser)]
#[command(name = "greentop-agent", version)]
struct Cli {
    #[command(flatten)]
    agent: AgentConfig,
    /// Stop after N intervals.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    count: Option<u64>,
    /// Include threads in each process.
    #[arg(long)]
    threads: bool,
    /// Print JSON lines on stdout also when there is a log or a socket.
    #[arg(long)]
    json: bool,
    /// Print the energy sources found, which one is used and why, then exit.
    #[arg(long)]
    list_sources: bool,
    /// A capability to keep once everything is open (repeatable), e.g. sys_admin and
    /// sys_ptrace so that libcuda files first mapped after start are probed too.
    /// Every other is dropped once the probes are loaded and the counters open.
    #[arg(long, value_name = "CAP", value_parser = privilege::parse_capability)]
    keep_capability: Vec<u32>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,agent=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .init();
    let cli: Cli = agent::cli::parse_args("greentop-agent");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "greentop-agent: {err:#}");
            exit_status(&err).into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.list_sources {
        print!("{}", open_sources(&cli.common.source_options())?.report());
        return Ok(());
    }
    daemon::run(DaemonOptions {
        pipeline: cli.common.pipeline_options(),
        agent: cli.agent,
        count: cli.count,
        threads: cli.threads,
        json: cli.json,
        keep_capabilities: CapSet::of(&cli.keep_capability),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn metrics_and_capabilities_parse_on_the_command_line() {
        let cli = Cli::try_parse_from([
            "greentop-agent",
            "--metrics-addr",
            "9911",
            "--metrics-top-n",
            "5",
            "--keep-capability",
            "sys_admin",
            "--keep-capability",
            "CAP_SYS_PTRACE",
        ])
        .unwrap();
        assert_eq!(cli.keep_capability, [21, 19]);
        let metrics = &cli.agent.metrics;
        assert_eq!(
            metrics.addr().unwrap(),
            Some("127.0.0.1:9911".parse().unwrap())
        );
        assert_eq!(metrics.top_n, Some(5));
        let err = Cli::try_parse_from(["greentop-agent", "--keep-capability", "cap_nope"]);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("not a capability name")
        );
        let err = Cli::try_parse_from(["greentop-agent", "--metrics-top-n", "0"]);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("0 is outside 1..=10000")
        );
    }
}
