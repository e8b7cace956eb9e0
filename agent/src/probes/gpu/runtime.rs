//! The user side of the GPU probes: attaches every libcuda file it finds (at
//! start-up; later in processes that exec, or that start using an NVIDIA device), and
//! at each tick turns the kernel's cumulative per-thread counters into per-interval
//! deltas, forgetting threads that have exited.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use agent_common::{GPU_MAJOR_SLOTS, GpuCounters, GpuStats, GpuThreadKey, SyncStart, names};
use aya::Ebpf;
use aya::maps::{Array, HashMap as BpfHashMap, MapData, MapError, PerCpuArray, PerCpuHashMap};

use super::discover::{self, Candidate, FileId};
use super::{GpuCalls, GpuOptions, GpuProbeMode, PROBE_GROUPS, exported_offsets};
use crate::probes::LedgerError;
use crate::probes::loader::{GpuLoaded, LoadError, attach_uprobe};

/// Ticks between sweeps for threads whose exit was never seen (a lost event).
const SWEEP_TICKS: u64 = 64;

/// The GPU probes' state as sinks see it each interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuProbeStatus {
    pub mode: GpuProbeMode,
    /// Every libcuda file probed: path and how many entry points.
    pub libraries: Vec<String>,
    /// How the NVIDIA ioctl counter is hooked (`tp_btf`, `raw_tp`), if it is.
    pub ioctl_counter: Option<String>,
    /// What is missing and why (absent symbols, a counter not attached).
    pub notes: Vec<String>,
    /// Hits lost in this interval because the per-thread map was full.
    pub dropped_hits: u64,
    /// Sync calls not timed in this interval (too many in flight).
    pub untimed_syncs: u64,
}

/// One libcuda file and what was attached in it.
struct Library {
    path: PathBuf,
    entry_points: usize,
    note: Option<String>,
}

pub struct GpuProbes {
    threads: PerCpuHashMap<MapData, GpuThreadKey, GpuCounters>,
    sync_starts: BpfHashMap<MapData, u32, SyncStart>,
    majors: Array<MapData, [u32; GPU_MAJOR_SLOTS]>,
    stats: PerCpuArray<MapData, GpuStats>,
    loaded: GpuLoaded,
    procfs_root: PathBuf,
    libraries: BTreeMap<FileId, Library>,
    /// Each thread's counters as last read (summed over CPUs).
    last: HashMap<GpuThreadKey, GpuCounters>,
    /// Processes whose maps were read after their first NVIDIA ioctl.
    checked: HashSet<u32>,
    uvm_known: bool,
    last_stats: GpuStats,
    tick: u64,
}

impl GpuProbes {
    /// Takes the GPU maps and attaches every libcuda found now: `opts.libraries`, the
    /// system's, and those running processes have mapped. `None` when the mode is off.
    pub fn new(
        ebpf: &mut Ebpf,
        opts: &GpuOptions,
        procfs_root: &Path,
        loaded: GpuLoaded,
    ) -> Result<Option<GpuProbes>, LoadError> {
        if loaded.mode == GpuProbeMode::Off {
            return Ok(None);
        }
        let mut take = |name: &'static str| ebpf.take_map(name).ok_or(LoadError::Missing(name));
        let threads = PerCpuHashMap::try_from(take(names::GPU_THREADS)?)?;
        let sync_starts = BpfHashMap::try_from(take(names::GPU_SYNC_STARTS)?)?;
        let majors = Array::try_from(take(names::GPU_MAJORS)?)?;
        let stats = PerCpuArray::try_from(take(names::GPU_STATS)?)?;
        let uvm_known = loaded.majors_given || has_uvm(procfs_root);
        let mut probes = GpuProbes {
            threads,
            sync_starts,
            majors,
            stats,
            procfs_root: procfs_root.to_path_buf(),
            libraries: BTreeMap::new(),
            last: HashMap::new(),
            checked: HashSet::new(),
            uvm_known,
            last_stats: GpuStats::default(),
            tick: 0,
            loaded,
        };
        probes.write_majors()?;
        for path in &opts.libraries {
            match discover::file_id(path) {
                Ok(id) => probes.attach(
                    ebpf,
                    Candidate {
                        id,
                        path: path.clone(),
                    },
                ),
                Err(err) => probes
                    .loaded
                    .notes
                    .push(format!("libcuda {}: {err}", path.display())),
            }
        }
        for candidate in discover::system_libraries(&opts.ld_cache, &opts.lib_dirs)
            .into_iter()
            .chain(discover::mapped_by_all(procfs_root))
        {
            probes.attach(ebpf, candidate);
        }
        Ok(Some(probes))
    }

