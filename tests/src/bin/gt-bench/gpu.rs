//! `gt-bench gpu [ROUNDS] [CALLS]`: what the GPU probes cost the calling thread.
//!
//! The C stand-in for libcuda is built and opened in this process; each round times
//! CALLS calls of each function first with no probe attached, then with greentop's
//! ledger loaded in `--gpu-probes all` (uprobes on the stand-in, the ioctl counter on
//! with major 195 declared NVIDIA). In the probed phase `cuDriverGetVersion`, which is
//! never probed, is the same run's unprobed call: a probed call's cost is its time
//! minus that one. Syscalls are timed the same way: `getppid` (any syscall pays for a
//! `sys_enter` program), TCGETS on /dev/null (an ioctl the filter rejects) and on a
//! mknod'd 195 node (an ioctl it counts). Two floors, each attached alone in a phase
//! of its own: an empty `sys_enter` BTF tracepoint program (the hook the counter
//! uses) and an empty program on the classic `syscalls:sys_enter_ioctl` tracepoint
//! (in a private mount namespace with its own tracefs, where none is mounted). Times are this thread's CPU time per call
//! (median of 20 blocks), so a loaded machine does not blur them.
use std::ffi::{CString, c_void};
use std::hint::black_box;
use std::os::fd::AsRawFd;

use agent::probes::ebpf::EbpfLedger;
use agent::probes::gpu::GpuProbeMode;
use agent::probes::loader::{EBPF_OBJECT, LoadOptions, attach_with_fallback, error_chain};
use anyhow::{Context, anyhow, bail};
use greentop_tests::cuda::{FakeCuda, NVIDIA_MAJOR, NVIDIACTL_MINOR};

use crate::{median, thread_cpu_ns};

type NoArg = unsafe extern "C" fn(*mut c_void) -> i32;
type Launch = unsafe extern "C" fn(
    *mut c_void,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    *mut c_void,
    *mut *mut c_void,
    *mut *mut c_void,
) -> i32;

/// The stand-in's functions this benchmark calls.
struct Functions {
    unprobed: NoArg,
    ctx: NoArg,
    sync: NoArg,
    launch: Launch,
}

/// ns per call of each thing timed, in one phase.
#[derive(Clone, Copy, Default)]
struct Times {
    unprobed: f64,
    ctx: f64,
    sync: f64,
    launch: f64,
    getppid: f64,
    ioctl_other: f64,
    ioctl_nvidia: f64,
}

pub fn bench_gpu(rounds: usize, calls: u64) -> anyhow::Result<()> {
    let tracefs = private_tracefs();
    if let Err(why) = &tracefs {
        println!("no classic tracepoint phase: {why}");
    }
    let fake = FakeCuda::build(&[]);
    let functions = open(&fake)?;
    let node = fake.device_node("nvidiactl", NVIDIA_MAJOR, NVIDIACTL_MINOR);
    let nvidia = open_path(&node)?;
    let null = std::fs::File::open("/dev/null").context("/dev/null")?;
    let mut opts = LoadOptions::new("/sys".as_ref(), "/proc".as_ref());
    opts.gpu.mode = GpuProbeMode::All;
    opts.gpu.libraries = vec![fake.lib.clone()];
    opts.gpu.device_majors = Some(vec![NVIDIA_MAJOR]);
    println!(
        "round  phase      nop_ns  ctx_ns  sync_ns  launch_ns  getppid_ns  ioctl_other_ns  ioctl_nvidia_ns"
    );
    let mut rows = Vec::new();
    for round in 1..=rounds {
        let time = || time_all(&functions, nvidia.as_raw_fd(), null.as_raw_fd(), calls);
        let off = time();
        let hook = attach_floor(Floor::BtfSysEnter)?;
        let floor = time();
        drop(hook);
        let classic = match tracefs {
            Ok(()) => {
                let hook = attach_floor(Floor::ClassicIoctl)?;
                let times = time();
                drop(hook);
                times
            }
            Err(_) => Times::default(),
        };
        let ledger = EbpfLedger::new(&opts).map_err(|e| anyhow!(error_chain(&e)))?;
        let on = time();
        drop(ledger);
        for (phase, t) in [
            ("unprobed", off),
            ("tp_btf", floor),
            ("classic", classic),
            ("probed", on),
        ] {
            println!(
                "{round:>5}  {phase:<9} {:>7.1} {:>7.1} {:>8.1} {:>10.1} {:>11.1} {:>15.1} {:>16.1}",
                t.unprobed, t.ctx, t.sync, t.launch, t.getppid, t.ioctl_other, t.ioctl_nvidia
            );
        }
        rows.push(Row {
            off,
            floor,
            classic,
            on,
        });
    }
    summary(&rows, calls);
    Ok(())
}

