//! PerfPowerSource: counter plans, errno mapping, and counter reads through pipes.
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::pmu_tests::pmu_tree;
use super::*;

/// The usual energy-pkg scale, `2.3283064365386962890625e-10` J.
pub(super) const SCALE_2_POW_MINUS_32: f64 = 1.0 / (1u64 << 32) as f64;

pub(super) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/perf_power")
        .join(name)
}

pub(super) fn event(name: &str, kind: DomainKind, config: u64, scale: f64) -> PowerEvent {
    PowerEvent {
        name: name.to_string(),
        kind,
        config,
        scale,
        unit: Some("Joules".to_string()),
    }
}

#[test]
fn plans_one_counter_per_socket_and_psys_once() {
    use DomainKind::*;
    let s = SCALE_2_POW_MINUS_32;
    let events = [
        event("energy-pkg", Package, 2, s),
        event("energy-ram", Dram, 3, s),
        event("energy-psys", Psys, 5, s),
    ];
    /// Socket CPUs with their packages; wanted (event, CPU, index) in open order.
    type PlanCase<'a> = (&'a [(u32, u32)], &'a [(&'a str, u32, u32)]);
    let cases: &[PlanCase] = &[
        (
            &[(0, 0), (16, 1)],
            &[
                ("energy-pkg", 0, 0),
                ("energy-pkg", 16, 1),
                ("energy-ram", 0, 0),
                ("energy-ram", 16, 1),
                ("energy-psys", 0, 0),
            ],
        ),
        (
            &[(1, 3)],
            &[
                ("energy-pkg", 1, 3),
                ("energy-ram", 1, 3),
                ("energy-psys", 1, 0),
            ],
        ),
        (&[], &[]),
    ];
    for (sockets, want) in cases {
        let plan: Vec<(&str, u32, u32)> = counter_plan(&events, sockets)
            .into_iter()
            .map(|(event, cpu, index)| (event.name.as_str(), cpu, index))
            .collect();
        assert_eq!(plan, *want, "{sockets:?}");
    }
}

#[test]
fn no_power_pmu_here_is_not_found_naming_the_path() {
    let pmu_dir = Path::new("/sys/bus/event_source/devices/power");
    let result = PerfPowerSource::open(Path::new("/sys"));
    if pmu_dir.exists() {
        // A machine with RAPL perf events: opening works or says why, naming the event.
        if let Err(err) = result {
            assert!(!matches!(err, SourceError::NotFound(_)), "{err}");
        }
        return;
    }
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SourceError::NotFound(_)), "{err:?}");
    assert!(
        text.contains("/sys/bus/event_source/devices/power"),
        "{text}"
    );
    let empty = tempfile::tempdir().unwrap();
    let text = PerfPowerSource::open(empty.path()).unwrap_err().to_string();
    assert!(
        text.contains(&format!(
            "{}/bus/event_source/devices/power",
            empty.path().display()
        )),
        "{text}"
    );
}

