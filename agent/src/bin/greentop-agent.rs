//! `greentop-agent`: the headless collector. Records every interval to a binary
//! log, serves the live Intervals to `greentop --connect` on a unix socket, and
//! prints JSON lines when asked to (or when it has no other output). Runs until
//! SIGTERM or SIGINT; SIGHUP reads the config again and reopens the log.
//! docs/agent.md.
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use agent::cli::{CommonArgs, exit_status, parse_count};
use agent::config::AgentConfig;
use agent::daemon::{self, DaemonOptions};
use agent::pipeline::open_sources;
use clap::Parser;

/// Headless greentop: measures the energy and carbon of every process, records
/// it to a binary log and serves it live on a unix socket.
///
/// Without --log-dir and --socket it prints one JSON interval per line on stdout.
/// Every option of the agent can also be set in the config file's [agent] table;
/// the command line wins. SIGHUP reads the config file again and reopens the log.
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
}
