//! Where libcuda lives and which devices are NVIDIA's: the libraries running processes
//! have mapped (`/proc/PID/maps`, container roots included), the system's own (the
//! ld.so cache and standard directories), and the majors of the NVIDIA character
//! devices (`/proc/devices`).
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file's identity: two paths to one file (a symlink, a bind mount into a
/// container) attach once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev_major: u32,
    pub dev_minor: u32,
    pub ino: u64,
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dev {}:{} ino {}",
            self.dev_major, self.dev_minor, self.ino
        )
    }
}

/// A libcuda file and a path that reaches it from greentop's mount namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: FileId,
    pub path: PathBuf,
}

/// Standard library directories searched for the system's `libcuda.so.1`.
pub const SYSTEM_LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib64",
    "/usr/local/nvidia/lib64",
    "/usr/lib/wsl/lib",
];

/// The driver library, by file name: `libcuda.so`, `libcuda.so.1`, `libcuda.so.550.54.15`.
pub fn is_libcuda(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("libcuda.so") && !path.contains("/stubs/")
}

/// The identity of the file at `path` (symlinks followed).
pub fn file_id(path: &Path) -> std::io::Result<FileId> {
    let meta = std::fs::metadata(path)?;
    Ok(FileId {
        dev_major: libc::major(meta.dev()),
        dev_minor: libc::minor(meta.dev()),
        ino: meta.ino(),
    })
}

/// One line of `/proc/PID/maps` that maps a file.
#[derive(Debug, PartialEq, Eq)]
struct MapsLine<'a> {
    range: &'a str,
    id: FileId,
    path: &'a str,
    deleted: bool,
}

fn parse_maps_line(line: &str) -> Option<MapsLine<'_>> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let (_perms, _offset) = (fields.next()?, fields.next()?);
    let (major, minor) = fields.next()?.split_once(':')?;
    let ino = fields.next()?.parse().ok()?;
    let path = fields.next()?.trim_start();
    if !path.starts_with('/') {
        return None;
    }
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(path) => (path, true),
        None => (path, false),
    };
    Some(MapsLine {
        range,
        id: FileId {
            dev_major: u32::from_str_radix(major, 16).ok()?,
            dev_minor: u32::from_str_radix(minor, 16).ok()?,
            ino,
        },
        path,
        deleted,
    })
}

/// The libcuda files process `pid` has mapped, each once. The path goes through the
/// process's root (a container's files are not at the same path here); a file since
/// deleted or replaced there is reached through its `map_files` link instead.
pub fn mapped_by(procfs: &Path, pid: u32) -> Vec<Candidate> {
    let Ok(maps) = std::fs::read_to_string(procfs.join(format!("{pid}/maps"))) else {
        return Vec::new();
    };
    let mut found: Vec<Candidate> = Vec::new();
    for line in maps.lines().filter_map(parse_maps_line) {
        if !is_libcuda(line.path) || found.iter().any(|c| c.id == line.id) {
            continue;
        }
        let rooted = procfs
            .join(format!("{pid}/root"))
            .join(line.path.trim_start_matches('/'));
        let path = if !line.deleted && file_id(&rooted).is_ok_and(|id| id == line.id) {
            rooted
        } else {
            procfs.join(format!("{pid}/map_files/{}", line.range))
        };
        found.push(Candidate { id: line.id, path });
    }
    found
}

/// Every libcuda mapped by any running process (at start-up only: afterwards new
/// processes are looked at one by one).
pub fn mapped_by_all(procfs: &Path) -> Vec<Candidate> {
    let Ok(entries) = std::fs::read_dir(procfs) else {
        return Vec::new();
    };
    let mut found: Vec<Candidate> = Vec::new();
    for pid in entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        for candidate in mapped_by(procfs, pid) {
            if !found.iter().any(|c| c.id == candidate.id) {
                found.push(candidate);
            }
        }
    }
    found
}

/// The system's libcuda: every path the ld.so cache names, and `libcuda.so.1` in the
/// standard directories; each file once (the `.so` and `.so.1` symlinks resolve to
/// one file). CUDA toolkit stubs are skipped: no process runs on them.
pub fn system_libraries(ld_cache: &Path, dirs: &[PathBuf]) -> Vec<Candidate> {
    let mut paths: Vec<PathBuf> = std::fs::read(ld_cache)
        .map(|bytes| ld_cache_paths(&bytes))
        .unwrap_or_default();
    paths.extend(dirs.iter().map(|dir| dir.join("libcuda.so.1")));
    let mut found: Vec<Candidate> = Vec::new();
    for path in paths {
        let Ok(id) = file_id(&path) else {
            continue;
        };
        if !found.iter().any(|c| c.id == id) {
            found.push(Candidate { id, path });
        }
    }
    found
}

