//! The GPU probes for real, as root: uprobes on a C stand-in for libcuda called from two
//! threads (counts per thread exact, sync wait bounded by what the stand-in slept and
//! what the caller measured around each call), discovery of libraries mapped after
//! greentop started, a library with entry points missing, and the NVIDIA ioctl counter
//! on device nodes made with mknod.
use agent::probes::LedgerSample;
use agent::probes::gpu::{CTX_SYMBOLS, GpuCalls, GpuProbeMode, LAUNCH_SYMBOLS, SYNC_SYMBOLS};
use agent::probes::loader::LoadOptions;
use greentop_tests::cuda::{
    CudaCalls, FakeCuda, Found, NVIDIA_MAJOR, NVIDIACTL_MINOR, WorkerReport,
};
use greentop_tests::*;

/// Each sync call of the stand-in sleeps this long.
const SYNC_US: u64 = 3_000;
const SYNC_ENV: (&str, &str) = ("FAKE_CUDA_SYNC_US", "3000");

fn gpu_options(mode: GpuProbeMode, libraries: &[&std::path::Path]) -> LoadOptions {
    let mut opts = options();
    opts.gpu.mode = mode;
    opts.gpu.libraries = libraries.iter().map(|p| p.to_path_buf()).collect();
    opts.gpu.device_majors = Some(vec![NVIDIA_MAJOR]);
    opts
}

/// GPU activity of one thread over all samples.
fn thread_calls(samples: &[LedgerSample], pid: u32, tid: u32) -> GpuCalls {
    let mut sum = GpuCalls::default();
    for row in rows_for(samples, pid) {
        for thread in row.threads.iter().filter(|t| t.tid == tid) {
            sum.add(&thread.gpu);
        }
    }
    sum
}

/// Asserts each worker's counts are exactly what it called, and its sync wait lies
/// between what the stand-in slept and what the caller measured around the calls.
fn assert_exact(
    samples: &[LedgerSample],
    pid: u32,
    found: Found,
    workers: &[WorkerReport; 2],
    launches: bool,
) {
    let every = (CTX_SYMBOLS.len() as u64, SYNC_SYMBOLS.len() as u64);
    assert_eq!(
        (found.0, found.2),
        every,
        "the stand-in has every ctx and sync entry point"
    );
    for w in workers {
        let got = thread_calls(samples, pid, w.tid);
        let want_launches = if launches { found.1 * w.calls_each } else { 0 };
        assert_eq!(
            (got.ctx_switches, got.launches, got.syncs),
            (
                found.0 * w.calls_each,
                want_launches,
                found.2 * w.calls_each
            ),
            "thread {} (found {found:?}, {} calls each): {got:?}",
            w.tid,
            w.calls_each
        );
        assert_eq!(got.syncs, w.sync_calls, "syncs as the caller counted them");
        let slept_ns = w.sync_calls * SYNC_US * 1_000;
        assert!(
            (slept_ns..=w.bracket_ns).contains(&got.sync_wait_ns),
            "thread {}: sync wait {} ns, slept {slept_ns} ns, caller measured {} ns",
            w.tid,
            got.sync_wait_ns,
            w.bracket_ns
        );
    }
    let rows = rows_for(samples, pid);
    for row in &rows {
        let mut sum = GpuCalls::default();
        row.threads.iter().for_each(|t| sum.add(&t.gpu));
        assert_eq!(sum, row.gpu, "threads sum to the process in every interval");
    }
}

/// Runs both threads of `calls` to the end, takes a last sample, and checks every
/// count of every thread; returns all samples.
fn finish(
    calls: CudaCalls,
    ledger: &mut agent::probes::ebpf::EbpfLedger,
    mut samples: Vec<LedgerSample>,
    launches: bool,
) -> (Found, Vec<LedgerSample>) {
    let pid = calls.pid;
    let (found, workers) = calls.run();
    samples.push(sample(ledger));
    assert_exact(&samples, pid, found, &workers, launches);
    (found, samples)
}

/// `nvidiactl` (195:255) in the fake's directory, for cuInit's ioctl.
fn nvidiactl(fake: &FakeCuda) -> String {
    let node = fake.device_node("nvidiactl", NVIDIA_MAJOR, NVIDIACTL_MINOR);
    node.display().to_string()
}

#[test]
fn counts_per_thread_are_exact_and_sync_wait_is_what_was_slept() {
    let fake = FakeCuda::build(&[]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::All, &[&fake.lib]));
    let device = nvidiactl(&fake);
    let env = [SYNC_ENV, ("FAKE_CUDA_DEVICE", device.as_str())];
    let samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (20, 35), false, &env);
    let pid = calls.pid;
    calls.init();
    let (found, samples) = finish(calls, &mut ledger, samples, true);
    assert_eq!(
        found.1,
        LAUNCH_SYMBOLS.len() as u64,
        "every launch entry point"
    );
    let leader = thread_calls(&samples, pid, pid);
    assert_eq!(
        leader.ioctls, 1,
        "cuInit's one ioctl on the NVIDIA node: {leader:?}"
    );
    let status = samples.last().unwrap().gpu.clone().expect("GPU probes on");
    let entry_points = format!("{} (17 entry points)", fake.lib.display());
    assert!(status.libraries.contains(&entry_points), "{status:?}");
    assert_eq!(
        status.ioctl_counter.as_deref(),
        Some("tp_btf"),
        "{status:?}"
    );
    assert_eq!((status.dropped_hits, status.untimed_syncs), (0, 0));
}

