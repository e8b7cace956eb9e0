//! Options every entry point shares (`greentop`, `greentop-agent`), the checks of
//! their values, and which errors are the user's (exit status 2, as for a
//! command-line syntax error) rather than the machine's (1).
use std::error::Error;
use std::io::Write;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::Args;

use crate::attribution::IdlePolicy;
use crate::carbon::{
    CarbonError, GreenestError, INTENSITY_RANGE, PUE_RANGE, SeriesError, UnknownRegion,
};
use crate::config::{ConfigError, Overrides};
use crate::energy::select::{CpuSourceChoice, SourceOptions};
use crate::pipeline::PipelineOptions;
use crate::probes::gpu::GpuProbeMode;

pub use crate::pipeline::LedgerChoice;

#[derive(Clone, Debug, Args)]
pub struct CommonArgs {
    /// Root of the sysfs tree to read (for tests and containers).
    #[arg(long, value_name = "DIR", default_value = "/sys", value_parser = parse_dir)]
    pub sysfs_root: PathBuf,
    /// Root of the procfs tree to read (for tests and containers).
    #[arg(long, value_name = "DIR", default_value = "/proc", value_parser = parse_dir)]
    pub procfs_root: PathBuf,
    /// CPU-time ledger: eBPF probes, /proc sampling, or eBPF with /proc fallback.
    #[arg(long, value_enum, default_value_t = LedgerChoice::Auto)]
    pub ledger: LedgerChoice,
    /// CPU energy source: measured RAPL (powercap or perf PMU) or the TDP estimate.
    #[arg(long = "source", value_enum, default_value_t = CpuSourceChoice::Auto)]
    pub cpu_source: CpuSourceChoice,
    /// CPU power at full load for the estimate, in watts per package (default: TDP table).
    #[arg(long, value_name = "WATTS", value_parser = parse_watts)]
    pub cpu_tdp_watts: Option<f64>,
    /// Path of libnvidia-ml.so.1 (default: the dynamic loader's search path).
    #[arg(long, value_name = "PATH", value_parser = parse_file)]
    pub nvml_lib: Option<PathBuf>,
    /// Do not look for NVIDIA GPUs (and, unless --gpu-probes says otherwise, attach
    /// no GPU probes).
    #[arg(long)]
    pub no_gpu: bool,
    /// GPU activity from eBPF: off; ctx (CUDA context switches, sync waits and NVIDIA
    /// ioctls: cheap); all (also a uprobe per kernel launch, ~0.8 µs each)
    /// [default: ctx, or off with --no-gpu]
    #[arg(long, value_enum, value_name = "WHICH")]
    pub gpu_probes: Option<GpuProbeMode>,
    /// A libcuda file to probe besides those found in running processes and the
    /// system's library directories (repeatable).
    #[arg(long, value_name = "PATH", value_parser = parse_file)]
    pub cuda_lib: Vec<PathBuf>,
    /// Grid region for the carbon intensity: FR, FRA, US-CA, SE3, gcp:us-central1,
    /// aws:us-east-1, azure:westeurope, … [default: the config's, else the world average]
    #[arg(long, value_name = "CODE", value_parser = parse_region)]
    pub region: Option<String>,
    /// Fixed carbon intensity in gCO₂/kWh (overrides the region's).
    #[arg(long, value_name = "G_PER_KWH", value_parser = parse_intensity)]
    pub intensity: Option<f64>,
    /// Power usage effectiveness of the data centre, 1.0 to 3.0: gCO₂ are multiplied by
    /// it, joules are not [default: the config's, else 1.0].
    #[arg(long, value_name = "RATIO", value_parser = parse_pue)]
    pub pue: Option<f64>,
    /// CSV of `timestamp,g_per_kwh`: each interval uses the value at its time.
    #[arg(long, value_name = "FILE")]
    pub intensity_series: Option<PathBuf>,
    /// Idle power policy: exclude (idle stays idle), share (all to busy processes),
    /// baseline (calibrated idle stays idle) [default: exclude, or the config file's].
    #[arg(long, value_enum)]
    pub idle: Option<IdlePolicy>,
    /// TOML config file (default: /etc/greentop/config.toml for root, else
    /// ~/.config/greentop/config.toml, if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ledger table slots per CPU (testing map pressure).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub ledger_table_slots: Option<u32>,
    /// Overflow map entries (testing map pressure).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub ledger_overflow_entries: Option<u32>,
    /// Milliseconds the start-up probe watches the energy counters (tests, slow hypervisors).
    #[arg(long, hide = true, value_name = "MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(20..=5000))]
    pub probe_ms: u64,
}

