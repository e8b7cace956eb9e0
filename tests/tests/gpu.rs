//! The GPU probes for real, as root: uprobes on a C stand-in for libcuda called from two
//! threads (counts per thread exact, sync wait bounded by what the stand-in slept and
//! what the caller measured around each call), discovery of libraries mapped after
//! greentop started, a library with entry points missing, and the NVIDIA ioctl counter
//! on device nodes made with mknod.
use agent::probes::LedgerSample;
use agent::probes::gpu::{GpuCalls, GpuProbeMode, LAUNCH_SYMBOLS};
use agent::probes::loader::LoadOptions;
use greentop_tests::cuda::{
    CudaCalls, FakeCuda, Found, NVIDIA_MAJOR, NVIDIACTL_MINOR, WorkerReport,
};
use greentop_tests::*;

/// Each sync call of the stand-in sleeps this long.
const SYNC_US: u64 = 3_000;

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

fn env_for(fake: &FakeCuda) -> (String, std::path::PathBuf) {
    let device = fake.device_node("nvidiactl", NVIDIA_MAJOR, NVIDIACTL_MINOR);
    (SYNC_US.to_string(), device)
}

#[test]
fn counts_per_thread_are_exact_and_sync_wait_is_what_was_slept() {
    let fake = FakeCuda::build(&[]);
    let mut ledger = ledger_with(&gpu_options(GpuProbeMode::All, &[&fake.lib]));
    let (sync_us, device) = env_for(&fake);
    let env = [
        ("FAKE_CUDA_SYNC_US", sync_us.as_str()),
        ("FAKE_CUDA_DEVICE", device.to_str().unwrap()),
    ];
    let mut samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (20, 35), false, &env);
    let pid = calls.pid;
    calls.init();
    let (found, workers) = calls.run();
    assert_eq!(
        found,
        (5, LAUNCH_SYMBOLS.len() as u64, 4),
        "every entry point present"
    );
    samples.push(sample(&mut ledger));
    assert_exact(&samples, pid, found, &workers, true);
    let leader = thread_calls(&samples, pid, pid);
    assert_eq!(
        leader.ioctls, 1,
        "cuInit's one ioctl on the NVIDIA node: {leader:?}"
    );
    let status = samples.last().unwrap().gpu.clone().expect("GPU probes on");
    assert!(
        status
            .libraries
            .iter()
            .any(|l| l.starts_with(fake.lib.to_str().unwrap())),
        "{status:?}"
    );
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
    let (sync_us, _) = env_for(&fake);
    let env = [("FAKE_CUDA_SYNC_US", sync_us.as_str())];
    let mut samples = vec![sample(&mut ledger)];
    let mut calls = CudaCalls::spawn(&fake, &fake.lib, (7, 11), false, &env);
    let pid = calls.pid;
    calls.init();
    let (found, workers) = calls.run();
    samples.push(sample(&mut ledger));
    assert_exact(&samples, pid, found, &workers, false);
}
