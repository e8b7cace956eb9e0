//! greentop's command line.
use std::path::PathBuf;

use agent::cli::{CommonArgs, parse_count, parse_seconds};
use agent::report::GroupBy;
use clap::{Parser, Subcommand};

/// htop for watts and gCO₂: per-process and per-thread CPU time, energy and carbon.
///
/// Needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF for the eBPF ledger;
/// otherwise it samples /proc, with lower fidelity, and says why.
#[derive(Debug, Parser)]
#[command(name = "greentop", version)]
pub struct Cli {
    /// Print intervals to stdout instead of the interactive view (like `top -b`).
    #[arg(short = 'b', long)]
    pub batch: bool,
    /// Stop after N intervals (default: run until interrupted).
    #[arg(short = 'n', long = "iterations", value_name = "N", value_parser = parse_count)]
    pub iterations: Option<u64>,
    /// Seconds per interval.
    #[arg(short = 'd', long = "delay", value_name = "SECS", default_value_t = 1.0,
          value_parser = parse_seconds)]
    pub delay_s: f64,
    /// One JSON object per interval, one line each (the batch JSON contract).
    #[arg(long)]
    pub json: bool,
    /// Include each process's threads.
    #[arg(long)]
    pub threads: bool,
    /// Print the energy sources found, which one is used and why, then exit.
    #[arg(long)]
    pub list_sources: bool,
    /// Show the live data of a running greentop-agent from its socket (no root
    /// needed: membership of the socket's group is enough).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["batch", "list_sources"])]
    pub connect: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure idle power per CPU package and GPU on a quiet machine and store it in
    /// the config file, for `--idle baseline`.
    Calibrate {
        /// Seconds to measure.
        #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_seconds)]
        duration: f64,
        /// Measure and print, but do not write the config file.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print when to start a job of DURATION within the next WITHIN so that it runs
    /// at the lowest average carbon intensity (needs --intensity-series).
    Greenest {
        /// Length of the job, e.g. 4h, 90m.
        #[arg(long, value_name = "DURATION", value_parser = parse_span)]
        duration: std::time::Duration,
        /// Window to start in, e.g. 24h (at least the job's length).
        #[arg(long, value_name = "DURATION", value_parser = parse_span, default_value = "24h")]
        within: std::time::Duration,
        /// Series to plan on (default: --intensity-series or the config's).
        #[arg(long, value_name = "FILE")]
        series: Option<PathBuf>,
    },
    /// Run a command and report its energy and carbon, like `time` for joules:
    /// its whole process tree, per domain, per phase, with repeats and comparisons.
    Run(Box<greentop_tui::jobrun::RunArgs>),
    /// Sum binary logs per process, job, cgroup, user, command or machine.
    ///
    /// Reads log segment files, or directories of them, and prints per group the
    /// energy per domain, gCO₂, time seen, average and peak watts, share of the
    /// machine and everyday equivalents, with an (idle) row so the rows add up to
    /// what was measured. Damaged records are reported on stderr and skipped.
    Report(ReportArgs),
    /// The live view fed from a log: its intervals at the pace they were recorded,
    /// with pause (space), speed (+ -) and seeks (← → a minute, Home End).
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Log segment files or log directories.
    #[arg(value_name = "LOG|DIR", required = true)]
    pub logs: Vec<PathBuf>,
    /// Log time per wall-clock time: 2 plays twice as fast, 0.5 half as fast
    /// (1/64 to 4096).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Start at this time (RFC 3339, or a duration ago: 2h) [default: the start].
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
}

/// A replay speed within the range `+` and `-` step through.
fn parse_speed(text: &str) -> Result<f64, String> {
    let range = greentop_tui::state::feed::SPEED_RANGE;
    match text.parse::<f64>() {
        Ok(x) if range.contains(&x) => Ok(x),
        Ok(x) => Err(format!(
            "{x} is outside {}..={}",
            range.start(),
            range.end()
        )),
        Err(_) => Err(format!("'{text}' is not a number like 2 or 0.5")),
    }
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Log segment files or log directories.
    #[arg(value_name = "LOG|DIR", required = true)]
    pub logs: Vec<PathBuf>,
    /// What one row sums.
    #[arg(long, value_enum, default_value_t = GroupBy::Process)]
    pub by: GroupBy,
    /// Only intervals ending at or after this time (RFC 3339, or a duration ago: 12h).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only intervals ending before this time (RFC 3339, or a duration ago).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Keep the N biggest rows and sum the others into one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub top: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Recompute gCO₂ from the logged joules with this grid region's intensity.
    #[arg(long, value_name = "CODE")]
    pub region: Option<String>,
    /// Recompute gCO₂ with a fixed intensity, gCO₂/kWh.
    #[arg(long, value_name = "G_PER_KWH", value_parser = agent::cli::parse_intensity)]
    pub intensity: Option<f64>,
    /// Recompute gCO₂ with each interval's value from a `timestamp,g_per_kwh` CSV.
    #[arg(long, value_name = "FILE")]
    pub intensity_series: Option<PathBuf>,
    /// Recompute gCO₂ with this power usage effectiveness instead of the logged one.
    #[arg(long, value_name = "RATIO", value_parser = agent::cli::parse_pue)]
    pub pue: Option<f64>,
}

/// Output of `greentop report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for people.
    Table,
    /// One row per group, every number (CSV_COLUMNS in agent/src/report/format.rs).
    Csv,
    /// The whole report, rows with their equivalents, and the notices.
    Json,
    /// CodeCarbon's emissions.csv columns, one row per group.
    EmissionsCsv,
}

/// A job length or window for `greenest`: `4h`, `90m`; longer than zero.
fn parse_span(text: &str) -> Result<std::time::Duration, String> {
    let span = humantime::parse_duration(text).map_err(|e| format!("'{text}': {e}"))?;
    if span.is_zero() {
        return Err("must be longer than zero".to_string());
    }
    Ok(span)
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
    fn delay_is_range_checked() {
        for (text, ok) in [
            ("1", true),
            ("0.05", true),
            ("0.01", false),
            ("x", false),
            ("4000", false),
        ] {
            assert_eq!(parse_seconds(text).is_ok(), ok, "{text}");
        }
        let cli = Cli::try_parse_from([
            "greentop",
            "-b",
            "-n",
            "3",
            "-d",
            "0.5",
            "--json",
            "--threads",
        ])
        .unwrap();
        assert!(cli.batch && cli.json && cli.threads);
        assert_eq!((cli.iterations, cli.delay_s), (Some(3), 0.5));
        assert!(Cli::try_parse_from(["greentop", "-n", "0"]).is_err());
    }

    #[test]
    fn spans_are_positive_durations() {
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(parse_span("1h"), Ok(hour));
        assert_eq!(
            parse_span("0s"),
            Err("must be longer than zero".to_string())
        );
        assert!(parse_span("soon").unwrap_err().starts_with("'soon': "));
    }
}
