//! `greentop calibrate` and `greentop greenest`: the one-shot commands.
use std::path::Path;
use std::time::{Duration, SystemTime};

use agent::calibrate::measure;
use agent::carbon::greenest::greenest_window;
use agent::carbon::series::Series;
use agent::config::Config;
use agent::pipeline::open_sources;

use crate::cli::{Cli, Command};

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
                None => agent::pipeline::Settings::resolve(&cli.common)?
                    .config
                    .intensity_series
                    .ok_or_else(|| {
                        anyhow::anyhow!("greenest needs an intensity series: --series FILE")
                    })?,
            };
            greenest(&path, *duration, *within)
        }
        // ok: main.rs dispatches `run` itself, for the exit status it passes through.
        Command::Run(_) => unreachable!("greentop run is dispatched by main"),
    }
}

fn calibrate(cli: &Cli, seconds: f64, dry_run: bool) -> anyhow::Result<()> {
    let mut sources = open_sources(&cli.common)?;
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
