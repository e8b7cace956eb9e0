//! Chooses the energy sources for this machine (`--source`), and explains the choice
//! (`--list-sources`): measured counters first, an estimate only where none exists.
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::estimate::EstimateSource;
use super::nvml::NvmlSource;
use super::perf_power::PerfPowerSource;
use super::rapl::RaplSource;
use super::{EnergySource, SourceError};

/// Which CPU energy source to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CpuSourceChoice {
    /// RAPL powercap if readable, else the perf power PMU, else the TDP estimate.
    #[default]
    Auto,
    /// RAPL through /sys/class/powercap.
    Rapl,
    /// RAPL through the perf `power` PMU.
    Perf,
    /// Estimate from TDP and load (labelled estimated-tdp).
    Estimate,
}

/// Everything needed to open the sources.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    pub sysfs_root: PathBuf,
    pub procfs_root: PathBuf,
    pub cpu: CpuSourceChoice,
    pub cpu_tdp_watts: Option<f64>,
    /// Path of `libnvidia-ml.so.1`; `None` lets the loader find it.
    pub nvml_lib: Option<PathBuf>,
    /// Do not look for GPUs at all.
    pub no_gpu: bool,
}

/// One candidate source: what was found and whether it was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub name: &'static str,
    /// `Ok(describe lines)` if it opened, `Err(reason)` if not.
    pub found: Result<Vec<String>, String>,
    pub chosen: bool,
}

/// The opened sources and the story of how they were chosen.
pub struct Sources {
    pub cpu: Box<dyn EnergySource>,
    pub gpu: Option<Box<dyn EnergySource>>,
    pub candidates: Vec<Candidate>,
    /// Why the CPU source is the one it is, in one line.
    pub cpu_reason: String,
}

impl Sources {
    /// Opens the CPU source the options ask for (erroring if an explicit choice is
    /// unavailable) and the GPU source if there is one.
    pub fn open(opts: &SourceOptions) -> Result<Sources, SourceError> {
        let mut candidates = Vec::new();
        let (cpu, cpu_reason) = open_cpu(opts, &mut candidates)?;
        let gpu = if opts.no_gpu {
            candidates.push(Candidate {
                name: "nvml",
                found: Err("not looked for (--no-gpu)".to_string()),
                chosen: false,
            });
            None
        } else {
            match NvmlSource::open(opts.nvml_lib.as_deref()) {
                Ok(source) => {
                    candidates.push(found("nvml", &source, true));
                    Some(Box::new(source) as Box<dyn EnergySource>)
                }
                Err(err) => {
                    candidates.push(missing("nvml", &err));
                    None
                }
            }
        };
        Ok(Sources {
            cpu,
            gpu,
            candidates,
            cpu_reason,
        })
    }

    /// The `--list-sources` report.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for candidate in &self.candidates {
            let mark = if candidate.chosen { "*" } else { " " };
            match &candidate.found {
                Ok(lines) => {
                    out.push_str(&format!("{mark} {:<14} found\n", candidate.name));
                    for line in lines {
                        out.push_str(&format!("      {line}\n"));
                    }
                }
                Err(reason) => {
                    out.push_str(&format!(
                        "{mark} {:<14} not available: {reason}\n",
                        candidate.name
                    ));
                }
            }
        }
        out.push_str(&format!(
            "CPU energy: {} ({})\n",
            self.cpu.name(),
            self.cpu_reason
        ));
        match &self.gpu {
            Some(gpu) => out.push_str(&format!("GPU energy: {}\n", gpu.name())),
            None => out.push_str("GPU energy: none\n"),
        }
        out
    }
}

fn open_cpu(
    opts: &SourceOptions,
    candidates: &mut Vec<Candidate>,
) -> Result<(Box<dyn EnergySource>, String), SourceError> {
    let sysfs = opts.sysfs_root.as_path();
    match opts.cpu {
        CpuSourceChoice::Rapl => {
            let source = RaplSource::open(sysfs)?;
            candidates.push(found("rapl-powercap", &source, true));
            Ok((Box::new(source), "asked for with --source rapl".to_string()))
        }
        CpuSourceChoice::Perf => {
            let source = PerfPowerSource::open(sysfs)?;
            candidates.push(found("perf-power", &source, true));
            Ok((Box::new(source), "asked for with --source perf".to_string()))
        }
        CpuSourceChoice::Estimate => {
            let source = open_estimate(opts)?;
            candidates.push(found("estimated-tdp", &source, true));
            Ok((
                Box::new(source),
                "asked for with --source estimate".to_string(),
            ))
        }
        CpuSourceChoice::Auto => open_auto(opts, sysfs, candidates),
    }
}

fn open_auto(
    opts: &SourceOptions,
    sysfs: &Path,
    candidates: &mut Vec<Candidate>,
) -> Result<(Box<dyn EnergySource>, String), SourceError> {
    let rapl = RaplSource::open(sysfs);
    let rapl_err = match rapl {
        Ok(source) => {
            candidates.push(found("rapl-powercap", &source, true));
            candidates.push(Candidate {
                name: "perf-power",
                found: Err("not probed: powercap is readable".to_string()),
                chosen: false,
            });
            let why = "measured RAPL counters, readable through powercap".to_string();
            return Ok((Box::new(source), why));
        }
        Err(err) => {
            candidates.push(missing("rapl-powercap", &err));
            err
        }
    };
    let perf_err = match PerfPowerSource::open(sysfs) {
        Ok(source) => {
            candidates.push(found("perf-power", &source, true));
            let why = format!("measured RAPL counters through perf; powercap: {rapl_err}");
            return Ok((Box::new(source), why));
        }
        Err(err) => {
            candidates.push(missing("perf-power", &err));
            err
        }
    };
    let source = open_estimate(opts)?;
    candidates.push(found("estimated-tdp", &source, true));
    let why = format!("no energy counter: powercap: {rapl_err}; perf: {perf_err}");
    Ok((Box::new(source), why))
}

fn open_estimate(opts: &SourceOptions) -> Result<EstimateSource, SourceError> {
    EstimateSource::open(&opts.procfs_root, &opts.sysfs_root, opts.cpu_tdp_watts)
}

fn found(name: &'static str, source: &dyn EnergySource, chosen: bool) -> Candidate {
    Candidate {
        name,
        found: Ok(source.describe()),
        chosen,
    }
}

fn missing(name: &'static str, err: &SourceError) -> Candidate {
    Candidate {
        name,
        found: Err(err.to_string()),
        chosen: false,
    }
}
