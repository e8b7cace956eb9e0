//! The CPU energy source greentop runs on: a measured source whose counters are
//! watched every interval, and the labelled estimates standing in wherever a counter
//! is missing or not believed (packages: the TDP estimate; DRAM: the memory
//! estimate). psys is the platform: shown as such, never added to the packages.
//! A reading, once returned, is never changed.
use std::time::Duration;

use super::estimate::EstimateSource;
use super::memory::MemoryEstimate;
use super::trust::{Ceilings, CounterTrust, Verdict, Watch, judge};
use super::{DomainEnergy, DomainKind, EnergyReading, EnergySource, Provenance, SourceError};

/// What happens to a counter greentop does not believe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--source auto`: its domain switches to the estimate until it counts again.
    Substitute,
    /// `--source rapl|perf`: shown as read (the user asked for it), flagged as not
    /// measured, and warned about; never replaced.
    AsAsked,
}

/// A measured source (if any) with its watches, and the estimates.
pub struct WatchedCpu {
    measured: Option<Box<dyn EnergySource>>,
    watches: Vec<Watch>,
    estimate: Option<EstimateSource>,
    memory: Option<MemoryEstimate>,
    /// Physical package ids, for the memory estimate's share per package.
    packages: Vec<u32>,
    ceilings: Ceilings,
    mode: Mode,
}

/// The parts a [`WatchedCpu`] is made of.
pub struct Parts {
    pub measured: Option<Box<dyn EnergySource>>,
    /// One per watched counter of `measured`, as the start-up probe left it.
    pub watches: Vec<Watch>,
    pub estimate: Option<EstimateSource>,
    pub memory: Option<MemoryEstimate>,
    pub packages: Vec<u32>,
    pub ceilings: Ceilings,
    pub mode: Mode,
}

impl WatchedCpu {
    pub fn new(parts: Parts) -> WatchedCpu {
        WatchedCpu {
            measured: parts.measured,
            watches: parts.watches,
            estimate: parts.estimate,
            memory: parts.memory,
            packages: parts.packages,
            ceilings: parts.ceilings,
            mode: parts.mode,
        }
    }

    /// Every watched counter's trust before the first interval.
    pub fn counters(&self) -> Vec<CounterTrust> {
        self.watches.iter().map(Watch::current).collect()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Judges every watched counter of `reading` (all unreadable when the source
    /// failed), returning the trust of each and whether each domain is usable.
    fn observe(
        &mut self,
        reading: Result<&EnergyReading, &SourceError>,
    ) -> (Vec<CounterTrust>, Vec<(DomainKind, u32, bool)>) {
        let mut trusts = Vec::with_capacity(self.watches.len());
        let mut usable = Vec::with_capacity(self.watches.len());
        for watch in &mut self.watches {
            let kind = watch.domain.kind;
            let ceiling_w = self.ceilings.of(kind).unwrap_or(f64::INFINITY);
            let verdict = match reading {
                Ok(reading) => reading
                    .domains
                    .iter()
                    .find(|d| d.domain == watch.domain)
                    .map_or(Verdict::Unjudged, |d| judge(d, reading.elapsed, ceiling_w)),
                Err(err) => Verdict::Bad {
                    problem: super::trust::Problem::Unreadable,
                    why: err.to_string(),
                },
            };
            let (ok, trust) = watch.observe(&verdict);
            usable.push((kind, watch.domain.index, ok));
            trusts.push(trust);
        }
        (trusts, usable)
    }

    /// The measured domains to report, each flagged or dropped by its counter's trust.
    fn keep_measured(
        &self,
        reading: EnergyReading,
        usable: &[(DomainKind, u32, bool)],
        trusts: &[CounterTrust],
    ) -> Vec<DomainEnergy> {
        let is_usable = |kind: DomainKind, index: u32| {
            usable
                .iter()
                .find(|(k, i, _)| *k == kind && *i == index)
                .is_none_or(|(_, _, ok)| *ok)
        };
        let dram: Vec<bool> = usable
            .iter()
            .filter(|(kind, _, _)| *kind == DomainKind::Dram)
            .map(|(_, _, ok)| *ok)
            .collect();
        // DRAM is measured only while every DRAM counter is believed: never a mix.
        let dram_ok = dram.iter().all(|ok| *ok);
        let mut kept = Vec::with_capacity(reading.domains.len());
        for mut d in reading.domains {
            let ok = match d.domain.kind {
                DomainKind::Core | DomainKind::Uncore => {
                    is_usable(DomainKind::Package, d.domain.index)
                }
                DomainKind::Dram if self.mode == Mode::Substitute => dram_ok,
                kind => is_usable(kind, d.domain.index),
            };
            if ok {
                kept.push(d);
            } else if self.mode == Mode::AsAsked {
                d.trusted = false;
                let trust = trusts.iter().find(|t| t.domain == d.domain);
                d.note = trust.and_then(|t| t.note.clone()).or(d.note);
                kept.push(d);
            }
        }
        kept
    }

    /// The estimates for every package and DRAM domain `domains` lacks.
    fn fill_in(
        &self,
        domains: &mut Vec<DomainEnergy>,
        estimate: Option<EnergyReading>,
        elapsed: Duration,
    ) {
        let has = |domains: &[DomainEnergy], kind: DomainKind, index: Option<u32>| {
            domains
                .iter()
                .any(|d| d.domain.kind == kind && index.is_none_or(|i| d.domain.index == i))
        };
        for e in estimate.into_iter().flat_map(|r| r.domains) {
            if !has(domains, DomainKind::Package, Some(e.domain.index)) {
                domains.push(e);
            }
        }
        if let Some(memory) = &self.memory
            && !has(domains, DomainKind::Dram, None)
        {
            for &package in &self.packages {
                domains.push(memory.domain(package, self.packages.len(), elapsed));
            }
        }
    }
}

impl EnergySource for WatchedCpu {
    /// The label of the package energy: the measured source's while one of its
    /// package counters is believed (or was asked for), else the estimate's.
    fn name(&self) -> &str {
        match &self.measured {
            Some(measured)
                if self.mode == Mode::AsAsked
                    || self
                        .watches
                        .iter()
                        .any(|w| w.domain.kind == DomainKind::Package && w.trusted()) =>
            {
                measured.name()
            }
            _ => Provenance::EstimatedTdp.label(),
        }
    }

    fn describe(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.measured.iter().flat_map(|m| m.describe()).collect();
        lines.extend(self.estimate.iter().flat_map(|e| e.describe()));
        lines.extend(self.memory.iter().map(MemoryEstimate::describe));
        lines
    }

    fn read(&mut self) -> Result<EnergyReading, SourceError> {
        let measured = self.measured.as_mut().map(|m| m.read());
        let estimate = match self.estimate.as_mut().map(|e| e.read()) {
            Some(Err(err)) if measured.is_none() => return Err(err),
            other => other.and_then(Result::ok),
        };
        let elapsed = match (&measured, &estimate) {
            (Some(Ok(reading)), _) | (_, Some(reading)) => reading.elapsed,
            _ => Duration::ZERO,
        };
        let (counters, mut domains) = match measured {
            Some(result) => {
                let (trusts, usable) = self.observe(result.as_ref());
                let kept = match result {
                    Ok(reading) => self.keep_measured(reading, &usable, &trusts),
                    Err(_) => Vec::new(),
                };
                (trusts, kept)
            }
            None => (Vec::new(), Vec::new()),
        };
        self.fill_in(&mut domains, estimate, elapsed);
        Ok(EnergyReading {
            elapsed,
            domains,
            counters,
            ..EnergyReading::default()
        })
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
pub(crate) mod tests;
