//! `greentop run`'s options: outputs, repeats and comparisons, carbon-aware start.
use std::path::PathBuf;
use std::time::Duration;

use agent::cli::{CommonArgs, LedgerChoice, parse_count, parse_seconds};
use agent::energy::select::CpuSourceChoice;
use clap::{Args, ValueEnum};

/// How long a job may wait for greener power: the seed scheduler's urgency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Urgency {
    /// Wait for the threshold itself.
    Low,
    /// Accept up to 1.5 × the threshold.
    #[default]
    Medium,
    /// Start now, whatever the intensity.
    High,
}

impl Urgency {
    /// The factor on `--threshold` below which the job may start; `None`: start now.
    pub fn threshold_factor(self) -> Option<f64> {
        match self {
            Urgency::Low => Some(1.0),
            Urgency::Medium => Some(1.5),
            Urgency::High => None,
        }
    }
}

#[derive(Clone, Debug, Args)]
#[command(override_usage = "greentop run [OPTIONS] [--] CMD [ARGS]...\n       \
    greentop run --compare [OPTIONS] [--] CMD [ARGS]... --- CMD [ARGS]... [--- …]")]
pub struct RunArgs {
    /// Write the report (every run, phases, medians, comparison) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Append one row per run to FILE with CodeCarbon's emissions.csv columns (the
    /// header is written when the file is new; an existing file's columns are kept).
    #[arg(long, value_name = "FILE")]
    pub emissions_csv: Option<PathBuf>,
    /// Name of the job in the summary, the JSON and the CSV's project_name.
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Run the command N times, one after another, and report the median and spread
    /// [default: 1, or 3 with --compare].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub repeat: Option<u64>,
    /// Units of work one run does (inferences, samples, requests): adds J and mgCO₂
    /// per unit.
    #[arg(long, value_name = "N", value_parser = parse_units)]
    pub units: Option<f64>,
    /// Compare two or more commands separated by `---`, run interleaved; prints each
    /// one's energy and time per unit relative to the first.
    #[arg(long)]
    pub compare: bool,
    /// Seconds between measurements while the job runs, 0.5 by default (a phase mark
    /// and the job's exit also end one); not with --connect, where the agent's
    /// interval applies.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub tick: Option<f64>,
    /// Measure with a running greentop-agent's socket instead of loading the probes
    /// (no root needed: membership of the socket's group is enough). Without it,
    /// greentop run uses the config's `[agent] socket` when it cannot load the probes.
    #[arg(long, value_name = "PATH")]
    pub connect: Option<PathBuf>,
    /// Wait before starting until the grid's carbon intensity (series file or live
    /// provider) is at or below the threshold, or start in the greenest window for
    /// --expected-duration.
    #[arg(long)]
    pub when_green: bool,
    /// gCO₂/kWh at or below which the grid counts as green, for --when-green.
    #[arg(long, value_name = "G_PER_KWH", default_value_t = 200.0, value_parser = parse_threshold)]
    pub threshold: f64,
    /// high starts now; medium accepts 1.5 × the threshold; low waits for the threshold.
    #[arg(long, value_enum, default_value_t = Urgency::Medium)]
    pub urgency: Urgency,
    /// Longest wait for --when-green, e.g. 6h, 90m; the job starts by then.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_wait)]
    pub max_wait: Duration,
    /// How long the job is expected to run: --when-green then picks the start with the
    /// lowest average intensity over that long (as `greentop greenest` does).
    #[arg(long, value_name = "DURATION", value_parser = parse_job_length)]
    pub expected_duration: Option<Duration>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// The command and its arguments; with --compare, commands separated by `---`.
    #[arg(value_name = "CMD", required = true, num_args = 1.., trailing_var_arg = true,
          allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Seconds between local ticks unless `--tick` says otherwise.
pub const DEFAULT_TICK_S: f64 = 0.5;

/// The separator between commands of `--compare`.
pub const COMPARE_SEPARATOR: &str = "---";

impl RunArgs {
    /// The commands to run: one, or with `--compare` those between `---`. Errors name
    /// what is wrong (an empty command, a lone command to compare).
    pub fn commands(&self) -> Result<Vec<Vec<String>>, String> {
        let parts: Vec<Vec<String>> = self
            .command
            .split(|word| word == COMPARE_SEPARATOR)
            .map(<[String]>::to_vec)
            .collect();
        if parts.iter().any(Vec::is_empty) {
            return Err(format!(
                "an empty command: put a command on each side of {COMPARE_SEPARATOR}"
            ));
        }
        match (self.compare, parts.len()) {
            (true, 1) => Err(format!(
                "--compare needs two or more commands separated by {COMPARE_SEPARATOR}"
            )),
            (false, n) if n > 1 => Err(format!(
                "{COMPARE_SEPARATOR} separates commands only with --compare"
            )),
            _ => Ok(parts),
        }
    }

    /// Seconds between local ticks.
    pub fn tick_s(&self) -> f64 {
        self.tick.unwrap_or(DEFAULT_TICK_S)
    }

