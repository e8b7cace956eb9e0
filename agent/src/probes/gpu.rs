//! GPU activity per process and thread, seen from eBPF as work is submitted: CUDA
//! context switches, kernel and graph launches and sync waits (uprobes and uretprobes
//! on every libcuda file in use), and ioctls on NVIDIA devices (a syscall tracepoint,
//! which needs no user library). Kernel side: `agent-ebpf/src/gpu.rs`; the design,
//! costs and limits: docs/gpu-probes.md.
pub mod discover;
mod elf;
mod runtime;

use std::path::PathBuf;

use agent_common::FileOffsets;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

pub use elf::{ElfError, exported_offsets};
pub use runtime::{GpuProbeStatus, GpuProbes};

use super::btf::{self, BtfError};

/// Which GPU probes to attach (`--gpu-probes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuProbeMode {
    /// No GPU probes at all.
    Off,
    /// Context switches and sync waits (uprobes), NVIDIA ioctls; not every launch.
    #[default]
    Ctx,
    /// Everything `ctx` has, plus a uprobe hit per kernel or graph launch.
    All,
}

impl GpuProbeMode {
    pub fn label(self) -> &'static str {
        match self {
            GpuProbeMode::Off => "off",
            GpuProbeMode::Ctx => "ctx",
            GpuProbeMode::All => "all",
        }
    }
}

/// What to probe and where to look; defaults suit production.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    pub mode: GpuProbeMode,
    /// libcuda files to probe whether or not a process has them mapped (`--cuda-lib`).
    pub libraries: Vec<PathBuf>,
    /// NVIDIA character-device majors; `None` reads them from `<procfs>/devices`.
    pub device_majors: Option<Vec<u32>>,
    /// Where the system's libcuda is looked for at start-up.
    pub ld_cache: PathBuf,
    pub lib_dirs: Vec<PathBuf>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            mode: GpuProbeMode::default(),
            libraries: Vec::new(),
            device_majors: None,
            ld_cache: PathBuf::from("/etc/ld.so.cache"),
            lib_dirs: discover::SYSTEM_LIB_DIRS
                .iter()
                .map(PathBuf::from)
                .collect(),
        }
    }
}

/// One thread's (or process's) GPU activity in one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuCalls {
    pub ctx_switches: u64,
    pub launches: u64,
    pub syncs: u64,
    /// Time blocked in sync calls that returned in the interval.
    pub sync_wait_ns: u64,
    pub ioctls: u64,
}

impl GpuCalls {
    pub fn add(&mut self, other: &GpuCalls) {
        self.ctx_switches += other.ctx_switches;
        self.launches += other.launches;
        self.syncs += other.syncs;
        self.sync_wait_ns += other.sync_wait_ns;
        self.ioctls += other.ioctls;
    }

    pub fn is_zero(&self) -> bool {
        *self == GpuCalls::default()
    }
}

/// A uprobe program and the libcuda entry points it is attached to. Aliases that
/// share an address are attached once, so a call is never counted twice.
pub struct ProbeGroup {
    pub program: &'static str,
    /// The uretprobe attached at the same entry points, if the group is timed.
    pub ret_program: Option<&'static str>,
    pub symbols: &'static [&'static str],
    /// The lowest mode that attaches it.
    pub mode: GpuProbeMode,
}

/// Context switches: the `_v2` entry points are what cuda.h maps the names to since
/// CUDA 4; the unsuffixed ones serve binaries built before.
pub const CTX_SYMBOLS: &[&str] = &[
    "cuCtxSetCurrent",
    "cuCtxPushCurrent_v2",
    "cuCtxPopCurrent_v2",
    "cuCtxPushCurrent",
    "cuCtxPopCurrent",
];

/// Launches: each with its per-thread-default-stream (`_ptsz`) variant, which cuda.h
/// selects under `CUDA_API_PER_THREAD_DEFAULT_STREAM` and the runtime resolves through
/// `cuGetProcAddress`. (`_ptds` variants exist only for memcpy/memset calls.)
pub const LAUNCH_SYMBOLS: &[&str] = &[
    "cuLaunchKernel",
    "cuLaunchKernel_ptsz",
    "cuLaunchKernelEx",
    "cuLaunchKernelEx_ptsz",
    "cuLaunchCooperativeKernel",
    "cuLaunchCooperativeKernel_ptsz",
    "cuGraphLaunch",
    "cuGraphLaunch_ptsz",
];

/// Sync waits, timed entry to return.
pub const SYNC_SYMBOLS: &[&str] = &[
    "cuCtxSynchronize",
    "cuStreamSynchronize",
    "cuStreamSynchronize_ptsz",
    "cuEventSynchronize",
];

pub const PROBE_GROUPS: [ProbeGroup; 3] = [
    ProbeGroup {
        program: agent_common::names::PROG_GPU_CTX,
        ret_program: None,
        symbols: CTX_SYMBOLS,
        mode: GpuProbeMode::Ctx,
    },
    ProbeGroup {
        program: agent_common::names::PROG_GPU_SYNC,
        ret_program: Some(agent_common::names::PROG_GPU_SYNC_RET),
        symbols: SYNC_SYMBOLS,
        mode: GpuProbeMode::Ctx,
    },
    ProbeGroup {
        program: agent_common::names::PROG_GPU_LAUNCH,
        ret_program: None,
        symbols: LAUNCH_SYMBOLS,
        mode: GpuProbeMode::All,
    },
];

impl ProbeGroup {
    /// Attached in `mode`.
    pub fn enabled(&self, mode: GpuProbeMode) -> bool {
        match self.mode {
            GpuProbeMode::Off => false,
            GpuProbeMode::Ctx => mode != GpuProbeMode::Off,
            GpuProbeMode::All => mode == GpuProbeMode::All,
        }
    }
}

/// The fd-to-device path the ioctl counter follows, from the kernel's BTF blob.
pub fn file_offsets(blob: &[u8]) -> Result<FileOffsets, BtfError> {
    let one = |strukt: &str, member: &str| -> Result<u32, BtfError> {
        btf::member_path_offset_bytes(blob, strukt, &[member])
    };
    Ok(FileOffsets {
        files: one("task_struct", "files")?,
        fdt: one("files_struct", "fdt")?,
        max_fds: one("fdtable", "max_fds")?,
        fd_array: one("fdtable", "fd")?,
        f_inode: one("file", "f_inode")?,
        i_rdev: one("inode", "i_rdev")?,
        i_mode: one("inode", "i_mode")?,
        pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_enable_their_groups() {
        let enabled = |mode| -> Vec<&str> {
            PROBE_GROUPS
                .iter()
                .filter(|g| g.enabled(mode))
                .map(|g| g.program)
                .collect()
        };
        assert!(enabled(GpuProbeMode::Off).is_empty());
        assert_eq!(enabled(GpuProbeMode::Ctx), ["gpu_ctx", "gpu_sync"]);
        assert_eq!(
            enabled(GpuProbeMode::All),
            ["gpu_ctx", "gpu_sync", "gpu_launch"]
        );
    }

    #[test]
    fn the_running_kernel_describes_the_fd_path() {
        let blob = btf::read_btf(std::path::Path::new("/sys/kernel/btf/vmlinux"))
            .expect("kernel BTF (every machine greentop targets has it)");
        let offsets = file_offsets(&blob).unwrap();
        assert!(offsets.complete(), "{offsets:?}");
        assert_eq!(offsets.max_fds, 0, "fdtable.max_fds leads the struct");
        assert_eq!(offsets.i_mode, 0, "inode.i_mode leads the struct");
    }
}
