//! RaplSource against the fixture trees in `tests/fixtures/powercap`, copied to a tempdir.
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::energy::testkit::copy_tree;

/// Copies `tests/fixtures/powercap/<name>` into a fresh tempdir, symlinks included.
pub(super) fn copy_fixture(name: &str) -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/powercap");
    let root = tempfile::tempdir().unwrap();
    copy_tree(&src.join(name), root.path());
    root
}

/// Writes `value` and a newline to `class/powercap/<zone>/energy_uj`.
pub(super) fn write_energy(root: &Path, zone: &str, value: &str) {
    let path = root.join("class/powercap").join(zone).join("energy_uj");
    std::fs::write(&path, format!("{value}\n")).unwrap();
}

fn summary(reading: &EnergyReading) -> Vec<(DomainKind, u32, &str, u64)> {
    for domain in &reading.domains {
        assert_eq!(domain.provenance, Provenance::RaplPowercap);
    }
    reading
        .domains
        .iter()
        .map(|d| {
            (
                d.domain.kind,
                d.domain.index,
                d.domain.name.as_str(),
                d.energy_uj,
            )
        })
        .collect()
}

fn notes(reading: &EnergyReading) -> Vec<&str> {
    reading
        .domains
        .iter()
        .filter_map(|d| d.note.as_deref())
        .collect()
}

