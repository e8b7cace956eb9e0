//! The watched CPU source through the perf-reader seam: counters that freeze and
//! recover, run backwards, or imply impossible power, read by read. Each counter's
//! value is computed at its read (no helper thread), and reads are at least
//! `MIN_JUDGED` apart (a sleep is only ever longer), so every step is deterministic.
use std::path::Path;
use std::time::Duration;

use crate::energy::select::{CpuSourceChoice, SourceOptions, Sources};
use crate::energy::summary::summarize;
use crate::energy::testkit::{CountScript, ScriptedPerf, perf_counts, perf_pmu_tree};
use crate::energy::trust::{Change, MIN_JUDGED, Problem};
use crate::energy::{DomainKind, EnergyReading, Provenance};

/// Reads before the test's own: the open's baseline and the probe's two.
pub(crate) const SETUP_READS: usize = 3;

pub(crate) fn options(root: &Path, cpu: CpuSourceChoice) -> SourceOptions {
    SourceOptions {
        sysfs_root: root.to_path_buf(),
        procfs_root: "/proc".into(),
        cpu,
        cpu_tdp_watts: None,
        nvml_lib: None,
        no_gpu: true,
        probe_window: Duration::from_millis(30),
    }
}

/// A PMU with `energy-pkg` (config 2) only, its counter following `script`.
fn package_source(
    script: impl Fn() -> CountScript,
    cpu: CpuSourceChoice,
) -> (tempfile::TempDir, Sources) {
    let root = tempfile::tempdir().unwrap();
    perf_pmu_tree(root.path(), &[("energy-pkg", 2)]);
    let opener = ScriptedPerf(move |config, _cpu| (config == 2).then(&script));
    let sources = Sources::open_with(&options(root.path(), cpu), &opener).unwrap();
    (root, sources)
}

fn read(sources: &mut Sources) -> EnergyReading {
    std::thread::sleep(MIN_JUDGED + Duration::from_millis(5));
    sources.cpu.read().unwrap()
}

fn package(reading: &EnergyReading) -> (Provenance, f64) {
    let d = reading
        .domains
        .iter()
        .find(|d| d.domain.kind == DomainKind::Package)
        .expect("a package domain");
    (
        d.provenance,
        d.energy_uj as f64 / 1e6 / reading.elapsed.as_secs_f64(),
    )
}

/// 20 W, frozen for reads `frozen`, and catching up after.
fn freezing(frozen: std::ops::Range<usize>) -> impl Fn() -> CountScript {
    move || {
        let frozen = frozen.clone();
        let mut last = 0;
        Box::new(move |n, seconds| {
            if !frozen.contains(&n) {
                last = perf_counts(20.0 * seconds);
            }
            Ok(last)
        })
    }
}

#[test]
fn a_counter_that_freezes_switches_to_the_estimate_and_back() {
    let s = SETUP_READS;
    let (_root, mut sources) = package_source(freezing(s + 2..s + 5), CpuSourceChoice::Auto);
    assert_eq!(sources.cpu.name(), "perf-power");
    // (source of package energy, change, problem)
    use Provenance::{EstimatedTdp, PerfPower};
    let steps = [
        (PerfPower, None, None),
        (PerfPower, None, None),
        (
            EstimatedTdp,
            Some(Change::Distrusted),
            Some(Problem::Frozen),
        ),
        (EstimatedTdp, None, Some(Problem::Frozen)),
        (EstimatedTdp, None, Some(Problem::Frozen)),
        (EstimatedTdp, Some(Change::Recovered), None),
        (PerfPower, None, None),
    ];
    for (step, (source, change, problem)) in steps.into_iter().enumerate() {
        let reading = read(&mut sources);
        let (got, watts) = package(&reading);
        assert_eq!(got, source, "step {step}");
        assert!(watts > 0.0, "step {step}: a labelled, non-zero figure");
        if got == PerfPower {
            assert!((watts - 20.0).abs() < 1.0, "step {step}: {watts} W");
        }
        let counter = &reading.counters[0];
        assert_eq!(
            (counter.change, counter.problem),
            (change, problem),
            "step {step}"
        );
        assert_eq!(counter.trusted, source == PerfPower, "step {step}");
        let summary = summarize(("perf-power", Ok(reading.clone())), None);
        assert_eq!(summary.cpu_source, source.label(), "step {step}");
        let notes = summary.notes.join("\n");
        match (change, problem) {
            (Some(Change::Recovered), _) => assert_eq!(
                notes,
                "power/energy-pkg cpu 0 (package 0) counts again; measured from the next interval"
            ),
            (_, Some(_)) => assert!(
                notes.starts_with("power/energy-pkg cpu 0 (package 0): did not advance in ")
                    && notes.ends_with("; package 0 from estimated-tdp until it counts again"),
                "step {step}: {notes}"
            ),
            _ => assert_eq!(notes, "", "step {step}"),
        }
        assert_eq!(
            summary.counters[0].change,
            change.map(|c| c.label().to_string())
        );
    }
}

