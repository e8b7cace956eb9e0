//! Loads the embedded eBPF object, sizes its maps for this machine, tells the programs
//! the `task_struct` offsets found in BTF (which decide whether the ledger charges the
//! scheduler's runtime or reads the clock) and attaches every probe (`attach.rs`).
use std::path::{Path, PathBuf};

use agent_common::{FileOffsets, TABLE_SLOTS, TaskOffsets, names};
use aya::{Btf, EbpfLoader, Endianness};

use super::btf;
use super::gpu::GpuOptions;

mod attach;
mod gpu;
use attach::{
    Attacher, attach_ledger_switch, attach_lifecycle_exec, attach_lifecycle_exit,
    attach_lifecycle_fork, attach_lifecycle_rename, load_ledger_flush,
};
pub use attach::{attach_uprobe, attach_with_fallback};
pub use gpu::GpuLoaded;
use gpu::{attach_gpu, gpu_file_offsets, size_gpu_maps};

/// The eBPF object built by `agent/build.rs`.
pub static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/greentop-ebpf"));

/// Knobs of the kernel side; the defaults suit production.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub sysfs_root: PathBuf,
    pub procfs_root: PathBuf,
    /// Table slots per CPU actually used (power of two ≤ TABLE_SLOTS); lower only in tests.
    pub table_slots: u32,
    /// Entries of the overflow map; `None` sizes it from pid_max.
    pub overflow_entries: Option<u32>,
    /// Time slices with the clock even where the scheduler's runtime is readable (to
    /// compare the two; production never sets it).
    pub clock_ledger: bool,
    /// GPU probes: which, and where to look for libcuda and NVIDIA devices.
    pub gpu: GpuOptions,
}

impl LoadOptions {
    pub fn new(sysfs_root: &Path, procfs_root: &Path) -> Self {
        LoadOptions {
            sysfs_root: sysfs_root.to_path_buf(),
            procfs_root: procfs_root.to_path_buf(),
            table_slots: TABLE_SLOTS as u32,
            overflow_entries: None,
            clock_ledger: false,
            gpu: GpuOptions::default(),
        }
    }
}

/// Why the probes could not be loaded; shown to the user with the /proc fallback.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "eBPF probes need root (or CAP_BPF and CAP_PERFMON) and a kernel with eBPF; loading failed: {source}"
    )]
    Load {
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("attaching {what} failed; tried {tried}")]
    Attach { what: &'static str, tried: String },
    #[error("opening the ledger's maps: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("first read of the ledger failed: {0}")]
    FirstTick(String),
    #[error("eBPF object has no {0}")]
    Missing(&'static str),
    #[error("listing online CPUs: {0}")]
    Cpus(std::io::Error),
}

/// Where the ledger takes the length of an on-CPU slice from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceSource {
    /// The scheduler's own runtime of the task (`se.sum_exec_runtime`), what
    /// `/proc/PID/schedstat` reports.
    SchedRuntime,
    /// `bpf_ktime_get_ns` deltas (the reason is in the notes).
    Clock,
}

/// Programs loaded and attached; dropping it detaches everything.
pub struct LoadedProbes {
    /// The flush program, run on each CPU at every tick (see `ebpf::flush_cpus`).
    pub flush: Option<std::os::fd::RawFd>,
    pub ebpf: aya::Ebpf,
    /// How sched_switch was hooked: `tp_btf`, `raw_tp` or `tracepoint`.
    pub attach: String,
    /// Name of the attached sched_switch program, for its bpf_stats.
    pub switch_program: String,
    pub slices: SliceSource,
    /// What was degraded and why.
    pub notes: Vec<String>,
    pub possible_cpus: usize,
    pub overflow_entries: u32,
    pub gpu: GpuLoaded,
}

/// Loads and attaches the ledger and lifecycle programs.
///
/// Start-up memory: the kernel's BTF is read once (5.5 MB on 6.18) for the
/// `task_struct` and fd-table offsets and parsed by aya from that same blob (9 MB
/// parsed), and aya's loader, which parses `/sys/kernel/btf/vmlinux` for itself when
/// made, is made and its copy dropped before ours is parsed: one parsed BTF at a time.
/// Freed heap goes back to the system once the probes are attached.
pub fn load(opts: &LoadOptions) -> Result<LoadedProbes, LoadError> {
    let probes = load_once_parsed(opts);
    trim_heap();
    probes
}

