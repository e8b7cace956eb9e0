//! Memory power where no DRAM counter can be believed: installed memory × CodeCarbon's
//! rule of thumb (3 W per 8 GiB), labelled `estimated-memory`; and the resident
//! memory of a process, by which attribution splits it. Sources: docs/estimate.md.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Domain, DomainEnergy, DomainKind, Provenance, SourceError};

/// CodeCarbon's RAM rule of thumb (before its v3): 3 W for every 8 GiB.
pub const WATTS_PER_GIB: f64 = 3.0 / 8.0;

const GIB: f64 = (1u64 << 30) as f64;

/// Constant memory power from `MemTotal` of `<procfs>/meminfo`.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryEstimate {
    pub total_bytes: u64,
    pub watts: f64,
    meminfo: PathBuf,
}

impl MemoryEstimate {
    /// Reads `MemTotal` once: installed memory does not change while greentop runs
    /// (memory hot-plug aside).
    pub fn open(procfs_root: &Path) -> Result<MemoryEstimate, SourceError> {
        let meminfo = procfs_root.join("meminfo");
        let text = std::fs::read_to_string(&meminfo).map_err(|source| SourceError::Io {
            path: meminfo.clone(),
            source,
        })?;
        let total_bytes = parse_mem_total(&text).ok_or_else(|| SourceError::Parse {
            path: meminfo.clone(),
            text: text.lines().next().unwrap_or("").to_string(),
        })?;
        Ok(MemoryEstimate {
            total_bytes,
            watts: WATTS_PER_GIB * total_bytes as f64 / GIB,
            meminfo,
        })
    }

    /// The estimate's share for one package (`1 / packages` of the memory) over
    /// `elapsed`, as a DRAM domain of that package.
    pub fn domain(&self, package: u32, packages: usize, elapsed: Duration) -> DomainEnergy {
        let watts = self.watts / packages.max(1) as f64;
        let domain = Domain {
            kind: DomainKind::Dram,
            index: package,
            name: format!("estimated memory {package}"),
        };
        let energy_uj = (watts * elapsed.as_secs_f64() * 1e6).round() as u64;
        DomainEnergy::counted(domain, energy_uj, Provenance::EstimatedMemory)
    }

    /// One line for `--list-sources`.
    pub fn describe(&self) -> String {
        format!(
            "memory: {:.1} GiB installed (MemTotal, {}) × {WATTS_PER_GIB} W/GiB \
             (CodeCarbon's 3 W per 8 GiB) = {:.2} W, constant",
            self.total_bytes as f64 / GIB,
            self.meminfo.display(),
            self.watts
        )
    }
}

/// `MemTotal:  24684096 kB` in bytes.
fn parse_mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let kib: u64 = fields.next()?.parse().ok()?;
    (fields.next() == Some("kB")).then_some(kib.checked_mul(1024)?)
}

/// Resident memory of a process from `<procfs>/PID/statm` (pages × page size); None
/// when it is gone or unreadable (it exited: it holds nothing any more).
pub fn resident_bytes(procfs_root: &Path, pid: u32, page_bytes: u64) -> Option<u64> {
    let text = std::fs::read_to_string(procfs_root.join(format!("{pid}/statm"))).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(page_bytes)
}

/// How long a process's resident size is used before its `statm` is read again.
/// Resident memory moves slowly next to CPU time, and one `open` + `read` per
/// process per interval was most of the agent's own CPU with 1,000 processes
/// waking 10×/s (docs/benchmarks.md); the memory split is an estimate anyway.
pub const RESIDENT_REFRESH: Duration = Duration::from_secs(5);

/// Resident sizes of processes, each read from `statm` at most once per
/// [`RESIDENT_REFRESH`] of the ledger's own time (the sum of its intervals, so the
/// cache does not depend on when the agent got to run). Keyed by process identity:
/// a reused pid is read afresh.
#[derive(Debug, Default)]
pub struct ResidentCache {
    /// Ledger time so far.
    now: Duration,
    /// (tgid, start_ns) → (bytes, ledger time of the read).
    read: HashMap<(u32, u64), (u64, Duration)>,
}