    /// Runs per command.
    pub fn repeats(&self) -> u64 {
        self.repeat.unwrap_or(if self.compare { 3 } else { 1 })
    }
}

/// Options given after `run` win; anything left at its default there is taken from
/// the options given before `run` (`greentop --region FR run -- …`).
pub fn merge_common(before: &CommonArgs, after: &CommonArgs) -> CommonArgs {
    let mut merged = after.clone();
    if after.sysfs_root.as_os_str() == "/sys" {
        merged.sysfs_root.clone_from(&before.sysfs_root);
    }
    if after.procfs_root.as_os_str() == "/proc" {
        merged.procfs_root.clone_from(&before.procfs_root);
    }
    if after.ledger == LedgerChoice::Auto {
        merged.ledger = before.ledger;
    }
    if after.cpu_source == CpuSourceChoice::Auto {
        merged.cpu_source = before.cpu_source;
    }
    merged.no_gpu |= before.no_gpu;
    merged.cpu_tdp_watts = after.cpu_tdp_watts.or(before.cpu_tdp_watts);
    merged.nvml_lib = or(&after.nvml_lib, &before.nvml_lib);
    merged.region = or(&after.region, &before.region);
    merged.intensity = after.intensity.or(before.intensity);
    merged.pue = after.pue.or(before.pue);
    merged.intensity_series = or(&after.intensity_series, &before.intensity_series);
    merged.idle = after.idle.or(before.idle);
    merged.config = or(&after.config, &before.config);
    merged.ledger_table_slots = after.ledger_table_slots.or(before.ledger_table_slots);
    merged.ledger_overflow_entries = after
        .ledger_overflow_entries
        .or(before.ledger_overflow_entries);
    merged
}

/// `after` if set, else `before`.
fn or<T: Clone>(after: &Option<T>, before: &Option<T>) -> Option<T> {
    after.clone().or_else(|| before.clone())
}

/// Units per run: a positive, finite number.
fn parse_units(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        Ok(n) => Err(format!("{n} is not a positive number of units")),
        Err(_) => Err(format!("'{text}' is not a number")),
    }
}

fn parse_threshold(text: &str) -> Result<f64, String> {
    let range = agent::carbon::INTENSITY_RANGE;
    match text.parse::<f64>() {
        Ok(g) if range.contains(&g) => Ok(g),
        Ok(g) => Err(format!("{g} g/kWh is outside {range:?}")),
        Err(_) => Err(format!("'{text}' is not a number of gCO₂/kWh")),
    }
}

/// A wait: `0s` (do not wait) up to 30 days.
fn parse_wait(text: &str) -> Result<Duration, String> {
    let span = humantime::parse_duration(text).map_err(|e| format!("'{text}': {e}"))?;
    if span > Duration::from_secs(30 * 86_400) {
        return Err(format!("'{text}' is longer than 30 days"));
    }
    Ok(span)
}

/// A job length: longer than zero.
fn parse_job_length(text: &str) -> Result<Duration, String> {
    match parse_wait(text)? {
        span if span.is_zero() => Err("must be longer than zero".to_string()),
        span => Ok(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, String> {
        let argv = std::iter::once("run").chain(args.iter().copied());
        Wrapper::try_parse_from(argv)
            .map(|w| w.run)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_command_is_everything_after_the_options() {
        let run = parse(&["--label", "x", "--", "python", "-c", "print(1)"]).unwrap();
        assert_eq!(run.command, ["python", "-c", "print(1)"]);
        assert_eq!(run.label.as_deref(), Some("x"));
        // Without `--` the first word starts the command, as with `time` and `sudo`.
        let run = parse(&["--repeat", "2", "sh", "-c", "exit 3", "--json", "f"]).unwrap();
        assert_eq!(run.command, ["sh", "-c", "exit 3", "--json", "f"]);
        assert_eq!((run.repeats(), run.json), (2, None));
        assert!(parse(&["--label", "x"]).is_err(), "a command is required");
    }

    #[test]
    fn commands_split_at_the_separator_only_with_compare() {
        let run = parse(&["--compare", "--", "a", "1", "---", "b", "---", "c"]).unwrap();
        assert_eq!(
            run.commands().unwrap(),
            [vec!["a", "1"], vec!["b"], vec!["c"]]
        );
        assert_eq!(run.repeats(), 3);
        let cases: &[(&[&str], &str)] = &[
            (&["--compare", "--", "a"], "--compare needs two or more"),
            (&["--compare", "--", "a", "---"], "an empty command"),
            (
                &["--", "a", "---", "b"],
                "--- separates commands only with --compare",
            ),
        ];
        for (args, want) in cases {
            let err = parse(args).unwrap().commands().unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn values_are_checked() {
        for (text, ok) in [("10", true), ("0.5", true), ("0", false), ("-1", false)] {
            assert_eq!(parse_units(text).is_ok(), ok, "units {text}");
        }
        for (text, ok) in [("200", true), ("0", true), ("-5", false), ("x", false)] {
            assert_eq!(parse_threshold(text).is_ok(), ok, "threshold {text}");
        }
        assert_eq!(parse_wait("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("90m"), Ok(Duration::from_secs(5400)));
        assert!(parse_wait("31days").is_err());
        assert!(parse_job_length("0s").is_err());
        assert!(parse(&["--urgency", "urgent", "--", "x"]).is_err());
    }

    #[test]
    fn options_after_run_win_and_the_rest_come_from_before() {
        let before = parse(&[
            "--region", "FR", "--pue", "1.2", "--ledger", "procfs", "--", "x",
        ])
        .unwrap()
        .common;
        let after = parse(&["--region", "DE", "--", "x"]).unwrap().common;
        let merged = merge_common(&before, &after);
        assert_eq!(merged.region.as_deref(), Some("DE"));
        assert_eq!(merged.pue, Some(1.2));
        assert_eq!(merged.ledger, agent::cli::LedgerChoice::Procfs);
        assert_eq!(merged.sysfs_root, PathBuf::from("/sys"));
    }
}