fn load_once_parsed(opts: &LoadOptions) -> Result<LoadedProbes, LoadError> {
    let mut notes = Vec::new();
    let btf_path = opts.sysfs_root.join("kernel/btf/vmlinux");
    let blob = btf::read_btf(&btf_path).map_err(|err| err.to_string());
    let parsed = blob
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|blob| Btf::parse(blob, Endianness::default()).map_err(|err| err.to_string()));
    // Made before the loader, which borrows it.
    let btf: Option<Btf> = match parsed {
        Ok(btf) => Some(btf),
        Err(err) => {
            notes.push(format!(
                "no usable kernel BTF at {} ({err}): raw tracepoints instead of BTF ones",
                btf_path.display()
            ));
            None
        }
    };
    let mut loader = EbpfLoader::new();
    loader.btf(None);
    let blob = blob.ok().filter(|_| btf.is_some());
    let offsets = task_offsets_for(opts, blob.as_deref(), &mut notes);
    let files = gpu_file_offsets(blob.as_deref());
    drop(blob);
    let parts = (offsets, files.clone());
    let probes = load_with(loader, opts, btf.as_ref(), parts, notes.clone())?;
    if probes.attach != "tracepoint" || !offsets.runtime_ledger() {
        return Ok(probes);
    }
    // The classic tracepoint gives no task pointers to read runtimes from: load again
    // with every program on the clock, so the flush and exits agree with the switch.
    // (A second loader parses BTF once more: only on kernels without raw tracepoints.)
    drop(probes);
    notes.push(clock_note(
        "sched_switch is hooked by a classic tracepoint, which carries no task pointers",
    ));
    let clock = TaskOffsets {
        sum_exec_runtime: 0,
        ..offsets
    };
    load_with(EbpfLoader::new(), opts, btf.as_ref(), (clock, files), notes)
}

/// Returns the heap start-up freed (BTF, the object's relocations) to the system.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory at the top of glibc's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The `task_struct` offsets from BTF, with the runtime offset only where the runtime
/// ledger can run; what is missing, and why, goes to `notes`.
fn task_offsets_for(
    opts: &LoadOptions,
    blob: Option<&[u8]>,
    notes: &mut Vec<String>,
) -> TaskOffsets {
    let Some(blob) = blob else {
        notes.push(clock_note("no kernel BTF to find it in"));
        return TaskOffsets::default();
    };
    let mut offsets = btf::task_offsets(blob).unwrap_or_else(|err| {
        notes.push(format!(
            "task_struct offsets unknown ({err}): forks carry no child ids"
        ));
        TaskOffsets::default()
    });
    match btf::runtime_offset(blob) {
        Ok(_) if opts.clock_ledger => notes.push(clock_note("the clock ledger was asked for")),
        Ok(_) if offsets.pid == 0 => notes.push(clock_note("task_struct.pid is unknown")),
        Ok(offset) => offsets.sum_exec_runtime = offset,
        Err(err) => notes.push(clock_note(&err.to_string())),
    }
    offsets
}

fn clock_note(reason: &str) -> String {
    format!(
        "CPU time timed by the clock (bpf_ktime_get_ns), not the scheduler's own runtime \
         (task_struct.se.sum_exec_runtime): {reason}"
    )
}