/// One round: no probe, each empty syscall hook alone, greentop's GPU probes.
struct Row {
    off: Times,
    floor: Times,
    /// All zero when tracefs could not be had.
    classic: Times,
    on: Times,
}

enum Floor {
    BtfSysEnter,
    ClassicIoctl,
}

/// An empty syscall hook, attached alone; dropping the object detaches it.
fn attach_floor(floor: Floor) -> anyhow::Result<aya::Ebpf> {
    let btf = aya::Btf::from_sys_fs().context("kernel BTF")?;
    let mut ebpf = aya::EbpfLoader::new()
        .btf(Some(&btf))
        .load(EBPF_OBJECT)
        .context("loading the eBPF object")?;
    match floor {
        Floor::BtfSysEnter => {
            attach_with_fallback(&mut ebpf, "floor_sys_enter", "sys_enter", Some(&btf), false)
                .map_err(|e| anyhow!(error_chain(&e)))?;
        }
        Floor::ClassicIoctl => {
            let prog: &mut aya::programs::TracePoint = ebpf
                .program_mut("floor_sys_enter_ioctl_tp")
                .context("floor_sys_enter_ioctl_tp missing")?
                .try_into()?;
            prog.load()?;
            prog.attach("syscalls", "sys_enter_ioctl")?;
        }
    }
    Ok(ebpf)
}

