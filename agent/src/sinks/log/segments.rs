//! Segment files in a log directory: their names (`greentop-SEQ-TIME.gtlog`), their
//! order, the inputs a reader is given, and retention by total size and age.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::reader::LogError;

pub const EXTENSION: &str = "gtlog";
const PREFIX: &str = "greentop-";

/// `greentop-000042-20261122T221000Z.gtlog`: sequence number, then creation time.
pub fn segment_name(seq: u64, created: SystemTime) -> String {
    let time: String = humantime::format_rfc3339_seconds(created)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{PREFIX}{seq:06}-{time}.{EXTENSION}")
}

/// The sequence number of a segment file name.
pub fn parse_seq(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

/// One segment in a directory.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub seq: Option<u64>,
    pub len: u64,
    pub modified: SystemTime,
}

/// The `*.gtlog` files of `dir`, oldest first: by sequence number, then name
/// (files not named by a writer last).
pub fn list(dir: &Path) -> std::io::Result<Vec<SegmentFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_none_or(|e| e != EXTENSION) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push(SegmentFile {
            seq: parse_seq(&name),
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            path,
        });
    }
    files.sort_by(|a, b| (a.seq.is_none(), a.seq, &a.path).cmp(&(b.seq.is_none(), b.seq, &b.path)));
    Ok(files)
}

/// Inputs as files to read in order, each marked whether the user named it
/// (`true`) or it was found in a directory.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, bool)>, LogError> {
    let mut files = Vec::new();
    for input in inputs {
        let io = |source| LogError::Io {
            path: input.clone(),
            source,
        };
        if std::fs::metadata(input).map_err(io)?.is_dir() {
            let found = list(input).map_err(io)?;
            if found.is_empty() {
                return Err(LogError::NoSegments {
                    path: input.clone(),
                });
            }
            files.extend(found.into_iter().map(|f| (f.path, false)));
        } else {
            files.push((input.clone(), true));
        }
    }
    Ok(files)
}

/// Limits on what a log directory keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Retention {
    /// Total bytes of all segments.
    pub max_bytes: Option<u64>,
    /// Since a segment was last written.
    pub max_age: Option<Duration>,
}

/// Deletes the oldest segments of `dir` until it fits `retention`; never `keep`
/// (the segment being written). Returns the paths deleted.
pub fn enforce(
    dir: &Path,
    retention: Retention,
    keep: Option<&Path>,
    now: SystemTime,
) -> std::io::Result<Vec<PathBuf>> {
    let files = list(dir)?;
    let mut total: u64 = files.iter().map(|f| f.len).sum();
    let mut removed = Vec::new();
    for file in files {
        if keep == Some(file.path.as_path()) {
            continue;
        }
        let too_old = retention
            .max_age
            .is_some_and(|age| now.duration_since(file.modified).unwrap_or_default() > age);
        let too_big = retention.max_bytes.is_some_and(|max| total > max);
        if !(too_old || too_big) {
            continue;
        }
        std::fs::remove_file(&file.path)?;
        total -= file.len;
        removed.push(file.path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_parse() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_385_400);
        let name = segment_name(42, t);
        assert_eq!(name, "greentop-000042-20261122T221000Z.gtlog");
        assert_eq!(parse_seq(&name), Some(42));
        assert_eq!(parse_seq("other.gtlog"), None);
    }

    #[test]
    fn retention_drops_oldest_first_and_keeps_the_current_segment() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        for seq in 1..=4u64 {
            let path = dir.path().join(segment_name(seq, now));
            std::fs::write(&path, vec![0u8; 100]).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not a segment").unwrap();
        let current = dir.path().join(segment_name(4, now));
        let limit = Retention {
            max_bytes: Some(250),
            max_age: None,
        };
        let removed = enforce(dir.path(), limit, Some(&current), now).unwrap();
        let seqs: Vec<u64> = removed
            .iter()
            .map(|p| parse_seq(&p.file_name().unwrap().to_string_lossy()).unwrap())
            .collect();
        assert_eq!(seqs, vec![1, 2]);
        let left: Vec<Option<u64>> = list(dir.path()).unwrap().iter().map(|f| f.seq).collect();
        assert_eq!(left, vec![Some(3), Some(4)]);
        let by_age = Retention {
            max_bytes: None,
            max_age: Some(Duration::from_secs(60)),
        };
        let later = now + Duration::from_secs(3600);
        let removed = enforce(dir.path(), by_age, Some(&current), later).unwrap();
        assert_eq!(removed.len(), 1, "all but the current segment are old");
        assert!(current.exists() && dir.path().join("notes.txt").exists());
    }
}