#[test]
fn ctx_mode_counts_switches_and_syncs_but_no_launches() {
    let fake = FakeCuda::build(&[]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::Ctx, &[&fake.lib]));
    let samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (7, 11), false, &[SYNC_ENV]);
    calls.init();
    finish(calls, &mut ledger, samples, false);
}

/// Whether the probes had attached to `lib` by the time of `sample`.
fn probed(sample: &LedgerSample, lib: &std::path::Path) -> bool {
    let status = sample.gpu.as_ref().expect("GPU probes on");
    let name = lib.file_name().unwrap().to_str().unwrap();
    status.libraries.iter().any(|l| l.contains(name))
}

#[test]
fn a_process_started_later_is_probed_from_its_exec() {
    let fake = FakeCuda::build(&[]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::All, &[]));
    let mut samples = vec![sample(&mut ledger)];
    assert!(!probed(&samples[0], &fake.lib), "not mapped by anyone yet");
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (9, 4), false, &[SYNC_ENV]);
    // The tick after "ready" applies the exec event and reads the process's maps.
    samples.push(sample(&mut ledger));
    assert!(probed(samples.last().unwrap(), &fake.lib), "found at exec");
    calls.init();
    finish(calls, &mut ledger, samples, true);
}

#[test]
fn a_library_opened_long_after_exec_is_probed_at_the_first_nvidia_ioctl() {
    let fake = FakeCuda::build(&[]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::All, &[]));
    let device = nvidiactl(&fake);
    let env = [SYNC_ENV, ("FAKE_CUDA_DEVICE", device.as_str())];
    let mut samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (6, 13), true, &env);
    samples.push(sample(&mut ledger));
    let at_exec = samples.last().unwrap();
    assert!(!probed(at_exec, &fake.lib), "nothing mapped at exec");
    // dlopen, then cuInit: its ioctl on the NVIDIA node makes the agent look again.
    calls.init();
    samples.push(sample(&mut ledger));
    let at_ioctl = samples.last().unwrap();
    assert!(
        probed(at_ioctl, &fake.lib),
        "found at the first NVIDIA ioctl"
    );
    finish(calls, &mut ledger, samples, true);
}

#[test]
fn a_library_without_some_entry_points_attaches_the_rest() {
    let fake = FakeCuda::build(&["OMIT_LAUNCH_EX", "OMIT_GRAPHS"]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::All, &[&fake.lib]));
    let samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (12, 5), false, &[SYNC_ENV]);
    calls.init();
    let (found, samples) = finish(calls, &mut ledger, samples, true);
    assert_eq!(found.1, 4, "four launch entry points left out");
    let status = samples.last().unwrap().gpu.clone().unwrap();
    let note = status
        .notes
        .iter()
        .find(|n| n.contains(fake.lib.to_str().unwrap()))
        .unwrap_or_else(|| panic!("a note names the library: {status:?}"));
    assert!(
        note.ends_with(
            "absent, skipped: cuLaunchKernelEx, cuLaunchKernelEx_ptsz, cuGraphLaunch, cuGraphLaunch_ptsz"
        ),
        "{note}"
    );
    let entry_points = format!("{} (13 entry points)", fake.lib.display());
    assert!(
        status.libraries.contains(&entry_points),
        "5 ctx + 4 sync + 4 launch: {status:?}"
    );
}

#[test]
fn a_library_in_another_mount_namespace_is_reached_through_the_process_root() {
    let fake = FakeCuda::build(&[]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::All, &[]));
    let hidden = tempfile::tempdir().unwrap();
    let inside = hidden.path().join("libcuda.so.1");
    let script = format!(
        "mount -t tmpfs greentop-test {dir} && cp {lib} {inside} && exec {program} {args}",
        dir = hidden.path().display(),
        lib = fake.lib.display(),
        inside = inside.display(),
        program = fake.program.display(),
        args = fake.args(&inside, (8, 3), false).join(" "),
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env(SYNC_ENV.0, SYNC_ENV.1);
    let mut samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::start(cmd, (8, 3));
    assert!(
        !inside.exists(),
        "the copy is only visible in the child's namespace"
    );
    samples.push(sample(&mut ledger));
    let status = samples.last().unwrap().gpu.clone().unwrap();
    let through_root = format!("/proc/{}/root{}", calls.pid, inside.display());
    assert!(
        status
            .libraries
            .iter()
            .any(|l| l.starts_with(&through_root)),
        "attached as {through_root}: {status:?}"
    );
    calls.init();
    finish(calls, &mut ledger, samples, true);
}

#[test]
fn a_deleted_library_is_reached_through_map_files() {
    let fake = FakeCuda::build(&[]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::Ctx, &[]));
    let copy = fake.dir.path().join("libcuda.so.550.00");
    std::fs::copy(&fake.lib, &copy).unwrap();
    let mut samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::spawn(&fake, &copy, (4, 6), false, &[SYNC_ENV]);
    std::fs::remove_file(&copy).unwrap();
    samples.push(sample(&mut ledger));
    let status = samples.last().unwrap().gpu.clone().unwrap();
    let map_files = format!("/proc/{}/map_files/", calls.pid);
    assert!(
        status.libraries.iter().any(|l| l.starts_with(&map_files)),
        "{status:?}"
    );
    calls.init();
    finish(calls, &mut ledger, samples, false);
}