impl ResidentCache {
    /// Bytes resident per pid of `processes` (tgid, start_ns) that still exist, for
    /// an interval of `elapsed`; reads `statm` only for those not read within
    /// [`RESIDENT_REFRESH`].
    pub fn update(
        &mut self,
        procfs_root: &Path,
        page_bytes: u64,
        processes: impl IntoIterator<Item = (u32, u64)>,
        elapsed: Duration,
    ) -> HashMap<u32, u64> {
        self.now += elapsed;
        let now = self.now;
        self.read
            .retain(|_, (_, at)| now.saturating_sub(*at) < RESIDENT_REFRESH);
        let mut by_pid = HashMap::new();
        for key in processes {
            let cached = self.read.get(&key).map(|&(bytes, _)| bytes);
            let bytes = match cached {
                Some(bytes) => bytes,
                None => match resident_bytes(procfs_root, key.0, page_bytes) {
                    Some(bytes) => {
                        self.read.insert(key, (bytes, now));
                        bytes
                    }
                    None => continue,
                },
            };
            by_pid.insert(key.0, bytes);
        }
        by_pid
    }
}

/// The page size, for `statm`.
pub fn page_bytes() -> u64 {
    // SAFETY: sysconf has no memory effects; _SC_PAGESIZE is always supported.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_and_watts() {
        let cases: &[(&str, Option<u64>)] = &[
            (
                "MemTotal:       24684096 kB\nMemFree: 1 kB\n",
                Some(24_684_096 * 1024),
            ),
            ("MemFree: 1 kB\nMemTotal: 8388608 kB\n", Some(8 << 30)),
            ("MemTotal: 12 MB\n", None),
            ("MemTotal: x kB\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_mem_total(text), *want, "{text:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meminfo"), "MemTotal: 16777216 kB\n").unwrap();
        let memory = MemoryEstimate::open(dir.path()).unwrap();
        assert_eq!((memory.total_bytes, memory.watts), (16 << 30, 6.0));
        let domain = memory.domain(1, 2, Duration::from_millis(500));
        assert_eq!(
            (domain.domain.kind, domain.domain.index, domain.energy_uj),
            (DomainKind::Dram, 1, 1_500_000)
        );
        assert_eq!(domain.provenance.label(), "estimated-memory");
        assert!(!domain.is_measured());
        assert!(
            memory.describe().contains("16.0 GiB installed"),
            "{}",
            memory.describe()
        );
        std::fs::write(dir.path().join("meminfo"), "garbage\n").unwrap();
        let err = MemoryEstimate::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("meminfo: cannot parse"), "{err}");
    }

    #[test]
    fn resident_memory_of_a_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("42")).unwrap();
        std::fs::write(dir.path().join("42/statm"), "1000 250 30 1 0 400 0\n").unwrap();
        assert_eq!(resident_bytes(dir.path(), 42, 4096), Some(1_024_000));
        assert_eq!(resident_bytes(dir.path(), 43, 4096), None);
        let own = resident_bytes(Path::new("/proc"), std::process::id(), page_bytes());
        assert!(own.is_some_and(|bytes| bytes > 0), "{own:?}");
    }

    #[test]
    fn resident_sizes_are_read_again_only_after_the_refresh_time() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("42")).unwrap();
        let statm = |pages: u64| {
            std::fs::write(
                dir.path().join("42/statm"),
                format!("1000 {pages} 30 1 0 400 0\n"),
            )
            .unwrap();
        };
        statm(250);
        let mut cache = ResidentCache::default();
        let second = Duration::from_secs(1);
        let mut at = |key: (u32, u64), elapsed| cache.update(dir.path(), 4096, [key], elapsed);
        assert_eq!(at((42, 7), second).get(&42), Some(&1_024_000));
        statm(500);
        for _ in 0..4 {
            assert_eq!(at((42, 7), second).get(&42), Some(&1_024_000), "cached");
        }
        assert_eq!(
            at((42, 7), second).get(&42),
            Some(&2_048_000),
            "5 s on: read again"
        );
        statm(100);
        assert_eq!(
            at((42, 9), second).get(&42),
            Some(&409_600),
            "a reused pid is another process"
        );
        assert_eq!(at((43, 1), second).get(&43), None, "no statm: absent");
    }
}
