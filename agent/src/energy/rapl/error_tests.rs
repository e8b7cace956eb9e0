//! RaplSource when zones fail: unreadable or malformed files, permissions, missing trees.
use std::path::Path;

use super::tests::{copy_fixture, write_energy};
use super::*;

/// Replaces the zone's `energy_uj` with what `break_it` makes of it, reads, restores
/// it to `restored`, reads again: (first delta, its note, second delta, its note).
fn read_through_failure(
    break_it: fn(&Path),
    restored: &str,
) -> (u64, Option<String>, u64, Option<String>) {
    let root = copy_fixture("amd-no-dram");
    let mut source = RaplSource::open(root.path()).unwrap();
    let path = root.path().join("class/powercap/intel-rapl:0/energy_uj");
    break_it(&path);
    let bad = source.read().unwrap().domains.swap_remove(0);
    if path.is_dir() {
        std::fs::remove_dir(&path).unwrap();
    }
    write_energy(root.path(), "intel-rapl:0", restored);
    let good = source.read().unwrap().domains.swap_remove(0);
    (bad.energy_uj, bad.note, good.energy_uj, good.note)
}

#[test]
fn failed_reads_count_zero_name_the_file_and_recover() {
    fn garbage(path: &Path) {
        std::fs::write(path, "garbage\n").unwrap();
    }
    fn directory(path: &Path) {
        std::fs::remove_file(path).unwrap();
        std::fs::create_dir(path).unwrap();
    }
    fn missing(path: &Path) {
        std::fs::remove_file(path).unwrap();
    }
    type Breaker<'a> = (fn(&Path), &'a str);
    let cases: &[Breaker] = &[
        (garbage, "cannot parse \"garbage\""),
        (directory, "Is a directory"),
        (missing, "No such file"),
    ];
    for (break_it, want_note) in cases {
        let (bad_uj, bad_note, good_uj, good_note) = read_through_failure(*break_it, "3000700");
        let bad_note = bad_note.unwrap();
        assert_eq!(bad_uj, 0, "{bad_note}");
        assert!(bad_note.contains("intel-rapl:0/energy_uj"), "{bad_note}");
        assert!(bad_note.contains(want_note), "{bad_note}");
        // The last good raw value (3000000 at open) is the base after recovery.
        assert_eq!((good_uj, good_note), (700, None));
    }
}

#[test]
fn unreadable_zone_at_open_is_skipped_with_a_describe_line() {
    let root = copy_fixture("two-sockets-dram");
    let path = root.path().join("class/powercap/intel-rapl:1/energy_uj");
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let mut source = RaplSource::open(root.path()).unwrap();
    let names: Vec<&str> = source.domains().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:1:0"]);
    // The dram subzone still knows its package from the zone name.
    let reading = source.read().unwrap();
    assert_eq!(reading.domains[2].domain.index, 1);
    let text = source.describe().join("\n");
    assert!(text.contains("skipped intel-rapl:1: reading "), "{text}");
    assert!(
        text.contains("intel-rapl:1/energy_uj: Is a directory"),
        "{text}"
    );
}

