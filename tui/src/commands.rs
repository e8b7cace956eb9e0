//! `greentop calibrate`, `greentop greenest` and `greentop report`: the one-shot
//! commands.
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use agent::calibrate::measure;
use agent::carbon::CarbonConfig;
use agent::carbon::greenest::greenest_window;
use agent::carbon::series::Series;
use agent::config::Config;
use agent::pipeline::open_sources;
use agent::report::{self as log_report, ReportOptions, emissions, format};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use agent::cli::UsageError;
use greentop_tui::feed::{FeedKind, ReplayOptions};
use greentop_tui::run::run_live;

use crate::cli::{Cli, Command, ReplayArgs, ReportArgs, ReportFormat};

pub fn run_command(cli: &Cli, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Calibrate { duration, dry_run } => calibrate(cli, *duration, *dry_run),
        Command::Greenest {
            duration,
            within,
            series,
        } => {
            let path = match series.as_ref().or(cli.common.intensity_series.as_ref()) {
                Some(path) => path.clone(),
                None => cli
                    .common
                    .pipeline_options()
                    .settings()?
                    .config
                    .intensity_series
                    .ok_or_else(|| {
                        anyhow::anyhow!("greenest needs an intensity series: --series FILE")
                    })?,
            };
            greenest(&path, *duration, *within)
        }
        Command::Report(args) => report(cli, args),
        // ok: main.rs dispatches these itself, for the exit status they pass through.
        Command::Run(_) | Command::Replay(_) => {
            unreachable!("greentop run and replay are dispatched by main")
        }
    }
}

/// `greentop replay`: the live view on a log; the exit status as for the live view.
pub fn replay(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<u8> {
    let from = args
        .from
        .as_deref()
        .map(|text| log_report::parse_time(text, SystemTime::now()))
        .transpose()
        .map_err(|e| UsageError(format!("--from: {e}")))?;
    let opts = ReplayOptions {
        inputs: args.logs.clone(),
        speed: args.speed,
        from,
    };
    run_live(FeedKind::Replay(opts), cli.delay_s).map(|end| end.exit_code())
}

fn calibrate(cli: &Cli, seconds: f64, dry_run: bool) -> anyhow::Result<()> {
    let mut sources = open_sources(&cli.common.source_options())?;
    eprintln!("greentop: measuring idle power for {seconds:.0} s; keep the machine quiet");
    let run = measure(
        &mut sources,
        Duration::from_secs_f64(seconds),
        &cli.common.procfs_root,
    );
    for (package, watts) in &run.calibration.package_idle_w {
        println!(
            "package {package}: {watts:.2} W idle ({})",
            sources.cpu.name()
        );
    }
    for (gpu, watts) in &run.calibration.gpu_idle_w {
        println!("GPU {gpu}: {watts:.2} W idle");
    }
    println!(
        "CPUs busy {:.1} % during {:.1} s",
        100.0 * run.busy_fraction,
        run.seconds
    );
    for note in &run.notes {
        println!("note: {note}");
    }
    if dry_run {
        return Ok(());
    }
    let path = cli
        .common
        .config
        .clone()
        .unwrap_or_else(Config::default_path);
    let mut config = if path.exists() {
        Config::load(&path)?
    } else {
        Config::default()
    };
    config.calibration = run.calibration;
    config.save(&path)?;
    println!(
        "saved to {} ([calibration]); use --idle baseline",
        path.display()
    );
    Ok(())
}

fn greenest(path: &Path, duration: Duration, within: Duration) -> anyhow::Result<()> {
    let series = Series::from_path(path)?;
    let now = SystemTime::now();
    let best = greenest_window(&series, duration, within, now)?;
    let wait = best.start.duration_since(now).unwrap_or_default();
    println!(
        "start at {} (in {}): {:.1} gCO2/kWh on average over {}",
        humantime::format_rfc3339_seconds(best.start),
        humantime::format_duration(Duration::from_secs(wait.as_secs())),
        best.average_g_per_kwh,
        humantime::format_duration(duration)
    );
    println!(
        "starting now: {:.1} gCO2/kWh; saving {:.1} %",
        best.now_average_g_per_kwh, best.saving_percent
    );
    Ok(())
}

/// `greentop report`: the logs summed by `agent::report`, in the chosen format; a
/// progress bar on stderr when it is a terminal.
fn report(cli: &Cli, args: &ReportArgs) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let time = |text: &Option<String>, what: &str| {
        text.as_deref()
            .map(|t| log_report::parse_time(t, now))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--{what}: {e}"))
    };
    let region = args.region.clone().or(cli.common.region.clone());
    let intensity = args.intensity.or(cli.common.intensity);
    let series = args
        .intensity_series
        .clone()
        .or(cli.common.intensity_series.clone());
    let recompute = region.is_some() || intensity.is_some() || series.is_some();
    let opts = ReportOptions {
        by: Some(args.by),
        since: time(&args.since, "since")?,
        until: time(&args.until, "until")?,
        top: args.top.map(|n| n as usize),
        carbon: recompute.then_some(CarbonConfig {
            region,
            intensity_g_per_kwh: intensity,
            series_path: series,
            provider: None,
            pue: None,
        }),
        pue: args.pue.or(cli.common.pue),
    };
    let bar = std::io::stderr().is_terminal().then(progress_bar);
    let result = log_report::build(&args.logs, &opts, &mut |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = result?;
    for (path, notice) in &report.notices {
        eprintln!("greentop: {}: {notice}", path.display());
    }
    let text = match args.format {
        ReportFormat::Table => format::table(&report),
        ReportFormat::Csv => format::csv(&report),
        ReportFormat::Json => format::json(&report),
        ReportFormat::EmissionsCsv => emissions::emissions_csv(&report),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the report")
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("reading logs {wide_bar} {bytes}/{total_bytes} {eta}")
    {
        bar.set_style(style);
    }
    bar
}