impl CommonArgs {
    /// The GPU probes asked for: `--gpu-probes`, else off with `--no-gpu`, else ctx.
    pub fn gpu_probe_mode(&self) -> GpuProbeMode {
        match (self.gpu_probes, self.no_gpu) {
            (Some(mode), _) => mode,
            (None, true) => GpuProbeMode::Off,
            (None, false) => GpuProbeMode::default(),
        }
    }

    /// The plain options the library takes.
    pub fn pipeline_options(&self) -> PipelineOptions {
        PipelineOptions {
            ledger: self.ledger,
            ledger_table_slots: self.ledger_table_slots,
            ledger_overflow_entries: self.ledger_overflow_entries,
            gpu_probes: self.gpu_probe_mode(),
            cuda_libs: self.cuda_lib.clone(),
            sources: self.source_options(),
            overrides: self.overrides(),
        }
    }

    /// The values that win over the config file.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            region: self.region.clone(),
            intensity_g_per_kwh: self.intensity,
            intensity_series: self.intensity_series.clone(),
            pue: self.pue,
            idle: self.idle,
        }
    }

    /// The energy-source part of the options.
    pub fn source_options(&self) -> SourceOptions {
        SourceOptions {
            sysfs_root: self.sysfs_root.clone(),
            procfs_root: self.procfs_root.clone(),
            cpu: self.cpu_source,
            cpu_tdp_watts: self.cpu_tdp_watts,
            nvml_lib: self.nvml_lib.clone(),
            no_gpu: self.no_gpu,
            probe_window: std::time::Duration::from_millis(self.probe_ms),
        }
    }
}

/// A mistake in what the user asked for that no other error type describes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status for an error: 2 when the user's input (an option, a config key, a
/// file they named) is at fault, 1 otherwise.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    if err.chain().any(is_usage) { 2 } else { 1 }
}

fn is_usage(err: &(dyn Error + 'static)) -> bool {
    let config_input = matches!(
        err.downcast_ref::<ConfigError>(),
        Some(ConfigError::Read { .. } | ConfigError::Parse { .. })
    );
    config_input
        || err.is::<UsageError>()
        || err.is::<UnknownRegion>()
        || err.is::<SeriesError>()
        || err.is::<CarbonError>()
        || err.is::<GreenestError>()
}

/// Parses the command line. A bad option value is one line on stderr,
/// `BIN: invalid value 'X' for '--opt <V>': why`, and exit status 2; help, version
/// and structural mistakes (unknown or missing options) are clap's own output.
pub fn parse_args<C: clap::Parser>(bin: &str) -> C {
    use clap::error::ErrorKind;
    C::try_parse().unwrap_or_else(|err| match err.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            // The message and `[possible values: …]`, before clap's blank line and tips.
            let text = err.to_string();
            let lines: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
            let line = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
            let _ = writeln!(
                std::io::stderr(),
                "{bin}: {}",
                line.trim_start_matches("error: ")
            );
            std::process::exit(2)
        }
        _ => err.exit(),
    })
}

/// A number within `range`; `noun` says what was expected, `unit` follows the value
/// in the error (`0.01 s is outside 0.05..=3600.0`).
pub(crate) fn number_in(
    text: &str,
    range: RangeInclusive<f64>,
    noun: &str,
    unit: &str,
) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not {noun}"))?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value}{unit} is outside {range:?}"))
    }
}

/// Seconds per interval: 0.05 to 3600.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    number_in(text, 0.05..=3600.0, "a number of seconds", " s")
}