    fn write_majors(&mut self) -> Result<(), MapError> {
        let mut slots = [0u32; GPU_MAJOR_SLOTS];
        for (slot, major) in slots.iter_mut().zip(&self.loaded.majors) {
            *slot = *major;
        }
        self.majors.set(0, slots, 0)
    }

    /// Attaches the probes to a library not seen before (by device and inode).
    fn attach(&mut self, ebpf: &mut Ebpf, candidate: Candidate) {
        if self.libraries.contains_key(&candidate.id) {
            return;
        }
        let library = attach_library(ebpf, &self.loaded, &candidate.path);
        tracing::info!(
            path = %candidate.path.display(),
            id = %candidate.id,
            entry_points = library.entry_points,
            note = library.note.as_deref().unwrap_or(""),
            "libcuda probed"
        );
        self.libraries.insert(candidate.id, library);
    }

    /// Reads the maps of process `tgid` and attaches any libcuda new to us.
    fn look_at(&mut self, ebpf: &mut Ebpf, tgid: u32) {
        for candidate in discover::mapped_by(&self.procfs_root, tgid) {
            self.attach(ebpf, candidate);
        }
    }

    /// One tick: looks at the processes that exec'd, reads every thread's counters
    /// and returns their growth since the last tick by (tgid, tid); threads in `exits`
    /// are read a last time and forgotten.
    pub fn sample(
        &mut self,
        ebpf: &mut Ebpf,
        execs: &[u32],
        exits: &[(u32, u32)],
    ) -> Result<HashMap<(u32, u32), GpuCalls>, LedgerError> {
        for &tgid in execs {
            self.look_at(ebpf, tgid);
        }
        let mut deltas = self.drain().map_err(map_err(names::GPU_THREADS))?;
        // A process's first NVIDIA ioctls (cuInit opens and queries the device): the
        // libcuda it loaded, perhaps with dlopen long after its exec, is mapped now.
        let fresh: Vec<u32> = deltas
            .iter()
            .filter(|(_, calls)| calls.ioctls > 0)
            .map(|(&(tgid, _), _)| tgid)
            .filter(|tgid| !self.checked.contains(tgid))
            .collect();
        for tgid in fresh {
            self.checked.insert(tgid);
            self.look_at(ebpf, tgid);
        }
        if !majors_settled(self, &deltas) {
            self.refresh_majors().map_err(map_err(names::GPU_MAJORS))?;
        }
        for &(tgid, tid) in exits {
            self.forget(GpuThreadKey { tgid, tid }, &mut deltas);
            if tid == tgid {
                self.checked.remove(&tgid);
            }
        }
        self.tick += 1;
        if self.tick.is_multiple_of(SWEEP_TICKS) {
            self.sweep(&mut deltas);
        }
        Ok(deltas)
    }

    /// Every thread's counters, summed over CPUs, minus what was last read.
    fn drain(&mut self) -> Result<HashMap<(u32, u32), GpuCalls>, MapError> {
        let keys: Vec<GpuThreadKey> = self.threads.keys().filter_map(Result::ok).collect();
        let mut deltas = HashMap::new();
        for key in keys {
            self.read_one(key, &mut deltas)?;
        }
        Ok(deltas)
    }

