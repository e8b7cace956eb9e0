//! What an ML user calls "my job": the Slurm job, pod, container, systemd unit or
//! process tree a process belongs to, and one label for it.
//!
//! Resolved once per process (pid and start time) from what `/proc` says: the cgroup
//! paths, `SLURM_JOB_ID` in the environment, and the parent chain. The rules and the
//! label priority are in `docs/jobs.md`.
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

mod cgroup;
mod tree;

use crate::probes::procfs::read_stat;
use cgroup::CgroupFacts;
use tree::Parent;

/// Characters of a container id in its label, as `docker ps` shows them.
pub const SHORT_CONTAINER_ID_LEN: usize = 12;

/// Past this many entries a cache is cleared: a caller that never calls `forget`
/// costs re-reads, not unbounded memory.
const MAX_CACHED: usize = 1 << 18;

/// Environments and cgroup files are a few KiB; what lies past this is not read.
const MAX_PROC_FILE_BYTES: u64 = 1 << 20;

/// Which rule gave a process its job label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum JobKind {
    Slurm,
    Kubernetes,
    Container,
    Systemd,
    ProcessTree,
    /// Kernel threads, pid 1, and processes nothing could be learnt about.
    #[default]
    None,
}

/// Everything learnt about the job of one process; `job` is the label to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobInfo {
    /// The best label: `slurm:<id>`, `k8s:<pod uid>`, `<runtime>:<id first 12>`,
    /// `systemd:<unit>` or `tree:<root comm>:<root pid>`, in that priority.
    pub job: Option<String>,
    pub kind: JobKind,
    pub slurm_job_id: Option<String>,
    pub pod_uid: Option<String>,
    /// `(runtime, full id)`, runtime one of `docker`, `containerd`, `podman`, `cri-o`.
    pub container: Option<(String, String)>,
    pub systemd_unit: Option<String>,
    /// pid of the process-tree root (the process itself or an ancestor).
    pub tree_root: Option<u32>,
}

/// The pod and container a cgroup path names (for metric labels): pure string work,
/// the same rules as job resolution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    pub pod_uid: Option<String>,
    /// `(runtime, full id)`.
    pub container: Option<(String, String)>,
}

/// What `cgroup` (one `/proc/PID/cgroup` path) says about the pod and container.
pub fn workload_of(cgroup: &str) -> Workload {
    let facts = CgroupFacts::from_paths([cgroup]);
    Workload {
        pod_uid: facts.pod_uid,
        container: facts.container,
    }
}

/// Resolves and caches the job of each process; see the module doc.
pub struct JobResolver {
    root: PathBuf,
    /// Keyed by (pid, start_ns): a reused pid is another process.
    jobs: HashMap<(u32, u64), CachedJob>,
    /// Keyed by pid: parents seen while walking trees, or resolved themselves.
    parents: HashMap<u32, Parent>,
    /// Files opened so far (or tried), so tests can see the cache at work.
    file_reads: u64,
}

struct CachedJob {
    /// An exec keeps pid and start time but may change the job (its tree label).
    comm: String,
    info: JobInfo,
}

impl JobResolver {
    pub fn new(procfs_root: &Path) -> Self {
        JobResolver {
            root: procfs_root.to_path_buf(),
            jobs: HashMap::new(),
            parents: HashMap::new(),
            file_reads: 0,
        }
    }

    /// The job of process `pid` started at `start_ns`, whose parent, command and
    /// cgroup path (as `/proc/PID/cgroup`'s unified or systemd line gives it) the
    /// caller already knows. Reads `/proc` only the first time a process is seen
    /// (or after it exec'd another command); never fails: what cannot be read is
    /// left out.
    pub fn resolve(
        &mut self,
        pid: u32,
        start_ns: u64,
        ppid: u32,
        comm: &str,
        cgroup: &str,
    ) -> JobInfo {
        if let Some(cached) = self.jobs.get(&(pid, start_ns))
            && cached.comm == comm
        {
            return cached.info.clone();
        }
        let info = self.resolve_uncached(pid, ppid, comm, cgroup);
        bounded_insert(
            &mut self.parents,
            pid,
            Parent {
                comm: comm.to_string(),
                ppid,
            },
        );
        let cached = CachedJob {
            comm: comm.to_string(),
            info: info.clone(),
        };
        bounded_insert(&mut self.jobs, (pid, start_ns), cached);
        info
    }

    /// Drops what is cached about an exited process.
    pub fn forget(&mut self, pid: u32, start_ns: u64) {
        self.jobs.remove(&(pid, start_ns));
        // A newer process with this pid, if cached, is only re-read: harmless.
        self.parents.remove(&pid);
    }