/// tracefs for the classic tracepoint phase: the machine's if mounted, else one
/// mounted in a private mount namespace of this (still single-threaded) process, so
/// the machine's mounts are left as they are.
fn private_tracefs() -> Result<(), String> {
    let tracing = std::path::Path::new("/sys/kernel/tracing");
    if tracing.join("events").exists() {
        return Ok(());
    }
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let (root, target, fstype) = (c("/")?, c("/sys/kernel/tracing")?, c("tracefs")?);
    // SAFETY: unshare and mount take valid C strings or null where allowed; they
    // change only this process's view of the mounts.
    let ok = unsafe {
        libc::unshare(libc::CLONE_NEWNS) == 0
            && libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
            && libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            ) == 0
    };
    if !ok {
        return Err(format!(
            "tracefs unavailable: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn summary(rows: &[Row], calls: u64) {
    let med = |f: &dyn Fn(&Row) -> f64| median(rows.iter().map(f).collect());
    println!(
        "median of {} rounds, {calls} calls each: per probed call, minus the same run's unprobed \
         call ({:.1} ns): uprobe (ctx) +{:.0} ns, uprobe (launch) +{:.0} ns, uprobe + uretprobe \
         (sync) +{:.0} ns; launch {:.1} ns unprobed -> {:.1} ns probed ({:.1}x)",
        rows.len(),
        med(&|r| r.on.unprobed),
        med(&|r| r.on.ctx - r.on.unprobed),
        med(&|r| r.on.launch - r.on.unprobed),
        med(&|r| r.on.sync - r.on.unprobed),
        med(&|r| r.off.launch),
        med(&|r| r.on.launch),
        med(&|r| r.on.launch / r.off.launch),
    );
    let cost = |f: fn(&Times) -> f64| {
        [
            med(&|r| f(&r.off)),
            med(&|r| f(&r.floor) - f(&r.off)),
            med(&|r| f(&r.classic) - f(&r.off)),
            med(&|r| f(&r.on) - f(&r.off)),
        ]
    };
    for (what, [base, floor, classic, counter]) in [
        ("getppid", cost(|t| t.getppid)),
        ("ioctl on another device", cost(|t| t.ioctl_other)),
        ("ioctl on an NVIDIA node", cost(|t| t.ioctl_nvidia)),
    ] {
        println!(
            "{what} ({base:.1} ns unprobed): +{floor:.0} ns with an empty sys_enter tp_btf \
             program, +{classic:.0} ns with an empty classic sys_enter_ioctl program, \
             +{counter:.0} ns with the ioctl counter"
        );
    }
}

fn time_all(f: &Functions, nvidia_fd: i32, other_fd: i32, calls: u64) -> Times {
    let null = std::ptr::null_mut();
    // SAFETY (all calls below): the stand-in's functions with their C signatures;
    // they ignore their arguments. The syscalls take plain integers and a buffer.
    Times {
        unprobed: per_call(calls, || unsafe { (f.unprobed)(null) }),
        ctx: per_call(calls, || unsafe { (f.ctx)(null) }),
        sync: per_call(calls, || unsafe { (f.sync)(null) }),
        launch: per_call(calls, || unsafe {
            (f.launch)(null, 1, 1, 1, 1, 1, 1, 0, null, null.cast(), null.cast())
        }),
        getppid: per_call(calls, || unsafe { libc::getppid() }),
        ioctl_other: per_call(calls, || unsafe { tcgets(other_fd) }),
        ioctl_nvidia: per_call(calls, || unsafe { tcgets(nvidia_fd) }),
    }
}

/// SAFETY: `fd` is any descriptor; the kernel fails the ioctl if it does not apply.
unsafe fn tcgets(fd: i32) -> i32 {
    let mut termios = std::mem::MaybeUninit::<libc::termios>::zeroed();
    // SAFETY: a valid, writable termios buffer.
    unsafe { libc::ioctl(fd, libc::TCGETS, termios.as_mut_ptr()) }
}

/// ns of CPU time per call of `f`: the median over 20 blocks of `calls / 20` calls,
/// each timed with this thread's CPU clock, so other work on a loaded machine (which
/// preempts us, but does not run on our clock) and its spikes stay out. A uprobe's
/// trap and program run in this thread's context, on this clock.
fn per_call(calls: u64, mut f: impl FnMut() -> i32) -> f64 {
    const BLOCKS: u64 = 20;
    let per_block = (calls / BLOCKS).max(1);
    let blocks = (0..BLOCKS)
        .map(|_| {
            let start = thread_cpu_ns();
            for _ in 0..per_block {
                black_box(f());
            }
            (thread_cpu_ns() - start) as f64 / per_block as f64
        })
        .collect();
    median(blocks)
}

fn open(fake: &FakeCuda) -> anyhow::Result<Functions> {
    let path = CString::new(fake.lib.to_str().context("UTF-8 path")?)?;
    // SAFETY: a valid C string; the library stays loaded for the process's life.
    let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    if lib.is_null() {
        bail!("dlopen {} failed", fake.lib.display());
    }
    let symbol = |name: &str| -> anyhow::Result<*mut c_void> {
        let c_name = CString::new(name)?;
        // SAFETY: `lib` is a live handle and `c_name` a valid C string.
        let address = unsafe { libc::dlsym(lib, c_name.as_ptr()) };
        anyhow::ensure!(!address.is_null(), "{name} missing from the stand-in");
        Ok(address)
    };
    // SAFETY: each symbol is a function of the stand-in with exactly this C signature.
    unsafe {
        Ok(Functions {
            unprobed: std::mem::transmute::<*mut c_void, NoArg>(symbol("cuDriverGetVersion")?),
            ctx: std::mem::transmute::<*mut c_void, NoArg>(symbol("cuCtxSetCurrent")?),
            sync: std::mem::transmute::<*mut c_void, NoArg>(symbol("cuStreamSynchronize")?),
            launch: std::mem::transmute::<*mut c_void, Launch>(symbol("cuLaunchKernel")?),
        })
    }
}

fn open_path(path: &std::path::Path) -> anyhow::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let c_path = CString::new(path.to_str().context("UTF-8 path")?)?;
    // SAFETY: a valid C string; open returns a new fd or -1.
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    anyhow::ensure!(
        fd >= 0,
        "open {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