#[test]
fn open_with_a_pmu_type_the_kernel_lacks_names_the_event() {
    let root = pmu_tree(&[
        ("type", "4294967040"),
        ("cpumask", "0"),
        ("events/energy-pkg", "event=0x02"),
        ("events/energy-pkg.scale", "2.3283064365386962890625e-10"),
        ("events/energy-pkg.unit", "Joules"),
    ]);
    match PerfPowerSource::open(root.path()).unwrap_err() {
        // Root (or perf_event_paranoid <= 0): the kernel has no such PMU, ENOENT.
        SourceError::Unsupported(text) => {
            assert!(
                text.starts_with(
                    "perf_event_open power/energy-pkg (type 4294967040, config 0x2) on CPU 0: "
                ),
                "{text}"
            );
        }
        // Unprivileged: CPU-wide events are refused before the PMU is looked up.
        SourceError::PermissionDenied { path, hint } => {
            assert!(path.ends_with("power/events/energy-pkg"), "{path:?}");
            assert_eq!(hint, PERMISSION_HINT);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn open_errnos_map_to_source_errors() {
    let pmu = parse_power_pmu(&fixture("two-sockets")).unwrap();
    let ram = &pmu.events[1];
    let cases = [
        (libc::EACCES, "permission denied reading "),
        (libc::EPERM, "permission denied reading "),
        (
            libc::ENOENT,
            "perf_event_open power/energy-ram (type 14, config 0x3) on CPU 1: ",
        ),
        (
            libc::EINVAL,
            "perf_event_open power/energy-ram (type 14, config 0x3) on CPU 1: ",
        ),
        (
            libc::EMFILE,
            "perf_event_open power/energy-ram (type 14, config 0x3) on CPU 1: ",
        ),
    ];
    for (errno, want) in cases {
        let err = open_error(&pmu, ram, 1, std::io::Error::from_raw_os_error(errno));
        let text = err.to_string();
        assert!(text.starts_with(want), "{errno}: {text}");
        match (errno, err) {
            (libc::EACCES | libc::EPERM, SourceError::PermissionDenied { path, hint }) => {
                assert_eq!(path, pmu.dir.join("events/energy-ram"));
                assert!(hint.contains("perf_event_paranoid") && hint.contains("CAP_PERFMON"));
            }
            (libc::ENOENT | libc::EINVAL, SourceError::Unsupported(_)) => {}
            (libc::EMFILE, SourceError::Device { .. }) => {}
            (errno, err) => panic!("{errno}: {err:?}"),
        }
    }
}

/// A counter reading from a pipe, and the pipe's write end to feed it counts.
fn pipe_counter(kind: DomainKind, index: u32, scale: f64, baseline: u64) -> (Counter, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh from pipe2 and owned by nothing else.
    let (reader, mut writer) = unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    };
    writer.write_all(&baseline.to_ne_bytes()).unwrap();
    let domain = Domain {
        kind,
        index,
        name: format!("power/test cpu {index}"),
    };
    (
        Counter::new(domain, Box::new(PerfFd(reader)), scale, 99, 2).unwrap(),
        writer,
    )
}

#[test]
fn reads_scaled_counts_as_exact_microjoules() {
    let (pkg, mut pkg_writer) = pipe_counter(DomainKind::Package, 0, SCALE_2_POW_MINUS_32, 1 << 32);
    let (ram, mut ram_writer) = pipe_counter(DomainKind::Dram, 1, 6.103515625e-05, 16_384);
    let mut source = PerfPowerSource::from_counters(vec![pkg, ram], Vec::new(), Instant::now());
    assert_eq!(source.name(), "perf-power");
    // (pkg count, ram count, wanted pkg µJ, wanted ram µJ, notes)
    let steps: [(u64, u64, u64, u64, usize); 3] = [
        (0x3_8000_0000, 16_384 * 3, 2_500_000, 2_000_000, 0),
        (0x3_8000_0000, 16_384 * 3 + 1, 0, 61, 0),
        (1 << 32, 16_384 * 4, 0, 999_939, 1),
    ];
    for (pkg_count, ram_count, pkg_uj, ram_uj, notes) in steps {
        pkg_writer.write_all(&pkg_count.to_ne_bytes()).unwrap();
        ram_writer.write_all(&ram_count.to_ne_bytes()).unwrap();
        let reading = source.read().unwrap();
        let got: Vec<(DomainKind, u32, u64)> = reading
            .domains
            .iter()
            .map(|d| (d.domain.kind, d.domain.index, d.energy_uj))
            .collect();
        assert_eq!(
            got,
            [
                (DomainKind::Package, 0, pkg_uj),
                (DomainKind::Dram, 1, ram_uj)
            ]
        );
        let noted: Vec<&str> = reading
            .domains
            .iter()
            .filter_map(|d| d.note.as_deref())
            .collect();
        assert_eq!(noted.len(), notes, "{noted:?}");
        assert!(
            reading
                .domains
                .iter()
                .all(|d| d.provenance == Provenance::PerfPower)
        );
    }
    drop(pkg_writer);
    ram_writer
        .write_all(&(16_384u64 * 5).to_ne_bytes())
        .unwrap();
    let reading = source.read().unwrap();
    let note = reading.domains[0].note.as_deref().unwrap();
    assert_eq!(reading.domains[0].energy_uj, 0);
    assert!(note.starts_with("reading power/test cpu 0: "), "{note}");
    assert_eq!(
        (
            reading.domains[1].energy_uj,
            reading.domains[1].note.as_deref()
        ),
        (1_000_000, None)
    );
    let text = source.describe().join("\n");
    assert!(
        text.contains(
            "power/test cpu 1 -> Dram 1: type 99, config 0x2, scale 6.103515625e-5 J per count"
        ),
        "{text}"
    );
}

#[test]
fn cumulative_conversion_does_not_drift() {
    // 3 counts of 2^-14 J are 183.10546875 µJ: per-delta flooring would lose 0.1 µJ each.
    let scale = 6.103515625e-05;
    let total_uj: u64 = (1..=1000u64)
        .map(|step| count_to_uj(step * 3, scale) - count_to_uj((step - 1) * 3, scale))
        .sum();
    assert_eq!(total_uj, count_to_uj(3000, scale));
    assert_eq!(total_uj, 183_105);
    assert_eq!(count_to_uj(u64::MAX, 1.0), u64::MAX);
}