#[test]
fn a_backwards_jump_is_not_a_measurement() {
    let s = SETUP_READS;
    let script = move || -> CountScript {
        Box::new(move |n, seconds| {
            let joules = 20.0 * seconds;
            Ok(perf_counts(if n == s + 1 {
                joules - 100.0
            } else {
                joules + 200.0
            }))
        })
    };
    let (_root, mut sources) = package_source(script, CpuSourceChoice::Auto);
    assert_eq!(package(&read(&mut sources)).0, Provenance::PerfPower);
    let reading = read(&mut sources);
    assert_eq!(package(&reading).0, Provenance::EstimatedTdp);
    let counter = &reading.counters[0];
    assert_eq!(
        (counter.problem, counter.change),
        (Some(Problem::Backwards), Some(Change::Distrusted))
    );
    let note = counter.note.as_deref().unwrap();
    assert!(
        note.contains("went backwards") && note.contains("no known range"),
        "{note}"
    );
    // The jump back up is a huge step: implausible, still estimated.
    let reading = read(&mut sources);
    assert_eq!(reading.counters[0].problem, Some(Problem::Implausible));
    assert_eq!(package(&reading).0, Provenance::EstimatedTdp);
    assert_eq!(reading.counters[0].change, None);
    assert_eq!(package(&read(&mut sources)).0, Provenance::EstimatedTdp);
    assert_eq!(package(&read(&mut sources)).0, Provenance::PerfPower);
}

#[test]
fn asked_for_a_frozen_counter_shows_it_flagged() {
    let flat = || -> CountScript { Box::new(|_, _| Ok(perf_counts(7.0))) };
    let (_root, mut sources) = package_source(flat, CpuSourceChoice::Perf);
    assert_eq!(sources.cpu.name(), "perf-power");
    let warning = sources.warnings.join("\n");
    assert!(
        warning.starts_with("WARNING: power/energy-pkg cpu 0 (package 0): did not advance:")
            && warning.contains("used anyway because --source perf asked for it"),
        "{warning}"
    );
    let reading = read(&mut sources);
    let d = &reading.domains[0];
    assert_eq!(
        (d.provenance, d.trusted, d.energy_uj),
        (Provenance::PerfPower, false, 0)
    );
    assert!(!d.is_measured());
    let summary = summarize(("perf-power", Ok(reading)), None);
    assert_eq!(summary.cpu_source, "perf-power");
    assert!(!summary.domains[0].measured);
    assert!(
        summary.notes.iter().any(
            |n| n.ends_with("shown as read but not as measured, because --source asked for it")
        ),
        "{:?}",
        summary.notes
    );
}

#[test]
fn no_dram_counter_means_the_memory_estimate() {
    let script = || -> CountScript { Box::new(|_, seconds| Ok(perf_counts(20.0 * seconds))) };
    let (_root, mut sources) = package_source(script, CpuSourceChoice::Auto);
    let reading = read(&mut sources);
    let dram: Vec<_> = reading
        .domains
        .iter()
        .filter(|d| d.domain.kind == DomainKind::Dram)
        .collect();
    assert_eq!(dram.len(), 1);
    assert_eq!(dram[0].provenance, Provenance::EstimatedMemory);
    let watts = dram[0].energy_uj as f64 / 1e6 / reading.elapsed.as_secs_f64();
    let memory = crate::energy::memory::MemoryEstimate::open(Path::new("/proc")).unwrap();
    assert!(
        (watts - memory.watts).abs() < 0.01 * memory.watts,
        "{watts} W"
    );
    let summary = summarize(("perf-power", Ok(reading)), None);
    assert_eq!(
        (summary.cpu_source.as_str(), summary.dram_source.as_str()),
        ("perf-power", "estimated-memory")
    );
}