    /// Adds the growth of one thread's counters to `deltas`; false when it has none.
    fn read_one(
        &mut self,
        key: GpuThreadKey,
        deltas: &mut HashMap<(u32, u32), GpuCalls>,
    ) -> Result<bool, MapError> {
        let values = match self.threads.get(&key, 0) {
            Ok(values) => values,
            Err(MapError::KeyNotFound) => return Ok(false),
            Err(err) => return Err(err),
        };
        let now = values
            .iter()
            .fold(GpuCounters::default(), |sum, v| sum_counters(&sum, v));
        let before = self.last.insert(key, now).unwrap_or_default();
        let delta = growth(&before, &now);
        if delta.is_zero() {
            return Ok(false);
        }
        deltas.entry((key.tgid, key.tid)).or_default().add(&delta);
        Ok(true)
    }

    /// A thread has exited: its last counts go to `deltas`, then its entries go.
    fn forget(&mut self, key: GpuThreadKey, deltas: &mut HashMap<(u32, u32), GpuCalls>) {
        if let Err(err) = self.read_one(key, deltas) {
            tracing::debug!(?key, %err, "reading an exited thread's GPU counters");
        }
        self.last.remove(&key);
        let _ = self.threads.remove(&key);
        let _ = self.sync_starts.remove(&key.tid);
    }

    /// Threads whose exit event was lost: forgotten once `/proc` no longer has them.
    fn sweep(&mut self, deltas: &mut HashMap<(u32, u32), GpuCalls>) {
        let gone: Vec<GpuThreadKey> = self
            .last
            .keys()
            .filter(|k| {
                !self
                    .procfs_root
                    .join(format!("{}/task/{}", k.tgid, k.tid))
                    .exists()
            })
            .copied()
            .collect();
        for key in gone {
            self.forget(key, deltas);
        }
    }

    /// `nvidia-uvm` is loaded on a process's first CUDA call, after greentop may have
    /// started: its major is looked up again when NVIDIA ioctls are seen without it.
    fn refresh_majors(&mut self) -> Result<(), MapError> {
        let found = discover::nvidia_majors(&self.procfs_root);
        self.uvm_known = found.iter().any(|(_, name)| name == "nvidia-uvm");
        let mut majors: Vec<u32> = found.into_iter().map(|(major, _)| major).collect();
        majors.sort_unstable();
        majors.dedup();
        if majors != self.loaded.majors {
            tracing::info!(?majors, "NVIDIA device majors changed");
            self.loaded.majors = majors;
            self.write_majors()?;
        }
        Ok(())
    }

    /// What the probes are doing, and what was lost this interval.
    pub fn status(&mut self) -> GpuProbeStatus {
        let stats = self
            .stats
            .get(&0, 0)
            .map(|per_cpu| {
                per_cpu.iter().fold(GpuStats::default(), |sum, s| GpuStats {
                    dropped_hits: sum.dropped_hits + s.dropped_hits,
                    untimed_syncs: sum.untimed_syncs + s.untimed_syncs,
                })
            })
            .unwrap_or(self.last_stats);
        let last = std::mem::replace(&mut self.last_stats, stats);
        let mut notes = self.loaded.notes.clone();
        notes.extend(self.libraries.values().filter_map(|l| l.note.clone()));
        GpuProbeStatus {
            mode: self.loaded.mode,
            libraries: self
                .libraries
                .values()
                .filter(|l| l.entry_points > 0)
                .map(|l| format!("{} ({} entry points)", l.path.display(), l.entry_points))
                .collect(),
            ioctl_counter: self.loaded.ioctl.clone(),
            notes,
            dropped_hits: stats.dropped_hits.saturating_sub(last.dropped_hits),
            untimed_syncs: stats.untimed_syncs.saturating_sub(last.untimed_syncs),
        }
    }
}

/// True when the majors need no new look: they were given, `nvidia-uvm` is known, the
/// counter is off, or no NVIDIA ioctl was seen.
fn majors_settled(probes: &GpuProbes, deltas: &HashMap<(u32, u32), GpuCalls>) -> bool {
    probes.uvm_known
        || probes.loaded.ioctl.is_none()
        || !deltas.values().any(|calls| calls.ioctls > 0)
}