/// Absolute libcuda paths in an ld.so cache: its string table holds every library's
/// full path, NUL-terminated, whichever of the cache formats wraps it.
fn ld_cache_paths(bytes: &[u8]) -> Vec<PathBuf> {
    bytes
        .split(|&b| b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .filter(|s| s.starts_with('/') && is_libcuda(s))
        .map(PathBuf::from)
        .collect()
}

/// Majors of the NVIDIA character devices in `<procfs>/devices` (`nvidia`,
/// `nvidia-frontend`, `nvidia-uvm`, `nvidia-nvlink`, `nvidia-caps`, …), with names.
pub fn nvidia_majors(procfs: &Path) -> Vec<(u32, String)> {
    let Ok(text) = std::fs::read_to_string(procfs.join("devices")) else {
        return Vec::new();
    };
    text.lines()
        .skip_while(|l| !l.starts_with("Character devices:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Block devices:"))
        .filter_map(|l| {
            let (major, name) = l.trim().split_once(' ')?;
            let name = name.trim();
            name.starts_with("nvidia")
                .then(|| Some((major.parse().ok()?, name.to_string())))?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_parsed() {
        let line = "7f1c2a000000-7f1c2a200000 r-xp 00010000 fd:01 1835014                    /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15";
        let parsed = parse_maps_line(line).unwrap();
        assert_eq!(parsed.range, "7f1c2a000000-7f1c2a200000");
        assert_eq!(
            parsed.id,
            FileId {
                dev_major: 0xfd,
                dev_minor: 1,
                ino: 1_835_014
            }
        );
        assert_eq!(
            parsed.path,
            "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"
        );
        assert!(!parsed.deleted);
        let gone = parse_maps_line("1000-2000 r-xp 0 08:02 77 /opt/libcuda.so.1 (deleted)");
        assert_eq!(
            gone.map(|l| (l.path, l.deleted)),
            Some(("/opt/libcuda.so.1", true))
        );
        for not_a_file in [
            "7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]",
            "7ffd1000-7ffd2000 rw-p 00000000 00:00 0",
            "garbage",
            "1000-2000 r-xp 0 zz:02 77 /lib/x.so",
        ] {
            assert_eq!(parse_maps_line(not_a_file), None, "{not_a_file}");
        }
    }

    #[test]
    fn libcuda_is_recognised_by_file_name() {
        for (path, want) in [
            ("/usr/lib/x86_64-linux-gnu/libcuda.so.1", true),
            ("/usr/lib/libcuda.so", true),
            ("/usr/lib/libcuda.so.550.54.15", true),
            ("/usr/local/cuda/lib64/stubs/libcuda.so", false),
            ("/usr/lib/libcudart.so.12", false),
            ("/usr/lib/libcuda_helper.so", false),
            ("/opt/libcuda.so.1.d/libnvidia-ml.so.1", false),
        ] {
            assert_eq!(is_libcuda(path), want, "{path}");
        }
    }

    #[test]
    fn nvidia_majors_come_from_the_character_section() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("devices"),
            "Character devices:\n  1 mem\n195 nvidia-frontend\n195 nvidia\n508 nvidia-uvm\n\
             Block devices:\n195 nvidia-block-impostor\n",
        )
        .unwrap();
        assert_eq!(
            nvidia_majors(dir.path()),
            [
                (195, "nvidia-frontend".to_string()),
                (195, "nvidia".to_string()),
                (508, "nvidia-uvm".to_string())
            ]
        );
        assert!(nvidia_majors(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn ld_cache_strings_name_the_library() {
        let mut cache = b"glibc-ld.so.cache1.1\0\0\0libcuda.so.1\0".to_vec();
        cache.extend_from_slice(b"/usr/lib/x86_64-linux-gnu/libcuda.so.1\0libc.so.6\0");
        cache.extend_from_slice(
            b"/usr/lib/x86_64-linux-gnu/libc.so.6\0/usr/local/cuda/lib64/stubs/libcuda.so\0",
        );
        assert_eq!(
            ld_cache_paths(&cache),
            [PathBuf::from("/usr/lib/x86_64-linux-gnu/libcuda.so.1")]
        );
    }

    #[test]
    fn symlinks_to_one_library_are_one_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("libcuda.so.550.54.15");
        std::fs::write(&real, b"elf").unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("libcuda.so.1")).unwrap();
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&real, other.path().join("libcuda.so.1")).unwrap();
        let found = system_libraries(
            &dir.path().join("no-cache"),
            &[dir.path().to_path_buf(), other.path().to_path_buf()],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].id, file_id(&real).unwrap());
    }

    #[test]
    fn this_process_maps_no_libcuda() {
        let procfs = Path::new("/proc");
        assert!(mapped_by(procfs, std::process::id()).is_empty());
        assert!(mapped_by(procfs, u32::MAX).is_empty(), "no such process");
    }
}
