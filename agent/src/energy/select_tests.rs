//! Choosing sources by the start-up probe, and `--list-sources`: a psys-only PMU that
//! reads 0 (the VM of issue 8), one that counts, powercap counters that are flat or
//! implausible, and an explicit choice of a frozen counter.
use std::path::Path;

use super::*;
use crate::energy::summary::summarize;
use crate::energy::testkit::{
    CountScript, FifoCounter, ScriptedPerf, at_watts, copy_tree, perf_counts, perf_pmu_tree,
};
use crate::energy::watch::tests::options;
use crate::energy::{DomainKind, Provenance};

/// A PMU with only `energy-psys` (config 5), counting at `watts`.
fn psys_only(watts: f64) -> (tempfile::TempDir, Sources) {
    let root = tempfile::tempdir().unwrap();
    perf_pmu_tree(root.path(), &[("energy-psys", 5)]);
    let opener = ScriptedPerf(move |config, _| {
        (config == 5).then(|| -> CountScript {
            Box::new(move |_, seconds| Ok(perf_counts(watts * seconds)))
        })
    });
    let sources =
        Sources::open_with(&options(root.path(), CpuSourceChoice::Auto), &opener).unwrap();
    (root, sources)
}

fn read(sources: &mut Sources) -> crate::energy::EnergyReading {
    std::thread::sleep(crate::energy::trust::MIN_JUDGED + std::time::Duration::from_millis(5));
    sources.cpu.read().unwrap()
}

#[test]
fn a_psys_counter_stuck_at_zero_is_rejected_with_the_reason() {
    let (root, mut sources) = psys_only(0.0);
    assert_eq!(sources.cpu.name(), "estimated-tdp");
    assert!(
        sources
            .cpu_reason
            .starts_with("no trustworthy energy counter: powercap: no powercap tree at ")
            && sources
                .cpu_reason
                .ends_with("; perf: no counter passed the start-up probe"),
        "{}",
        sources.cpu_reason
    );
    let report = sources.report();
    for want in [
        "  perf-power     found\n",
        "      probe: power/energy-psys cpu 0 (platform 0): did not advance: 0.000000 J in ",
        " = 0.000 W: rejected, frozen: did not advance in ",
        "      not chosen: no counter advanced at a plausible rate during the probe; watched, \
         and used if it starts counting\n",
        "* estimated-tdp  found\n",
        "CPU energy: estimated-tdp (no trustworthy energy counter: powercap: ",
        "DRAM energy: estimated-memory (installed memory × 3 W per 8 GiB, split by resident \
         memory); no DRAM counter\n",
        "Platform energy: none\n",
    ] {
        assert!(report.contains(want), "{want:?} not in\n{report}");
    }
    let reading = read(&mut sources);
    let summary = summarize(("estimated-tdp", Ok(reading)), None);
    assert_eq!(summary.cpu_source, "estimated-tdp");
    assert!(summary.cpu_joules > 0.0, "a labelled, non-zero estimate");
    assert_eq!(
        (summary.platform_source.as_str(), summary.platform_joules),
        ("none", 0.0)
    );
    assert_eq!(summary.dram_source, "estimated-memory");
    assert!(
        summary
            .domains
            .iter()
            .all(|d| !d.measured && d.kind != "psys")
    );
    assert_eq!(summary.counters.len(), 1);
    let counter = &summary.counters[0];
    assert_eq!(
        (
            counter.kind.as_str(),
            counter.trusted,
            counter.problem.as_deref()
        ),
        ("psys", false, Some("frozen"))
    );
    assert!(
        summary.notes.iter().any(|n| n
            .starts_with("power/energy-psys cpu 0 (platform 0): did not advance in ")
            && n.ends_with("; platform energy left out until it counts again")),
        "{:?}",
        summary.notes
    );
    drop(root);
}

