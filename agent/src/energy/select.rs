//! Chooses the energy sources for this machine (`--source`), and explains the choice
//! (`--list-sources`): measured counters that earned trust in the start-up probe
//! first, the labelled estimates wherever none did.
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use super::estimate::EstimateSource;
use super::memory::MemoryEstimate;
use super::nvml::NvmlSource;
use super::perf_power::{CounterOpener, PerfEventOpen, PerfPowerSource};
use super::probe::{CounterProbe, one_cpu_per_package, probe};
use super::rapl::RaplSource;
use super::trust::{Ceilings, Watch};
use super::watch::{Mode, Parts, WatchedCpu};
use super::{DomainKind, EnergySource, SourceError, tdp};
use crate::topology::{self, Topology};

mod report;
use report::{found, missing};

/// Which CPU energy source to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CpuSourceChoice {
    /// RAPL powercap if its counters pass the start-up probe, else the perf power PMU,
    /// else the TDP estimate.
    #[default]
    Auto,
    /// RAPL through /sys/class/powercap (used even if the probe distrusts it, with a warning).
    Rapl,
    /// RAPL through the perf `power` PMU (used even if the probe distrusts it, with a warning).
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
    /// How long the start-up probe watches the counters (`probe::DEFAULT_WINDOW`).
    pub probe_window: Duration,
}

/// One candidate source: what was found, what the probe saw, and whether it was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub name: &'static str,
    /// `Ok(describe lines)` if it opened, `Err(reason)` if not.
    pub found: Result<Vec<String>, String>,
    pub chosen: bool,
    /// Each watched counter as the start-up probe saw it (empty when not probed).
    pub probe: Vec<CounterProbe>,
    /// Why it was chosen or not, when it opened.
    pub why: Option<String>,
}

/// The opened sources and the story of how they were chosen.
pub struct Sources {
    pub cpu: Box<dyn EnergySource>,
    pub gpu: Option<Box<dyn EnergySource>>,
    pub candidates: Vec<Candidate>,
    /// Why the CPU source is the one it is, in one line.
    pub cpu_reason: String,
    /// Lines to say loudly at start: counters asked for with `--source` that the
    /// probe does not believe.
    pub warnings: Vec<String>,
}

/// What the CPU choice produced.
struct CpuChoice {
    cpu: WatchedCpu,
    reason: String,
    warnings: Vec<String>,
}

impl Sources {
    /// Opens the CPU source the options ask for (erroring if an explicit choice is
    /// unavailable) and the GPU source if there is one.
    pub fn open(opts: &SourceOptions) -> Result<Sources, SourceError> {
        Sources::open_with(opts, &PerfEventOpen)
    }

    /// `open`, with perf counters opened by `opener` (tests feed counters through it).
    pub fn open_with(
        opts: &SourceOptions,
        opener: &dyn CounterOpener,
    ) -> Result<Sources, SourceError> {
        let mut candidates = Vec::new();
        let choice = open_cpu(opts, opener, &mut candidates)?;
        let gpu = open_gpu(opts, &mut candidates);
        Ok(Sources {
            cpu: Box::new(choice.cpu),
            gpu,
            candidates,
            cpu_reason: choice.reason,
            warnings: choice.warnings,
        })
    }

    /// The `--list-sources` report.
    pub fn report(&self) -> String {
        report::render(self)
    }

    /// What to say on stderr at start: where CPU energy comes from and why, and a
    /// warning per counter used although not believed.
    pub fn startup_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "CPU energy from {} ({})",
            self.cpu.name(),
            self.cpu_reason
        )];
        lines.extend(self.warnings.iter().cloned());
        lines
    }
}

fn open_gpu(
    opts: &SourceOptions,
    candidates: &mut Vec<Candidate>,
) -> Option<Box<dyn EnergySource>> {
    if opts.no_gpu {
        candidates.push(missing("nvml", "not looked for (--no-gpu)".to_string()));
        return None;
    }
    match NvmlSource::open(opts.nvml_lib.as_deref()) {
        Ok(source) => {
            candidates.push(found("nvml", &source, Vec::new(), true, None));
            Some(Box::new(source))
        }
        Err(err) => {
            candidates.push(missing("nvml", err.to_string()));
            None
        }
    }
}

