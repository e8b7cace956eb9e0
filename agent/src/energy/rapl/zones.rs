//! Finding `intel-rapl` zone directories in a powercap tree, and reading their numbers.
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, FileTypeExt};
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

/// A counter file read at every interval, by path, as sysfs wants (each open
/// produces the attribute afresh). `energy_uj` is root-only (0400) since
/// CVE-2020-8694: the fd opened at start, while the agent still held the privilege,
/// is kept, and read with `pread` at offset 0 (which makes sysfs produce the value
/// again) once opening by path is refused — after the agent dropped its privileges.
/// A FIFO (the tests' fixture counters, one value per open) is never kept open.
#[derive(Debug)]
pub(super) struct CounterFile {
    pub path: PathBuf,
    file: Option<File>,
}

impl CounterFile {
    pub fn open(path: &Path) -> Result<CounterFile, SourceError> {
        let meta = std::fs::metadata(path).map_err(|err| map_read_error(path, err))?;
        let file = if meta.file_type().is_fifo() {
            None
        } else {
            Some(File::open(path).map_err(|err| map_read_error(path, err))?)
        };
        Ok(CounterFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The number in the file now, through `text_buf`: by path, or through the fd
    /// opened at start when the path is refused for lack of permission.
    pub fn read_u64(&mut self, text_buf: &mut String) -> Result<u64, SourceError> {
        match (read_u64(&self.path, text_buf), &self.file) {
            (Err(SourceError::PermissionDenied { .. }), Some(file)) => {
                read_kept(file, &self.path, text_buf)
            }
            (result, _) => result,
        }
    }
}

/// Reads a kept sysfs fd from offset 0.
fn read_kept(file: &File, path: &Path, text_buf: &mut String) -> Result<u64, SourceError> {
    let mut bytes = [0u8; 64];
    let mut len = 0;
    while len < bytes.len() {
        match file.read_at(&mut bytes[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(map_read_error(path, err)),
        }
    }
    text_buf.clear();
    text_buf.push_str(&String::from_utf8_lossy(&bytes[..len]));
    parse_u64(path, text_buf)
}

fn parse_u64(path: &Path, text_buf: &str) -> Result<u64, SourceError> {
    text_buf.trim().parse().map_err(|_| SourceError::Parse {
        path: path.to_path_buf(),
        text: text_buf.trim().to_string(),
    })
}

/// Reads a decimal number from a sysfs file into the reused `text_buf`.
pub(super) fn read_u64(path: &Path, text_buf: &mut String) -> Result<u64, SourceError> {
    text_buf.clear();
    std::fs::File::open(path)
        .and_then(|mut file| file.read_to_string(text_buf))
        .map_err(|err| map_read_error(path, err))?;
    parse_u64(path, text_buf)
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
