//! Finding `intel-rapl` zone directories in a powercap tree, and reading their numbers.
use std::io::Read;
use std::path::{Path, PathBuf};

use super::map_read_error;
use crate::energy::SourceError;

/// One `intel-rapl:N` or `intel-rapl:N:M` zone directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ZoneDir {
    /// The directory name, e.g. `intel-rapl:0:1`.
    pub id: String,
    pub path: PathBuf,
    /// N of `intel-rapl:N`.
    pub package_zone: u32,
    /// M of `intel-rapl:N:M`; None for a top-level zone.
    pub subzone: Option<u32>,
}

/// Every `intel-rapl` zone under `powercap_dir`, top-level zones before their
/// subzones, each once. Real sysfs lists all zones flat in `class/powercap` (as
/// symlinks) and nests subzones in their parent; both layouts are accepted.
/// Also returns notes on skipped MMIO duplicates.
pub(super) fn find_zone_dirs(
    powercap_dir: &Path,
) -> Result<(Vec<ZoneDir>, Vec<String>), SourceError> {
    let entries = match std::fs::read_dir(powercap_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(SourceError::NotFound(format!(
                "no powercap tree at {}: RAPL is not exposed on this machine",
                powercap_dir.display()
            )));
        }
        Err(err) => return Err(map_read_error(powercap_dir, err)),
    };
    let mut dirs = Vec::new();
    let mut notes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("intel-rapl-mmio:") {
            notes.push(format!(
                "skipped {}: MMIO duplicate of the intel-rapl package counter",
                entry.path().display()
            ));
        } else if let Some(dir) = zone_dir(&name, entry.path()) {
            dirs.push(dir);
        }
    }
    let nested: Vec<ZoneDir> = dirs
        .iter()
        .filter(|dir| dir.subzone.is_none())
        .flat_map(|dir| nested_subzones(&dir.path))
        .collect();
    for dir in nested {
        if !dirs.iter().any(|known| known.id == dir.id) {
            dirs.push(dir);
        }
    }
    dirs.sort_by_key(|dir| (dir.subzone.is_some(), dir.package_zone, dir.subzone));
    notes.sort();
    Ok((dirs, notes))
}

fn nested_subzones(package_dir: &Path) -> Vec<ZoneDir> {
    let Ok(entries) = std::fs::read_dir(package_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            zone_dir(&name, entry.path()).filter(|dir| dir.subzone.is_some())
        })
        .collect()
}

/// `intel-rapl:N` or `intel-rapl:N:M`; None for anything else.
fn zone_dir(name: &str, path: PathBuf) -> Option<ZoneDir> {
    let mut numbers = name.strip_prefix("intel-rapl:")?.split(':');
    let package_zone = numbers.next()?.parse().ok()?;
    let subzone = match numbers.next() {
        Some(text) => Some(text.parse().ok()?),
        None => None,
    };
    if numbers.next().is_some() {
        return None;
    }
    Some(ZoneDir {
        id: name.to_string(),
        path,
        package_zone,
        subzone,
    })
}

/// Reads a decimal number from a sysfs file into the reused `text_buf`.
pub(super) fn read_u64(path: &Path, text_buf: &mut String) -> Result<u64, SourceError> {
    text_buf.clear();
    std::fs::File::open(path)
        .and_then(|mut file| file.read_to_string(text_buf))
        .map_err(|err| map_read_error(path, err))?;
    text_buf.trim().parse().map_err(|_| SourceError::Parse {
        path: path.to_path_buf(),
        text: text_buf.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names() {
        type ZoneIds = Option<(u32, Option<u32>)>;
        let cases: &[(&str, ZoneIds)] = &[
            ("intel-rapl:0", Some((0, None))),
            ("intel-rapl:1", Some((1, None))),
            ("intel-rapl:0:2", Some((0, Some(2)))),
            ("intel-rapl:12:3", Some((12, Some(3)))),
            ("intel-rapl", None),
            ("intel-rapl:", None),
            ("intel-rapl:x", None),
            ("intel-rapl:0:", None),
            ("intel-rapl:0:1:2", None),
            ("intel-rapl-mmio:0", None),
            ("dtpm", None),
        ];
        for (name, want) in cases {
            let got = zone_dir(name, PathBuf::from(name)).map(|d| (d.package_zone, d.subzone));
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn reads_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, Option<u64>)] = &[
            ("123\n", Some(123)),
            ("0\n", Some(0)),
            ("18446744073709551615\n", Some(u64::MAX)),
            ("18446744073709551616\n", None),
            ("garbage\n", None),
            ("", None),
            ("-1\n", None),
        ];
        let mut text_buf = String::new();
        for (text, want) in cases {
            let path = dir.path().join("energy_uj");
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_u64(&path, &mut text_buf).ok(), *want, "{text:?}");
        }
    }
}