/// What every CPU choice shares: the estimates and the limits of belief.
struct Common {
    estimate: Result<EstimateSource, SourceError>,
    memory: Option<MemoryEstimate>,
    packages: Vec<u32>,
    ceilings: Ceilings,
}

impl Common {
    fn open(opts: &SourceOptions) -> Common {
        let possible = topology::possible_cpus(&opts.sysfs_root).unwrap_or(1);
        let packages = Topology::read(&opts.sysfs_root, possible).packages;
        let tdp_w = opts
            .cpu_tdp_watts
            .or_else(|| tdp::lookup_cpuinfo(&opts.procfs_root).map(|row| row.tdp_w));
        Common {
            estimate: EstimateSource::open(&opts.procfs_root, &opts.sysfs_root, opts.cpu_tdp_watts),
            memory: MemoryEstimate::open(&opts.procfs_root).ok(),
            ceilings: Ceilings::for_tdp(tdp_w, packages.len()),
            packages,
        }
    }

    fn watched(
        self,
        measured: Option<(Box<dyn EnergySource>, &[CounterProbe])>,
        mode: Mode,
    ) -> WatchedCpu {
        let (measured, watches) = match measured {
            Some((source, probes)) => {
                let watches = probes
                    .iter()
                    .map(|p| Watch::from_probe(p.domain.clone(), p.provenance, &p.verdict))
                    .collect();
                (Some(source), watches)
            }
            None => (None, Vec::new()),
        };
        WatchedCpu::new(Parts {
            measured,
            watches,
            estimate: self.estimate.ok(),
            memory: self.memory,
            packages: self.packages,
            ceilings: self.ceilings,
            mode,
        })
    }
}

fn open_cpu(
    opts: &SourceOptions,
    opener: &dyn CounterOpener,
    candidates: &mut Vec<Candidate>,
) -> Result<CpuChoice, SourceError> {
    let common = Common::open(opts);
    let sysfs = opts.sysfs_root.as_path();
    let asked: Box<dyn EnergySource> = match opts.cpu {
        CpuSourceChoice::Auto => return open_auto(opts, opener, common, candidates),
        CpuSourceChoice::Estimate => {
            let estimate = common.estimate.as_ref().map_err(clone_error)?;
            candidates.push(found("estimated-tdp", estimate, Vec::new(), true, None));
            return Ok(CpuChoice {
                cpu: common.watched(None, Mode::Substitute),
                reason: "asked for with --source estimate".to_string(),
                warnings: Vec::new(),
            });
        }
        CpuSourceChoice::Rapl => Box::new(RaplSource::open(sysfs)?),
        CpuSourceChoice::Perf => Box::new(PerfPowerSource::open_with(sysfs, opener)?),
    };
    let mut source = asked;
    let probes = probe_one(opts, &mut *source, &common.ceilings)?;
    let name = report::source_name(source.name());
    let warnings: Vec<String> = probes
        .iter()
        .filter(|p| !p.trusted())
        .map(|p| {
            format!(
                "WARNING: {}; used anyway because --source {} asked for it, shown as \
                 not measured",
                p.line(),
                report::flag_of(name)
            )
        })
        .collect();
    candidates.push(found(name, &*source, probes.clone(), true, None));
    let reason = format!("asked for with --source {}", report::flag_of(name));
    Ok(CpuChoice {
        cpu: common.watched(Some((source, &probes)), Mode::AsAsked),
        reason,
        warnings,
    })
}