/// A number of intervals: 1 or more.
pub fn parse_count(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("needs at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

pub fn parse_pue(text: &str) -> Result<f64, String> {
    number_in(text, PUE_RANGE, "a ratio like 1.4", "")
}

fn parse_region(text: &str) -> Result<String, String> {
    crate::carbon::resolve_region(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

fn parse_dir(text: &str) -> Result<PathBuf, String> {
    match std::fs::metadata(text) {
        Ok(meta) if meta.is_dir() => Ok(PathBuf::from(text)),
        Ok(_) => Err("not a directory".to_string()),
        Err(e) => Err(io_reason(&e)),
    }
}

fn parse_file(text: &str) -> Result<PathBuf, String> {
    match std::fs::metadata(text) {
        Ok(meta) if meta.is_file() => Ok(PathBuf::from(text)),
        Ok(_) => Err("not a file".to_string()),
        Err(e) => Err(io_reason(&e)),
    }
}

/// `no such file or directory`, without the `(os error 2)` clap users need not see.
fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    let reason = text.split(" (os error").next().unwrap_or(&text);
    reason.to_lowercase()
}

fn parse_watts(text: &str) -> Result<f64, String> {
    number_in(text, 1.0..=5000.0, "a number of watts", " W")
}

pub fn parse_intensity(text: &str) -> Result<f64, String> {
    number_in(text, INTENSITY_RANGE, "a number of gCO₂/kWh", " g/kWh")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_range_checked() {
        type Parser = fn(&str) -> Result<(), String>;
        let seconds: Parser = |t| parse_seconds(t).map(drop);
        let pue: Parser = |t| parse_pue(t).map(drop);
        let dir: Parser = |t| parse_dir(t).map(drop);
        let file: Parser = |t| parse_file(t).map(drop);
        let region: Parser = |t| parse_region(t).map(drop);
        let count: Parser = |t| parse_count(t).map(drop);
        let cases: &[(Parser, &str, Result<(), &str>)] = &[
            (seconds, "1", Ok(())),
            (seconds, "0.05", Ok(())),
            (seconds, "0.01", Err("0.01 s is outside 0.05..=3600.0")),
            (seconds, "NaN", Err("NaN s is outside 0.05..=3600.0")),
            (seconds, "x", Err("'x' is not a number of seconds")),
            (pue, "1", Ok(())),
            (pue, "1.58", Ok(())),
            (pue, "3", Ok(())),
            (pue, "0.9", Err("0.9 is outside 1.0..=3.0")),
            (pue, "12", Err("12 is outside 1.0..=3.0")),
            (pue, "inf", Err("inf is outside 1.0..=3.0")),
            (pue, "x", Err("'x' is not a ratio like 1.4")),
            (dir, "/", Ok(())),
            (dir, "/nonexistent/sys", Err("no such file or directory")),
            (dir, "/etc/hostname", Err("not a directory")),
            (file, "/etc/hostname", Ok(())),
            (file, "/", Err("not a file")),
            (
                file,
                "/nonexistent/lib.so",
                Err("no such file or directory"),
            ),
            (count, "1", Ok(())),
            (count, "0", Err("needs at least 1")),
            (count, "-1", Err("'-1' is not a whole number")),
            (region, "FR", Ok(())),
            (region, "aws:us-east-1", Ok(())),
        ];
        for (parse, text, want) in cases {
            assert_eq!(parse(text), want.map_err(str::to_string), "{text}");
        }
        let err = parse_region("XX-NOPE").unwrap_err();
        assert!(err.starts_with("unknown region \"XX-NOPE\""), "{err}");
    }

    #[test]
    fn usage_errors_exit_2_and_others_1() {
        let usage = anyhow::Error::new(UsageError("bad".into())).context("checking");
        assert_eq!(exit_status(&usage), 2);
        let series = SeriesError::TooShort {
            path: "s.csv".into(),
            points: 1,
        };
        assert_eq!(exit_status(&anyhow::Error::new(series)), 2);
        let io = std::io::Error::other("disk on fire");
        assert_eq!(exit_status(&anyhow::Error::new(io)), 1);
    }

    #[test]
    fn gpu_probes_default_to_ctx_and_follow_no_gpu() {
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            common: CommonArgs,
        }
        let parse = |args: &[&str]| {
            use clap::Parser;
            Args::try_parse_from(std::iter::once("greentop").chain(args.iter().copied()))
                .map(|a| a.common.gpu_probe_mode())
                .map_err(|e| e.to_string())
        };
        for (args, want) in [
            (&[][..], GpuProbeMode::Ctx),
            (&["--no-gpu"], GpuProbeMode::Off),
            (&["--gpu-probes", "all"], GpuProbeMode::All),
            (&["--no-gpu", "--gpu-probes", "ctx"], GpuProbeMode::Ctx),
            (&["--gpu-probes", "off"], GpuProbeMode::Off),
        ] {
            assert_eq!(parse(args), Ok(want), "{args:?}");
        }
        let err = parse(&["--gpu-probes", "some"]).unwrap_err();
        assert!(err.contains("possible values: off, ctx, all"), "{err}");
        let err = parse(&["--cuda-lib", "/nonexistent/libcuda.so.1"]).unwrap_err();
        assert!(err.contains("no such file or directory"), "{err}");
    }

    #[test]
    fn watts_are_range_checked() {
        for (text, ok) in [
            ("85", true),
            ("1", true),
            ("0.5", false),
            ("x", false),
            ("6000", false),
        ] {
            assert_eq!(parse_watts(text).is_ok(), ok, "{text}");
        }
    }
}