/// Loads the object with the task (and fd-table) offsets and attaches every probe.
fn load_with<'btf>(
    loader: EbpfLoader<'btf>,
    opts: &LoadOptions,
    btf: Option<&'btf Btf>,
    (offsets, files): (TaskOffsets, Result<FileOffsets, String>),
    mut notes: Vec<String>,
) -> Result<LoadedProbes, LoadError> {
    let possible_cpus = aya::util::nr_cpus().map_err(|(_, err)| LoadError::Cpus(err))?;
    let pid_max = read_pid_max(&opts.procfs_root);
    let overflow_entries = opts
        .overflow_entries
        .unwrap_or_else(|| overflow_entries_for(pid_max));
    let last_charged_entries = last_charged_entries_for(pid_max);
    let last_charged_mask = last_charged_entries - 1;
    let slot_mask = opts
        .table_slots
        .clamp(1, TABLE_SLOTS as u32)
        .next_power_of_two()
        - 1;
    let file_offsets = files.clone().unwrap_or_default();
    // A loader that may borrow locals too (the globals' values).
    let mut loader: EbpfLoader<'_> = loader;
    size_gpu_maps(&mut loader, &file_offsets, pid_max);
    let mut ebpf = loader
        .btf(btf)
        .override_global(names::GLOBAL_SLOT_MASK, &slot_mask, true)
        .override_global(names::GLOBAL_TASK_OFFSETS, &offsets, true)
        .override_global(names::GLOBAL_LAST_CHARGED_MASK, &last_charged_mask, true)
        .map_max_entries(names::LAST_CHARGED, last_charged_entries)
        .map_max_entries(names::OVERFLOW, overflow_entries)
        .map_max_entries(names::EVENTS, ringbuf_bytes(possible_cpus))
        .load(EBPF_OBJECT)
        .map_err(|source| LoadError::Load {
            source: Box::new(source),
        })?;
    let mut at = Attacher {
        ebpf: &mut ebpf,
        btf,
        notes: &mut notes,
    };
    let (attach, flush) = attach_all(&mut at)?;
    let gpu = attach_gpu(&mut at, opts, files);
    let switch_program = format!(
        "ledger_switch_{}",
        match attach.as_str() {
            "tp_btf" => "btf",
            "raw_tp" => "raw",
            _ => "tp",
        }
    );
    let slices = if offsets.runtime_ledger() && attach != "tracepoint" {
        SliceSource::SchedRuntime
    } else {
        SliceSource::Clock
    };
    Ok(LoadedProbes {
        flush,
        switch_program,
        slices,
        ebpf,
        attach,
        notes,
        possible_cpus,
        overflow_entries,
        gpu,
    })
}

/// Every probe, in order; returns how sched_switch was hooked and the flush's fd.
/// (The GPU probes come here.)
fn attach_all(at: &mut Attacher) -> Result<(String, Option<std::os::fd::RawFd>), LoadError> {
    attach_lifecycle_fork(at)?;
    attach_lifecycle_exec(at)?;
    attach_lifecycle_exit(at)?;
    attach_lifecycle_rename(at)?;
    let attach = attach_ledger_switch(at)?;
    Ok((attach, load_ledger_flush(at)))
}

/// Renders an error with its sources, so the user sees the errno at the bottom.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

fn read_pid_max(procfs_root: &Path) -> u32 {
    std::fs::read_to_string(procfs_root.join("sys/kernel/pid_max"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32_768)
}

/// One overflow entry per possible thread, capped: each entry costs 8 bytes per CPU.
fn overflow_entries_for(pid_max: u32) -> u32 {
    pid_max.clamp(1024, 65_536)
}

/// One runtime entry per possible tid (16 bytes each, shared by all CPUs), as a power
/// of two between 1 Ki and 256 Ki: beyond that, tids that collide share an entry and
/// fall back to the per-CPU slot.
fn last_charged_entries_for(pid_max: u32) -> u32 {
    pid_max.clamp(1024, 1 << 18).next_power_of_two()
}

/// 64 KiB of events per CPU, as a power of two between 256 KiB and 16 MiB.
fn ringbuf_bytes(possible_cpus: usize) -> u32 {
    let wanted = (possible_cpus as u64).saturating_mul(64 * 1024);
    wanted
        .clamp(256 * 1024, 16 * 1024 * 1024)
        .next_power_of_two() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_machine() {
        for (pid_max, want) in [(100, 1024), (32_768, 32_768), (4_194_304, 65_536)] {
            assert_eq!(overflow_entries_for(pid_max), want, "pid_max {pid_max}");
        }
        for (pid_max, want) in [
            (100, 1024),
            (32_768, 32_768),
            (40_000, 65_536),
            (4_194_304, 262_144),
        ] {
            assert_eq!(last_charged_entries_for(pid_max), want, "pid_max {pid_max}");
        }
        for (cpus, want) in [
            (1, 256 << 10),
            (2, 256 << 10),
            (8, 512 << 10),
            (6, 512 << 10),
            (4096, 16 << 20),
        ] {
            assert_eq!(ringbuf_bytes(cpus), want, "cpus {cpus}");
        }
        for (pid_max, want) in [(100, 4096), (32_768, 8192), (4_194_304, 65_536)] {
            assert_eq!(gpu::gpu_thread_entries(pid_max), want, "pid_max {pid_max}");
        }
    }

    #[test]
    fn pid_max_is_read_from_the_procfs_root() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_pid_max(dir.path()), 32_768, "missing file: default");
        std::fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
        std::fs::write(dir.path().join("sys/kernel/pid_max"), "4194304\n").unwrap();
        assert_eq!(read_pid_max(dir.path()), 4_194_304);
    }
}