/// Fixture, `energy_uj` writes after open (zone dir under class/powercap, value), and
/// the wanted (kind, index, name, µJ) of each domain in read order.
type FixtureCase<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [(DomainKind, u32, &'a str, u64)],
);

const FIXTURE_CASES: &[FixtureCase<'static>] = {
    use DomainKind::*;
    &[
        (
            "one-socket",
            &[
                ("intel-rapl:0", "1500000"),
                ("intel-rapl:0:0", "650000"),
                ("intel-rapl:0:1", "10100"),
                ("intel-rapl:0:2", "260000"),
            ],
            &[
                (Package, 0, "intel-rapl:0", 500_000),
                (Core, 0, "intel-rapl:0:0", 250_000),
                (Uncore, 0, "intel-rapl:0:1", 100),
                (Dram, 0, "intel-rapl:0:2", 60_000),
            ],
        ),
        (
            "one-socket",
            &[],
            &[
                (Package, 0, "intel-rapl:0", 0),
                (Core, 0, "intel-rapl:0:0", 0),
                (Uncore, 0, "intel-rapl:0:1", 0),
                (Dram, 0, "intel-rapl:0:2", 0),
            ],
        ),
        (
            "two-sockets-dram",
            &[
                ("intel-rapl:0", "5000001"),
                ("intel-rapl:1", "7000000"),
                ("intel-rapl:1/intel-rapl:1:0", "900000"),
            ],
            &[
                (Package, 0, "intel-rapl:0", 1),
                (Package, 1, "intel-rapl:1", 1_000_000),
                (Dram, 0, "intel-rapl:0:0", 0),
                (Dram, 1, "intel-rapl:1:0", 100_000),
            ],
        ),
        (
            "amd-no-dram",
            &[("intel-rapl:0", "3123456"), ("intel-rapl:0:0", "2100000")],
            &[
                (Package, 0, "intel-rapl:0", 123_456),
                (Core, 0, "intel-rapl:0:0", 100_000),
            ],
        ),
        (
            "mmio-duplicate",
            &[("intel-rapl:0", "5250000"), ("intel-rapl-mmio:0", "1")],
            &[(Package, 0, "intel-rapl:0", 250_000)],
        ),
        (
            "psys",
            &[
                ("intel-rapl:0", "1100000"),
                ("intel-rapl:0:0", "550000"),
                ("intel-rapl:1", "4300000"),
            ],
            &[
                (Package, 0, "intel-rapl:0", 100_000),
                (Psys, 0, "intel-rapl:1", 300_000),
                (Core, 0, "intel-rapl:0:0", 50_000),
            ],
        ),
        (
            "malformed",
            &[("intel-rapl:0", "1000500"), ("intel-rapl:0:0", "300100")],
            &[
                (Package, 0, "intel-rapl:0", 500),
                (Dram, 0, "intel-rapl:0:0", 100),
            ],
        ),
    ]
};

#[test]
fn fixtures_give_exact_deltas() {
    for (fixture, writes, want) in FIXTURE_CASES {
        let root = copy_fixture(fixture);
        let mut source = RaplSource::open(root.path()).unwrap();
        assert_eq!(source.name(), "rapl-powercap");
        for (zone, value) in *writes {
            write_energy(root.path(), zone, value);
        }
        let reading = source.read().unwrap();
        assert_eq!(summary(&reading), *want, "{fixture}");
        assert_eq!(notes(&reading), Vec::<&str>::new(), "{fixture}");
        let domains: Vec<&str> = source.domains().map(|d| d.name.as_str()).collect();
        let want_names: Vec<&str> = want.iter().map(|w| w.2).collect();
        assert_eq!(domains, want_names, "{fixture}");
    }
}

#[test]
fn describe_names_zones_and_skips() {
    let cases: &[(&str, &[&str])] = &[
        (
            "one-socket",
            &[
                "intel-rapl:0 \"package-0\" package 0: ",
                "intel-rapl:0:0 \"core\" core 0 (part of the package): ",
                "intel-rapl:0:2 \"dram\" dram 0: ",
                "max_energy_range_uj 262143328850, energy_uj readable",
                "max_energy_range_uj 65712999613, energy_uj readable",
                "class/powercap/intel-rapl:0:1, ",
            ],
        ),
        ("psys", &["intel-rapl:1 \"psys\" psys 0: "]),
        (
            "mmio-duplicate",
            &["intel-rapl-mmio:0: MMIO duplicate of the intel-rapl package counter"],
        ),
        (
            "malformed",
            &[
                "skipped intel-rapl:1: ",
                "intel-rapl:1/energy_uj: cannot parse \"garbage\"",
                "intel-rapl:0:0 \"dram\" dram 0: ",
                "no max_energy_range_uj (a wrap is reported, not undone)",
                "intel-rapl:0:0: reading ",
            ],
        ),
    ];
    for (fixture, wanted) in cases {
        let root = copy_fixture(fixture);
        let source = RaplSource::open(root.path()).unwrap();
        let text = source.describe().join("\n");
        for want in *wanted {
            assert!(text.contains(want), "{fixture}: {want:?} not in\n{text}");
        }
        assert!(!text.contains("no CPU has"), "{fixture}: {text}");
    }
}

#[test]
fn wrap_between_reads_uses_max_range() {
    let root = copy_fixture("one-socket");
    write_energy(root.path(), "intel-rapl:0", "262143000000");
    let mut source = RaplSource::open(root.path()).unwrap();
    write_energy(root.path(), "intel-rapl:0", "1000");
    let reading = source.read().unwrap();
    assert_eq!(
        reading.domains[0].energy_uj,
        262_143_328_850 - 262_143_000_000 + 1000
    );
    assert_eq!(reading.domains[0].note, None);
    write_energy(root.path(), "intel-rapl:0", "5000");
    assert_eq!(source.read().unwrap().domains[0].energy_uj, 4000);
}

#[test]
fn backwards_without_range_is_a_note_then_recovers() {
    let root = copy_fixture("malformed");
    let mut source = RaplSource::open(root.path()).unwrap();
    write_energy(root.path(), "intel-rapl:0:0", "100");
    let reading = source.read().unwrap();
    let dram = &reading.domains[1];
    assert_eq!((dram.domain.kind, dram.energy_uj), (DomainKind::Dram, 0));
    let note = dram.note.as_deref().unwrap();
    assert!(note.contains("intel-rapl:0:0/energy_uj"), "{note}");
    assert!(note.contains("went backwards (300000 -> 100 uJ)"), "{note}");
    write_energy(root.path(), "intel-rapl:0:0", "150");
    let reading = source.read().unwrap();
    assert_eq!(
        (
            reading.domains[1].energy_uj,
            reading.domains[1].note.as_deref()
        ),
        (50, None)
    );
}

#[test]
fn classifies_zone_names() {
    use DomainKind::*;
    /// Zone name, N of intel-rapl:N, parent package, wanted kind and index.
    type NameCase<'a> = (&'a str, u32, Option<u32>, Option<(DomainKind, u32)>);
    let cases: &[NameCase] = &[
        ("package-0", 0, None, Some((Package, 0))),
        ("package-1", 0, None, Some((Package, 1))),
        ("package-0-die-1", 1, None, Some((Package, 0))),
        ("psys", 1, None, Some((Psys, 0))),
        ("core", 0, Some(3), Some((Core, 3))),
        ("uncore", 2, None, Some((Uncore, 2))),
        ("dram", 1, Some(1), Some((Dram, 1))),
        ("package-x", 0, None, None),
        ("package-", 0, None, None),
        ("gadget", 0, None, None),
    ];
    for (name, zone, parent, want) in cases {
        assert_eq!(classify(name, *zone, *parent), *want, "{name}");
    }
}

#[test]
fn package_without_cpus_gets_a_topology_note() {
    let root = copy_fixture("two-sockets-dram");
    for cpu in [2, 3] {
        let path = format!("devices/system/cpu/cpu{cpu}/topology/physical_package_id");
        std::fs::write(root.path().join(path), "0\n").unwrap();
    }
    let source = RaplSource::open(root.path()).unwrap();
    let text = source.describe().join("\n");
    assert!(
        text.contains("intel-rapl:1 (package-1): no CPU has physical_package_id 1 in "),
        "{text}"
    );
    assert!(!text.contains("intel-rapl:0 (package-0): no CPU"), "{text}");
}

#[test]
fn elapsed_is_the_time_between_reads() {
    let root = copy_fixture("amd-no-dram");
    let mut source = RaplSource::open(root.path()).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let first = source.read().unwrap().elapsed;
    std::thread::sleep(Duration::from_millis(10));
    let second = source.read().unwrap().elapsed;
    assert!(
        first >= Duration::from_millis(30) && first < Duration::from_secs(5),
        "{first:?}"
    );
    assert!(
        second >= Duration::from_millis(10) && second < first + Duration::from_secs(5),
        "{second:?}"
    );
}