#[test]
fn every_zone_unreadable_is_an_error_naming_the_file() {
    let root = copy_fixture("amd-no-dram");
    for zone in ["intel-rapl:0", "intel-rapl:0:0"] {
        let path = root
            .path()
            .join("class/powercap")
            .join(zone)
            .join("energy_uj");
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
    }
    let err = RaplSource::open(root.path()).unwrap_err();
    assert!(matches!(err, SourceError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("intel-rapl:0/energy_uj"), "{err}");
}

#[test]
fn mode_000_zones_depend_on_privilege() {
    use std::os::unix::fs::PermissionsExt;
    let root = copy_fixture("amd-no-dram");
    for zone in ["intel-rapl:0", "intel-rapl:0:0"] {
        let path = root
            .path()
            .join("class/powercap")
            .join(zone)
            .join("energy_uj");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let readable_anyway =
        std::fs::read(root.path().join("class/powercap/intel-rapl:0/energy_uj")).is_ok();
    match RaplSource::open(root.path()) {
        // Root (CAP_DAC_OVERRIDE) reads mode-000 files: the source opens normally.
        Ok(source) => assert!(readable_anyway, "{:?}", source.describe()),
        Err(err) => {
            assert!(!readable_anyway, "{err}");
            let text = err.to_string();
            assert!(text.contains("intel-rapl:0/energy_uj"), "{text}");
            assert!(text.contains("CVE-2020-8694"), "{text}");
        }
    }
}

#[test]
fn permission_errors_map_to_permission_denied() {
    let path = Path::new("/sys/class/powercap/intel-rapl:0/energy_uj");
    let cases = [
        (
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            true,
        ),
        (std::io::Error::from_raw_os_error(libc::EACCES), true),
        (std::io::Error::from_raw_os_error(libc::EPERM), true),
        (std::io::Error::from_raw_os_error(libc::EISDIR), false),
        (std::io::Error::from_raw_os_error(libc::ENOENT), false),
    ];
    for (io_err, want_permission) in cases {
        let shown = io_err.to_string();
        match map_read_error(path, io_err) {
            SourceError::PermissionDenied { path: got, hint } => {
                assert!(want_permission, "{shown}");
                assert_eq!(got, path);
                assert_eq!(hint, PERMISSION_HINT);
            }
            SourceError::Io { path: got, .. } => {
                assert!(!want_permission, "{shown}");
                assert_eq!(got, path);
            }
            other => panic!("{shown}: {other:?}"),
        }
    }
}

#[test]
fn no_usable_zone_prefers_permission_denied() {
    let dir = Path::new("/sys/class/powercap");
    let denied = || {
        map_read_error(
            Path::new("/z/energy_uj"),
            std::io::ErrorKind::PermissionDenied.into(),
        )
    };
    let io = || {
        map_read_error(
            Path::new("/y/energy_uj"),
            std::io::ErrorKind::IsADirectory.into(),
        )
    };
    let parse = || SourceError::Parse {
        path: "/x/energy_uj".into(),
        text: "garbage".into(),
    };
    let cases: Vec<(Vec<SourceError>, &str)> = vec![
        (
            vec![denied(), denied()],
            "permission denied reading /z/energy_uj: energy_uj is root-only since CVE-2020-8694; run as root or use --source perf",
        ),
        (
            vec![parse(), denied()],
            "permission denied reading /z/energy_uj",
        ),
        (
            vec![parse(), io()],
            "/x/energy_uj: cannot parse \"garbage\"",
        ),
        (vec![io()], "reading /y/energy_uj"),
        (
            vec![],
            "no usable intel-rapl zone under /sys/class/powercap",
        ),
    ];
    for (failures, want) in cases {
        let got = no_usable_zone(dir, failures).to_string();
        assert!(got.starts_with(want), "{got}");
    }
}

#[test]
fn missing_tree_or_zones_is_not_found_naming_the_path() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "no powercap tree at "),
        (&["class/powercap"], "no intel-rapl zone under "),
        (
            &["class/powercap/intel-rapl", "class/powercap/dtpm"],
            "no intel-rapl zone under ",
        ),
        (
            &["class/powercap/intel-rapl-mmio:0"],
            "no intel-rapl zone under ",
        ),
    ];
    for (dirs, want) in cases {
        let root = tempfile::tempdir().unwrap();
        for dir in *dirs {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let err = RaplSource::open(root.path()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, SourceError::NotFound(_)), "{err:?}");
        assert!(text.starts_with(want), "{text}");
        assert!(
            text.contains(&format!("{}/class/powercap", root.path().display())),
            "{text}"
        );
    }
}

#[test]
fn unknown_zone_names_are_skipped() {
    let root = copy_fixture("psys");
    std::fs::write(
        root.path().join("class/powercap/intel-rapl:1/name"),
        "gadget\n",
    )
    .unwrap();
    let source = RaplSource::open(root.path()).unwrap();
    assert_eq!(source.domains().count(), 2);
    let text = source.describe().join("\n");
    assert!(
        text.contains("skipped intel-rapl:1: unknown zone name \"gadget\""),
        "{text}"
    );
}

#[test]
fn real_sysfs_opens_or_says_why() {
    match RaplSource::open(Path::new("/sys")) {
        Ok(source) => assert!(!source.describe().is_empty()),
        Err(SourceError::NotFound(text)) => {
            assert!(text.contains("/sys/class/powercap"), "{text}");
        }
        Err(SourceError::PermissionDenied { path, hint }) => {
            assert!(path.starts_with("/sys/class/powercap"), "{path:?}");
            assert_eq!(hint, PERMISSION_HINT);
        }
        Err(other) => panic!("{other}"),
    }
}