/// A measured source that opened (or why not), by candidate name.
type Opened = (&'static str, Result<Box<dyn EnergySource>, SourceError>);
/// A measured source with what the start-up probe saw of its counters.
type Probed = (Box<dyn EnergySource>, Vec<CounterProbe>);

/// The measured candidates after the probe.
#[derive(Default)]
struct Sorted {
    /// The first with a counter that earned trust.
    chosen: Option<Probed>,
    /// Else the first that opened: watched, in case its counters start counting.
    watched: Option<Probed>,
    why_not: Vec<String>,
}

/// Probes whichever of powercap and perf opened, in one window, and takes the first
/// with a counter that earned trust; the estimate when neither has one.
fn open_auto(
    opts: &SourceOptions,
    opener: &dyn CounterOpener,
    common: Common,
    candidates: &mut Vec<Candidate>,
) -> Result<CpuChoice, SourceError> {
    let sysfs = opts.sysfs_root.as_path();
    let mut opened: Vec<Opened> = vec![
        ("rapl-powercap", RaplSource::open(sysfs).map(boxed)),
        (
            "perf-power",
            PerfPowerSource::open_with(sysfs, opener).map(boxed),
        ),
    ];
    let probes = {
        let mut live: Vec<&mut dyn EnergySource> = opened
            .iter_mut()
            .filter_map(|(_, source)| match source {
                Ok(source) => Some(&mut **source as &mut dyn EnergySource),
                Err(_) => None,
            })
            .collect();
        let busy = one_cpu_per_package(sysfs);
        probe(&mut live, opts.probe_window, &busy, &common.ceilings)
    };
    let sorted = sort_candidates(opened, probes, candidates);
    if let Some((source, seen)) = sorted.chosen {
        let reason = report::chosen_reason(source.name(), &seen, &sorted.why_not);
        return Ok(CpuChoice {
            cpu: common.watched(Some((source, &seen)), Mode::Substitute),
            reason,
            warnings: Vec::new(),
        });
    }
    let estimate = common.estimate.as_ref().map_err(clone_error)?;
    candidates.push(found("estimated-tdp", estimate, Vec::new(), true, None));
    let lead = match sorted.watched {
        Some(_) => "no trustworthy energy counter",
        None => "no energy counter",
    };
    let reason = format!("{lead}: {}", sorted.why_not.join("; "));
    let (measured, seen) = match sorted.watched {
        Some((source, seen)) => (Some(source), seen),
        None => (None, Vec::new()),
    };
    let measured = measured.map(|source| (source, seen.as_slice()));
    Ok(CpuChoice {
        cpu: common.watched(measured, Mode::Substitute),
        reason,
        warnings: Vec::new(),
    })
}

fn boxed<S: EnergySource + 'static>(source: S) -> Box<dyn EnergySource> {
    Box::new(source)
}

/// Each opened candidate with its probe results, in preference order, into chosen,
/// watched and the reasons why not; every candidate is recorded for the report.
fn sort_candidates(
    opened: Vec<Opened>,
    probes: Vec<Result<Vec<CounterProbe>, SourceError>>,
    candidates: &mut Vec<Candidate>,
) -> Sorted {
    let mut probes = probes.into_iter();
    let mut sorted = Sorted::default();
    for (name, source) in opened {
        let source = match source {
            Ok(source) => source,
            Err(err) => {
                sorted
                    .why_not
                    .push(format!("{}: {err}", report::short(name)));
                candidates.push(missing(name, err.to_string()));
                continue;
            }
        };
        let seen = probes.next().and_then(Result::ok).unwrap_or_default();
        let trusted = seen.iter().any(CounterProbe::trusted);
        let take = sorted.chosen.is_none() && trusted;
        let watch = sorted.chosen.is_none() && sorted.watched.is_none() && !trusted;
        let why = if take {
            "chosen: its counters advanced at a plausible rate".to_string()
        } else if trusted {
            "not chosen: powercap is preferred and passed the probe".to_string()
        } else {
            let short = report::short(name);
            sorted
                .why_not
                .push(format!("{short}: no counter passed the start-up probe"));
            let watching = if watch {
                "; watched, and used if it starts counting"
            } else {
                ""
            };
            format!(
                "not chosen: no counter advanced at a plausible rate during the probe{watching}"
            )
        };
        candidates.push(found(name, &*source, seen.clone(), take, Some(why)));
        if take {
            sorted.chosen = Some((source, seen));
        } else if watch {
            sorted.watched = Some((source, seen));
        }
    }
    sorted
}

/// The start-up probe of one explicitly chosen source.
fn probe_one(
    opts: &SourceOptions,
    source: &mut dyn EnergySource,
    ceilings: &Ceilings,
) -> Result<Vec<CounterProbe>, SourceError> {
    let busy = one_cpu_per_package(&opts.sysfs_root);
    let mut sources = [source];
    probe(&mut sources, opts.probe_window, &busy, ceilings)
        .pop()
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// Whether any counter of `kind` passed the probe.
pub fn trusted_kind(probes: &[CounterProbe], kind: DomainKind) -> bool {
    probes.iter().any(|p| p.domain.kind == kind && p.trusted())
}

fn clone_error(err: &SourceError) -> SourceError {
    SourceError::Unsupported(err.to_string())
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
