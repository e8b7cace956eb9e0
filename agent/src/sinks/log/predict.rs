//! Predicted energies: what attribution gives a process or thread from its on-CPU
//! ns and the interval's joules per ns of each package (docs/methodology.md), so a
//! row need not store them. The encoder stores a value whenever the prediction is
//! not bit-for-bit equal to it; the decoder calls the very same functions.
use super::record::PackageRates;
use super::wire::{Secs, ThreadRow};
use crate::model::{Interval, ProcessEnergy};

/// CPU package or DRAM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Domain {
    Cpu,
    Dram,
}

impl Domain {
    fn rate(self, rates: &PackageRates) -> f64 {
        match self {
            Domain::Cpu => rates.cpu_joules_per_ns,
            Domain::Dram => rates.dram_joules_per_ns,
        }
    }
}

/// A process's energy in `domain`: the sum over its thread rows when it has them
/// (then it must have run on one package only), else Σ over packages of
/// ns × rate, in package order.
pub fn process_energy(
    cpu: Secs,
    by_package: Option<&[Secs]>,
    thread_rows: Option<&[ThreadRow]>,
    rates: &[PackageRates],
    domain: Domain,
) -> Option<f64> {
    if let Some(rows) = thread_rows {
        let rate = domain.rate(rates.get(sole_package(by_package)?)?);
        // The same `Sum` attribution uses over its threads.
        return rows
            .iter()
            .map(|row| row.cpu.ns().map(|ns| ns as f64 * rate))
            .sum();
    }
    let mut acc = 0.0;
    match by_package {
        None => acc += cpu.ns()? as f64 * domain.rate(rates.first()?),
        Some(list) => {
            for (secs, rate) in list.iter().zip(rates) {
                acc += secs.ns()? as f64 * domain.rate(rate);
            }
            if list.len() > rates.len() && list[rates.len()..].iter().any(|s| s.ns() != Some(0)) {
                return None;
            }
        }
    }
    Some(acc)
}

/// The one package a process ran on (index into `rates`), if it ran on one only;
/// `None` for `by_package` means one package.
pub fn sole_package(by_package: Option<&[Secs]>) -> Option<usize> {
    let Some(list) = by_package else {
        return Some(0);
    };
    let mut busy = list.iter().enumerate().filter(|(_, s)| s.ns() != Some(0));
    match (busy.next(), busy.next()) {
        (None, _) => Some(0),
        (Some((index, _)), None) => Some(index),
        _ => None,
    }
}

/// A thread's CPU + DRAM energy on the package whose rates are `rate`.
pub fn thread_joules(cpu: Secs, rate: Option<&PackageRates>) -> Option<f64> {
    let rate = rate?;
    let ns = cpu.ns()? as f64;
    Some(ns * rate.cpu_joules_per_ns + ns * rate.dram_joules_per_ns)
}

/// The rates that predict the most processes exactly. Attribution multiplies ns by
/// one rate per package; dividing a process's joules by its ns gives that rate to
/// within an ulp or two, so the candidates are those quotients and their
/// neighbours, scored on the interval's own processes.
pub fn infer_rates(interval: &Interval) -> Vec<PackageRates> {
    let packages = interval.system.packages.len().max(1);
    let mut rates = vec![PackageRates::default(); packages];
    for (index, rate) in rates.iter_mut().enumerate() {
        rate.cpu_joules_per_ns = infer_rate(interval, index, packages, |p| p.cpu_joules);
        rate.dram_joules_per_ns = infer_rate(interval, index, packages, |p| p.dram_joules);
    }
    rates
}

/// Processes scored per candidate rate.
const SCORED: usize = 64;
/// Processes whose quotient makes candidates.
const SEEDS: usize = 8;

fn infer_rate(
    interval: &Interval,
    index: usize,
    packages: usize,
    value: fn(&ProcessEnergy) -> f64,
) -> f64 {
    // Processes that ran on package `index` only: joules = Σ_threads ns_t × rate.
    let eligible: Vec<(u64, f64, Option<Vec<u64>>)> = interval
        .processes
        .iter()
        .filter_map(|p| {
            let ns = only_on(p, index, packages)?;
            let threads = match &p.threads {
                Some(ts) => Some(
                    ts.iter()
                        .map(|t| Secs::from_seconds(t.cpu_seconds).ns())
                        .collect::<Option<Vec<u64>>>()?,
                ),
                _ => None,
            };
            Some((ns, value(p), threads))
        })
        .take(SCORED)
        .collect();
    let predict = |rate: f64, (ns, _, threads): &(u64, f64, Option<Vec<u64>>)| match threads {
        Some(ts) => ts.iter().map(|&t| t as f64 * rate).sum::<f64>(),
        None => 0.0 + *ns as f64 * rate,
    };
    let mut best = (0usize, 0.0f64);
    for seed in eligible.iter().take(SEEDS) {
        let quotient = seed.1 / seed.0 as f64;
        let mut candidate = quotient.next_down().next_down();
        for _ in 0..5 {
            let hits = eligible
                .iter()
                .filter(|e| predict(candidate, e).to_bits() == e.1.to_bits())
                .count();
            if hits > best.0 {
                best = (hits, candidate);
            }
            candidate = candidate.next_up();
        }
        if best.0 == eligible.len() {
            break;
        }
    }
    best.1
}

/// The process's ns when all of its time is on package `index`.
fn only_on(p: &ProcessEnergy, index: usize, packages: usize) -> Option<u64> {
    let by_package = &p.cpu_seconds_by_package;
    if by_package.len() > packages {
        return None;
    }
    let mut on_index = None;
    for (i, seconds) in by_package.iter().enumerate() {
        let ns = Secs::from_seconds(*seconds).ns()?;
        match (i == index, ns) {
            (true, ns) if ns > 0 => on_index = Some(ns),
            (false, 0) | (true, _) => {}
            (false, _) => return None,
        }
    }
    on_index
}