    fn resolve_uncached(&mut self, pid: u32, ppid: u32, comm: &str, cgroup: &str) -> JobInfo {
        if tree::is_kernel_thread(pid, ppid) {
            return JobInfo::default();
        }
        let paths = self.cgroup_paths(pid, cgroup);
        let facts = CgroupFacts::from_paths(paths.iter().map(String::as_str));
        let slurm_job_id = facts
            .slurm_job_id
            .or_else(|| self.slurm_job_from_environ(pid));
        let root = tree::find_root(pid, comm, ppid, |parent| self.parent(parent));
        let mut info = JobInfo {
            job: None,
            kind: JobKind::None,
            slurm_job_id,
            pod_uid: facts.pod_uid,
            container: facts.container,
            systemd_unit: facts.systemd_unit,
            tree_root: root.as_ref().map(|(pid, _)| *pid),
        };
        (info.kind, info.job) = best_label(&info, root.as_ref().map(|(_, comm)| comm.as_str()));
        info
    }

    /// The caller's path first, then every hierarchy's line of `/proc/PID/cgroup`:
    /// under cgroup v1 Slurm and the runtimes may show only in controllers' lines.
    fn cgroup_paths(&mut self, pid: u32, cgroup: &str) -> Vec<String> {
        let mut paths = vec![cgroup.to_string()];
        self.file_reads += 1;
        let path = self.root.join(format!("{pid}/cgroup"));
        match read_capped(&path, MAX_PROC_FILE_BYTES) {
            Ok(bytes) => {
                for line in cgroup_lines(&bytes) {
                    if !paths.iter().any(|known| known == line) {
                        paths.push(line.to_string());
                    }
                }
            }
            Err(err) => tracing::trace!(pid, %err, "no cgroup file for job resolution"),
        }
        paths
    }

    /// `SLURM_JOB_ID` from `/proc/PID/environ`, unreadable (another user's process
    /// when unprivileged, an exited one) meaning none.
    fn slurm_job_from_environ(&mut self, pid: u32) -> Option<String> {
        self.file_reads += 1;
        let path = self.root.join(format!("{pid}/environ"));
        match read_capped(&path, MAX_PROC_FILE_BYTES) {
            Ok(environ) => slurm_job_in_environ(&environ),
            Err(err) => {
                tracing::trace!(pid, %err, "no environ for job resolution");
                None
            }
        }
    }

    /// Process `pid` as a parent: cached, else read from `/proc/PID/stat`.
    fn parent(&mut self, pid: u32) -> Option<Parent> {
        if let Some(parent) = self.parents.get(&pid) {
            return Some(parent.clone());
        }
        self.file_reads += 1;
        let stat = read_stat(&self.root, pid, None)
            .inspect_err(|err| tracing::trace!(pid, %err, "parent walk stops"))
            .ok()?;
        let parent = Parent {
            comm: stat.comm,
            ppid: stat.ppid,
        };
        bounded_insert(&mut self.parents, pid, parent.clone());
        Some(parent)
    }
}

/// The label and its kind, by priority: Slurm, pod, container, systemd unit, tree.
fn best_label(info: &JobInfo, root_comm: Option<&str>) -> (JobKind, Option<String>) {
    if let Some(id) = &info.slurm_job_id {
        return (JobKind::Slurm, Some(format!("slurm:{id}")));
    }
    if let Some(uid) = &info.pod_uid {
        return (JobKind::Kubernetes, Some(format!("k8s:{uid}")));
    }
    if let Some((runtime, id)) = &info.container {
        let short = id.get(..SHORT_CONTAINER_ID_LEN).unwrap_or(id);
        return (JobKind::Container, Some(format!("{runtime}:{short}")));
    }
    if let Some(unit) = &info.systemd_unit {
        return (JobKind::Systemd, Some(format!("systemd:{unit}")));
    }
    match (info.tree_root, root_comm) {
        (Some(pid), Some(comm)) => (JobKind::ProcessTree, Some(format!("tree:{comm}:{pid}"))),
        _ => (JobKind::None, None),
    }
}

/// Paths of `id:controllers:path` lines; a path may itself hold `:`.
fn cgroup_lines(bytes: &[u8]) -> impl Iterator<Item = &str> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .filter(|path| !path.is_empty())
}

/// `SLURM_JOB_ID` (or the older `SLURM_JOBID`) in NUL-separated `environ` bytes.
fn slurm_job_in_environ(environ: &[u8]) -> Option<String> {
    let mut older = None;
    for var in environ.split(|&b| b == 0) {
        if let Some(id) = var.strip_prefix(b"SLURM_JOB_ID=") {
            return job_id(id);
        }
        if let Some(id) = var.strip_prefix(b"SLURM_JOBID=") {
            older = job_id(id);
        }
    }
    older
}

fn job_id(bytes: &[u8]) -> Option<String> {
    let digits = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit);
    digits.then(|| String::from_utf8_lossy(bytes).into_owned())
}

fn read_capped(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max_bytes)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_CACHED && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

#[cfg(test)]
mod tests;
