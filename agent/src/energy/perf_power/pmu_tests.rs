//! The power PMU parser on the fixture trees in `tests/fixtures/perf_power`.
use super::tests::{SCALE_2_POW_MINUS_32, event, fixture};
use super::*;

/// Fixture, type, cpumask CPUs, events, CPU → package, and the skipped events with
/// the rest of their note after `<pmu dir>/events/`.
type FixtureCase = (
    &'static str,
    u32,
    &'static [u32],
    Vec<PowerEvent>,
    &'static [(u32, u32)],
    &'static [(&'static str, &'static str)],
);

fn fixture_cases() -> Vec<FixtureCase> {
    use DomainKind::*;
    let s = SCALE_2_POW_MINUS_32;
    vec![
        (
            "one-socket",
            23,
            &[0],
            vec![
                event("energy-pkg", Package, 2, s),
                event("energy-cores", Core, 1, s),
                event("energy-gpu", Uncore, 4, s),
                event("energy-psys", Psys, 5, s),
            ],
            &[(0, 0)],
            &[],
        ),
        (
            "two-sockets",
            14,
            &[0, 1],
            vec![
                event("energy-pkg", Package, 2, s),
                event("energy-ram", Dram, 3, 6.103515625e-05),
            ],
            &[(0, 0), (1, 1)],
            &[],
        ),
        (
            "malformed",
            31,
            &[0],
            vec![event("energy-cores", Core, 1, s)],
            &[(0, 0)],
            &[
                ("energy-pkg", "energy-pkg.scale: cannot parse \"abc\""),
                ("energy-ram", "energy-ram: cannot parse \"umask=0x03\""),
            ],
        ),
    ]
}

#[test]
fn parses_fixture_pmus_exactly() {
    for (name, pmu_type, cpus, events, sockets, skipped) in fixture_cases() {
        let root = fixture(name);
        let pmu = parse_power_pmu(&root).unwrap();
        let dir = root.join("bus/event_source/devices/power");
        assert_eq!(pmu.dir, dir, "{name}");
        assert_eq!(pmu.pmu_type, pmu_type, "{name}");
        assert_eq!(pmu.cpus, cpus, "{name}");
        assert_eq!(pmu.events, events, "{name}");
        assert_eq!(socket_cpus(&root, &pmu.cpus), sockets, "{name}");
        let want_notes: Vec<String> = skipped
            .iter()
            .map(|(event, rest)| format!("skipped power/{event}: {}/events/{rest}", dir.display()))
            .collect();
        assert_eq!(pmu.notes, want_notes, "{name}");
    }
}

#[test]
fn parses_event_configs() {
    let cases = [
        ("event=0x02", Some(2)),
        ("event=0X1f", Some(0x1f)),
        ("event=5", Some(5)),
        ("umask=0x1,event=0x03", Some(3)),
        ("event=0x", None),
        ("event=zz", None),
        ("umask=0x03", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_event_config(text), want, "{text:?}");
    }
}

#[test]
fn parses_cpu_lists() {
    let cases: &[(&str, Option<&[u32]>)] = &[
        ("0\n", Some(&[0])),
        ("0,16", Some(&[0, 16])),
        ("0-1", Some(&[0, 1])),
        ("0,2-3", Some(&[0, 2, 3])),
        ("", None),
        ("1-0", None),
        ("a", None),
        ("0,", None),
        ("65535", Some(&[65535])),
        ("0-4000000000", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_cpu_list(text).as_deref(), *want, "{text:?}");
    }
}

/// Builds a PMU tree in a tempdir: (file under the PMU dir, contents).
pub(super) fn pmu_tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("bus/event_source/devices/power");
    std::fs::create_dir_all(dir.join("events")).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), format!("{text}\n")).unwrap();
    }
    root
}

#[test]
fn parse_errors_name_the_file() {
    let good_event: &[(&str, &str)] = &[
        ("events/energy-pkg", "event=0x02"),
        ("events/energy-pkg.scale", "2.3283064365386962890625e-10"),
    ];
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("cpumask", "0")], "reading "),
        (
            vec![("type", "x"), ("cpumask", "0")],
            "power/type: cannot parse \"x\"",
        ),
        (vec![("type", "9")], "power/cpumask: "),
        (
            vec![("type", "9"), ("cpumask", "0-")],
            "power/cpumask: cannot parse \"0-\"",
        ),
        (
            vec![("type", "9"), ("cpumask", "0")],
            "no usable energy event in ",
        ),
        (
            [
                &[
                    ("type", "9"),
                    ("cpumask", "0"),
                    ("events/energy-pkg.unit", "Watts"),
                ],
                good_event,
            ]
            .concat(),
            "energy-pkg.unit says \"Watts\", not Joules",
        ),
        (
            [
                &[
                    ("type", "9"),
                    ("cpumask", "0"),
                    ("events/energy-pkg.scale", "-1"),
                ],
                &good_event[..1],
            ]
            .concat(),
            "energy-pkg.scale: cannot parse \"-1\"",
        ),
        (
            vec![
                ("type", "9"),
                ("cpumask", "0"),
                ("events/energy-pkg", "event=0x02"),
            ],
            "energy-pkg.scale: No such file",
        ),
    ];
    for (files, want) in cases {
        let root = pmu_tree(&files);
        let err = parse_power_pmu(root.path()).unwrap_err().to_string();
        assert!(err.contains(want), "{files:?}: {err}");
    }
}