fn has_uvm(procfs_root: &Path) -> bool {
    discover::nvidia_majors(procfs_root)
        .iter()
        .any(|(_, name)| name == "nvidia-uvm")
}

/// Attaches every entry point `loaded.mode` wants that `path` exports (aliases at one
/// address once); absent ones and failures are named in the library's note.
fn attach_library(ebpf: &mut Ebpf, loaded: &GpuLoaded, path: &Path) -> Library {
    let groups: Vec<_> = PROBE_GROUPS
        .iter()
        .filter(|g| g.enabled(loaded.mode) && loaded.uprobes.contains(&g.program))
        .collect();
    let wanted: Vec<&str> = groups
        .iter()
        .flat_map(|g| g.symbols.iter().copied())
        .collect();
    let offsets = match exported_offsets(path, &wanted) {
        Ok(offsets) => offsets,
        Err(err) => {
            return Library {
                path: path.to_path_buf(),
                entry_points: 0,
                note: Some(format!("libcuda not probed: {err}")),
            };
        }
    };
    let (mut entry_points, mut absent, mut failed) = (0, Vec::new(), Vec::new());
    for group in groups {
        let mut done = HashSet::new();
        for &symbol in group.symbols {
            let Some(&offset) = offsets.get(symbol) else {
                absent.push(symbol);
                continue;
            };
            if !done.insert(offset) {
                continue;
            }
            let result = attach_uprobe(ebpf, group.program, path, offset).and_then(|()| {
                group
                    .ret_program
                    .map_or(Ok(()), |ret| attach_uprobe(ebpf, ret, path, offset))
            });
            match result {
                Ok(()) => entry_points += 1,
                Err(err) => failed.push(format!("{symbol} ({err})")),
            }
        }
    }
    let mut note = Vec::new();
    if !absent.is_empty() {
        note.push(format!("absent, skipped: {}", absent.join(", ")));
    }
    if !failed.is_empty() {
        note.push(format!("failed to attach: {}", failed.join(", ")));
    }
    Library {
        path: path.to_path_buf(),
        entry_points,
        note: (!note.is_empty())
            .then(|| format!("libcuda {}: {}", path.display(), note.join("; "))),
    }
}

fn sum_counters(a: &GpuCounters, b: &GpuCounters) -> GpuCounters {
    GpuCounters {
        ctx_switches: a.ctx_switches + b.ctx_switches,
        launches: a.launches + b.launches,
        syncs: a.syncs + b.syncs,
        sync_wait_ns: a.sync_wait_ns + b.sync_wait_ns,
        ioctls: a.ioctls + b.ioctls,
    }
}

/// Growth from `before` to `now`; a counter that went down belongs to a new entry
/// (deleted and recreated), which grew by all of `now`.
fn growth(before: &GpuCounters, now: &GpuCounters) -> GpuCalls {
    let grew = |b: u64, n: u64| if n >= b { n - b } else { n };
    GpuCalls {
        ctx_switches: grew(before.ctx_switches, now.ctx_switches),
        launches: grew(before.launches, now.launches),
        syncs: grew(before.syncs, now.syncs),
        sync_wait_ns: grew(before.sync_wait_ns, now.sync_wait_ns),
        ioctls: grew(before.ioctls, now.ioctls),
    }
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> LedgerError {
    move |source| LedgerError::Map { map, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_per_counter_and_survives_a_recreated_entry() {
        let before = GpuCounters {
            ctx_switches: 5,
            launches: 100,
            syncs: 2,
            sync_wait_ns: 1_000,
            ioctls: 7,
        };
        let now = GpuCounters {
            ctx_switches: 6,
            launches: 3,
            syncs: 2,
            sync_wait_ns: 4_000,
            ioctls: 9,
        };
        assert_eq!(
            growth(&before, &now),
            GpuCalls {
                ctx_switches: 1,
                launches: 3,
                syncs: 0,
                sync_wait_ns: 3_000,
                ioctls: 2
            }
        );
        assert!(growth(&now, &now).is_zero());
    }
}