#[test]
fn a_counting_psys_is_the_platform_never_the_cpu() {
    let (_root, mut sources) = psys_only(30.0);
    assert_eq!(sources.cpu.name(), "estimated-tdp");
    assert!(
        sources.cpu_reason.starts_with(
            "no package counter passed the start-up probe: CPU packages from the estimate; \
             measured RAPL counters through perf for the rest"
        ),
        "{}",
        sources.cpu_reason
    );
    assert!(
        sources
            .report()
            .contains("Platform energy: perf-power psys (the whole platform")
    );
    let reading = read(&mut sources);
    let seconds = reading.elapsed.as_secs_f64();
    let summary = summarize(("estimated-tdp", Ok(reading)), None);
    assert_eq!(
        (
            summary.cpu_source.as_str(),
            summary.platform_source.as_str()
        ),
        ("estimated-tdp", "perf-power")
    );
    assert!(
        (summary.platform_joules / seconds - 30.0).abs() < 1.0,
        "{}",
        summary.platform_joules
    );
    let package: f64 = summary
        .domains
        .iter()
        .filter(|d| d.kind == "package")
        .map(|d| d.joules)
        .sum();
    assert_eq!(
        summary.cpu_joules, package,
        "psys is not added to the packages"
    );
    let psys = summary.domains.iter().find(|d| d.kind == "psys").unwrap();
    assert!(psys.measured && psys.source == "perf-power");
    assert!(summary.counters[0].trusted);
}

/// A copy of a powercap fixture whose package zone is served by `script`.
fn powercap(
    name: &str,
    script: crate::energy::testkit::Script,
) -> (tempfile::TempDir, FifoCounter) {
    let root = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/powercap")
        .join(name);
    copy_tree(&fixture, root.path());
    let zone = root.path().join("class/powercap/intel-rapl:0/energy_uj");
    let zone = std::fs::canonicalize(zone).unwrap();
    let counter = FifoCounter::serve(&zone, script);
    (root, counter)
}

#[test]
fn powercap_is_chosen_only_with_a_counter_that_counts() {
    // amd-no-dram: a package zone and its core subzone; the core file stays flat.
    let (root, counter) = powercap("amd-no-dram", at_watts(1_000_000, 40.0));
    let opener = ScriptedPerf(|_, _| None);
    let mut sources =
        Sources::open_with(&options(root.path(), CpuSourceChoice::Auto), &opener).unwrap();
    assert_eq!(sources.cpu.name(), "rapl-powercap");
    assert!(
        sources.cpu_reason.starts_with(
            "measured RAPL counters, readable through powercap, trusted after the start-up probe"
        ),
        "{}",
        sources.cpu_reason
    );
    let report = sources.report();
    assert!(
        report.contains("      probe: intel-rapl:0 (package 0): advanced "),
        "{report}"
    );
    assert!(
        report.contains(" W: trusted\n      chosen: its counters advanced at a plausible rate\n"),
        "{report}"
    );
    let _ = read(&mut sources);
    let reading = read(&mut sources);
    let package = reading
        .domains
        .iter()
        .find(|d| d.domain.kind == DomainKind::Package)
        .unwrap();
    assert_eq!(package.provenance, Provenance::RaplPowercap);
    // Between two reads of the source: exactly the last two values the fixture served.
    let served = counter.served();
    assert_eq!(
        package.energy_uj,
        served[served.len() - 1] - served[served.len() - 2]
    );
    // core is part of the package and may rightly read 0; it is not watched.
    assert!(
        reading
            .domains
            .iter()
            .any(|d| d.domain.kind == DomainKind::Core && d.energy_uj == 0)
    );
    assert!(
        reading
            .counters
            .iter()
            .all(|c| c.domain.kind != DomainKind::Core)
    );
}

#[test]
fn an_implausible_or_flat_powercap_is_rejected_or_flagged() {
    // 1 MW: far above any ceiling.
    let (root, _counter) = powercap("amd-no-dram", at_watts(0, 1e6));
    let opener = ScriptedPerf(|_, _| None);
    let sources =
        Sources::open_with(&options(root.path(), CpuSourceChoice::Auto), &opener).unwrap();
    assert_eq!(sources.cpu.name(), "estimated-tdp");
    let report = sources.report();
    assert!(report.contains(": rejected, implausible: "), "{report}");
    assert!(report.contains(" W a part like this can draw"), "{report}");
    // Static fixture files never advance: asked for, it runs, flagged and warned about.
    let flat = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/powercap/one-socket"),
        flat.path(),
    );
    let mut sources =
        Sources::open_with(&options(flat.path(), CpuSourceChoice::Rapl), &opener).unwrap();
    assert_eq!(sources.cpu.name(), "rapl-powercap");
    assert_eq!(
        sources.warnings.len(),
        2,
        "package and DRAM: {:?}",
        sources.warnings
    );
    assert!(sources.warnings[0].contains("used anyway because --source rapl asked for it"));
    let reading = read(&mut sources);
    assert!(
        reading.domains.iter().all(|d| !d.trusted),
        "{:?}",
        reading.domains
    );
    assert!(
        sources
            .report()
            .contains("WARNING: intel-rapl:0 (package 0): did not advance:")
    );
}
