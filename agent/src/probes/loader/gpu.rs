//! The loader's GPU part: the fd-table layout the NVIDIA ioctl counter follows (from
//! BTF), the map sizes, the uprobe programs loaded and the ioctl counter attached.
//! Nothing here fails the load: a GPU probe that cannot be set up is a note.
use agent_common::{FileOffsets, names};
use aya::EbpfLoader;

use super::LoadOptions;
use super::attach::{Attacher, attach_gpu_ioctl, load_gpu_uprobes};
use crate::probes::gpu::{self, GpuProbeMode};

/// What the loader set up for the GPU probes; `gpu::GpuProbes` takes it from here.
#[derive(Clone, Debug, Default)]
pub struct GpuLoaded {
    pub mode: GpuProbeMode,
    /// How the NVIDIA ioctl counter was hooked (`tp_btf`, `raw_tp`), or why it was not.
    pub ioctl: Option<String>,
    /// NVIDIA character-device majors, and whether they were given rather than read
    /// from `/proc/devices` (then they are re-read when `nvidia-uvm` appears).
    pub majors: Vec<u32>,
    pub majors_given: bool,
    /// Uprobe programs loaded and ready to attach.
    pub uprobes: Vec<&'static str>,
    /// What is missing and why.
    pub notes: Vec<String>,
}

/// Tells the loader the fd-table layout (a read-only global) and sizes the GPU maps.
pub(super) fn size_gpu_maps<'a>(loader: &mut EbpfLoader<'a>, files: &'a FileOffsets, pid_max: u32) {
    let entries = gpu_thread_entries(pid_max);
    loader
        .override_global(names::GLOBAL_FILE_OFFSETS, files, true)
        .map_max_entries(names::GPU_THREADS, entries)
        .map_max_entries(names::GPU_SYNC_STARTS, entries);
}

/// The fd-to-inode path of the ioctl counter, from BTF, or why it is unknown.
pub(super) fn gpu_file_offsets(blob: Option<&[u8]>) -> Result<FileOffsets, String> {
    let blob = blob.ok_or_else(|| "no kernel BTF to find the fd table's layout in".to_string())?;
    gpu::file_offsets(blob).map_err(|err| format!("the fd table's layout is unknown ({err})"))
}

/// The GPU probes `opts.gpu.mode` asks for. Never fails the load: a GPU probe that
/// cannot attach is a note, and CPU accounting goes on without it.
pub(super) fn attach_gpu(
    at: &mut Attacher,
    opts: &LoadOptions,
    files: Result<FileOffsets, String>,
) -> GpuLoaded {
    let mode = opts.gpu.mode;
    let mut loaded = GpuLoaded {
        mode,
        ..GpuLoaded::default()
    };
    if mode == GpuProbeMode::Off {
        return loaded;
    }
    (loaded.uprobes, loaded.notes) = load_gpu_uprobes(at, mode);
    loaded.majors_given = opts.gpu.device_majors.is_some();
    loaded.majors = match &opts.gpu.device_majors {
        Some(majors) => majors.clone(),
        None => gpu::discover::nvidia_majors(&opts.procfs_root)
            .into_iter()
            .map(|(major, _)| major)
            .collect(),
    };
    loaded.majors.sort_unstable();
    loaded.majors.dedup();
    let why_not = match files {
        Err(why) => Some(why),
        Ok(_) if loaded.majors.is_empty() => Some(format!(
            "no NVIDIA driver (no nvidia major in {})",
            opts.procfs_root.join("devices").display()
        )),
        Ok(_) => match attach_gpu_ioctl(at) {
            Ok(kind) => {
                loaded.ioctl = Some(kind);
                None
            }
            Err(err) => Some(err),
        },
    };
    if let Some(why) = why_not {
        loaded
            .notes
            .push(format!("NVIDIA ioctls are not counted: {why}"));
    }
    loaded
}

/// GPU threads tracked at once (and sync calls in flight): a quarter of pid_max,
/// between 4 Ki and 64 Ki (56 bytes per CPU each); beyond that, hits are counted as
/// dropped.
pub(super) fn gpu_thread_entries(pid_max: u32) -> u32 {
    (pid_max / 4).clamp(4096, 65_536)
}
