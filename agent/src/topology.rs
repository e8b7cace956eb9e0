//! Which CPU belongs to which physical package, read from `<sysfs-root>/devices/system/cpu`.
use std::path::{Path, PathBuf};

/// Errors reading the CPU topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse CPU list {text:?} in {path}")]
    Parse { path: PathBuf, text: String },
}

/// The physical package of every possible CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// Package id of each CPU, indexed by CPU number.
    pub package_of_cpu: Vec<u32>,
    /// Sorted unique package ids; never empty.
    pub packages: Vec<u32>,
    /// What could not be read and was assumed (package 0), for the user.
    pub notes: Vec<String>,
}

impl Topology {
    /// Reads `cpuN/topology/physical_package_id` for N in `0..possible_cpus`. A CPU
    /// whose file is missing or garbage (offline CPUs, odd VMs) is put in package 0.
    pub fn read(sysfs_root: &Path, possible_cpus: usize) -> Topology {
        let cpu_dir = sysfs_root.join("devices/system/cpu");
        let mut notes = Vec::new();
        let package_of_cpu: Vec<u32> = (0..possible_cpus)
            .map(|cpu| {
                let path = cpu_dir.join(format!("cpu{cpu}/topology/physical_package_id"));
                match std::fs::read_to_string(&path) {
                    Ok(text) => text.trim().parse().unwrap_or_else(|_| {
                        notes.push(format!(
                            "{} holds {:?}, not a package id: CPU {cpu} assumed in package 0",
                            path.display(),
                            text.trim()
                        ));
                        0
                    }),
                    Err(err) => {
                        notes.push(format!(
                            "cannot read {} ({err}): CPU {cpu} assumed in package 0",
                            path.display()
                        ));
                        0
                    }
                }
            })
            .collect();
        let mut packages = package_of_cpu.clone();
        packages.sort_unstable();
        packages.dedup();
        if packages.is_empty() {
            packages.push(0);
        }
        Topology {
            package_of_cpu,
            packages,
            notes,
        }
    }

    /// Every CPU in package 0: for tests and when nothing better is known.
    pub fn single_package(possible_cpus: usize) -> Topology {
        Topology {
            package_of_cpu: vec![0; possible_cpus],
            packages: vec![0],
            notes: Vec::new(),
        }
    }

    /// Index into [`Topology::packages`] of the package of `cpu`; 0 for an unknown CPU.
    pub fn package_index(&self, cpu: usize) -> usize {
        self.package_of_cpu
            .get(cpu)
            .and_then(|package| self.packages.binary_search(package).ok())
            .unwrap_or(0)
    }
}

/// Number of possible CPUs (highest CPU number + 1), from `devices/system/cpu/possible`.
pub fn possible_cpus(sysfs_root: &Path) -> Result<usize, TopologyError> {
    let path = sysfs_root.join("devices/system/cpu/possible");
    let text = std::fs::read_to_string(&path).map_err(|source| TopologyError::Io {
        path: path.clone(),
        source,
    })?;
    highest_cpu_in_list(&text)
        .map(|highest| highest + 1)
        .ok_or_else(|| TopologyError::Parse {
            path,
            text: text.trim().to_string(),
        })
}

/// Highest CPU in a kernel CPU list such as `0-3,8-11`; None if it is malformed.
fn highest_cpu_in_list(list: &str) -> Option<usize> {
    let mut highest = None;
    for range in list.trim().split(',') {
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (first.trim().parse().ok()?, last.trim().parse().ok()?),
            None => {
                let cpu: usize = range.trim().parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last {
            return None;
        }
        highest = highest.max(Some(last));
    }
    highest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_packages(root: &Path, packages: &[Option<&str>]) {
        for (cpu, package) in packages.iter().enumerate() {
            let dir = root.join(format!("devices/system/cpu/cpu{cpu}/topology"));
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(text) = package {
                std::fs::write(dir.join("physical_package_id"), text).unwrap();
            }
        }
    }

    /// Package files (None: absent), possible CPUs, and the wanted package_of_cpu,
    /// packages and number of notes.
    type TopologyCase<'a> = (&'a [Option<&'a str>], usize, &'a [u32], &'a [u32], usize);

    #[test]
    fn reads_packages_from_fixture_trees() {
        let cases: &[TopologyCase] = &[
            (&[Some("0\n"); 4], 4, &[0, 0, 0, 0], &[0], 0),
            (
                &[
                    Some("0"),
                    Some("0"),
                    Some("0"),
                    Some("0"),
                    Some("1"),
                    Some("1"),
                    Some("1"),
                    Some("1"),
                ],
                8,
                &[0, 0, 0, 0, 1, 1, 1, 1],
                &[0, 1],
                0,
            ),
            (
                &[Some("3\n"), Some("garbage\n"), Some("")],
                3,
                &[3, 0, 0],
                &[0, 3],
                2,
            ),
            // CPUs 2 and 3 have no topology directory at all.
            (&[Some("1\n"), Some("1\n")], 4, &[1, 1, 0, 0], &[0, 1], 2),
            (&[], 0, &[], &[0], 0),
        ];
        for (files, possible, of_cpu, packages, notes) in cases {
            let root = tempfile::tempdir().unwrap();
            write_packages(root.path(), files);
            let topology = Topology::read(root.path(), *possible);
            assert_eq!(topology.package_of_cpu, *of_cpu, "{files:?}");
            assert_eq!(topology.packages, *packages, "{files:?}");
            assert_eq!(topology.notes.len(), *notes, "{:?}", topology.notes);
            for note in &topology.notes {
                assert!(note.contains("physical_package_id"), "{note}");
            }
        }
    }

    #[test]
    fn package_index_maps_cpus_to_sorted_packages() {
        let topology = Topology {
            package_of_cpu: vec![5, 5, 2, 2],
            packages: vec![2, 5],
            notes: Vec::new(),
        };
        let cases = [(0, 1), (1, 1), (2, 0), (3, 0), (4, 0), (usize::MAX, 0)];
        for (cpu, index) in cases {
            assert_eq!(topology.package_index(cpu), index, "cpu {cpu}");
        }
    }

    #[test]
    fn parses_cpu_lists() {
        let cases = [
            ("0-3\n", Some(4)),
            ("0\n", Some(1)),
            ("0-3,8-11\n", Some(12)),
            ("0,2,5", Some(6)),
            ("0-1\n", Some(2)),
            ("", None),
            ("3-1", None),
            ("0-", None),
            ("x", None),
            ("0,,1", None),
        ];
        for (text, want) in cases {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("devices/system/cpu");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("possible"), text).unwrap();
            assert_eq!(possible_cpus(root.path()).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn missing_possible_file_names_the_path() {
        let root = tempfile::tempdir().unwrap();
        let err = possible_cpus(root.path()).unwrap_err();
        assert!(
            err.to_string().contains("devices/system/cpu/possible"),
            "{err}"
        );
    }

    #[test]
    fn real_sysfs_smoke() {
        let possible = possible_cpus(Path::new("/sys")).unwrap();
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        assert!(
            online >= 1 && possible >= online as usize,
            "{possible} {online}"
        );
        let topology = Topology::read(Path::new("/sys"), possible);
        assert_eq!(topology.package_of_cpu.len(), possible);
        assert!(!topology.packages.is_empty());
        assert!(
            !topology.notes.iter().any(|n| n.contains("/cpu0/")),
            "{:?}",
            topology.notes
        );
    }
}
