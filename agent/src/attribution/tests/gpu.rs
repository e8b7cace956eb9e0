//! GPU energy without NVML per-process samples: split by the eBPF probes' activity
//! of the processes holding a context (launches, then sync wait, then ioctls).
use super::*;

#[test]
fn without_nvml_samples_gpu_energy_follows_ebpf_activity() {
    let calls = |launches, sync_wait_ns, ioctls| GpuCalls {
        launches,
        sync_wait_ns,
        ioctls,
        ..GpuCalls::default()
    };
    let active = |pid, gpu| ProcessSample {
        gpu,
        ..process(pid, &[&[1]])
    };
    let contexts = GpuDevice {
        processes: vec![gpu_process(7, None), gpu_process(8, None)],
        ..GpuDevice::default()
    };
    let second = 1_000_000_000;
    for (seven, eight, key, want_7, want_8) in [
        (
            calls(30, 0, 9),
            calls(10, 5, 0),
            "ebpf-launches",
            225.0,
            75.0,
        ),
        (
            calls(0, second, 9),
            calls(0, 3 * second, 0),
            "ebpf-sync-wait",
            75.0,
            225.0,
        ),
        (calls(0, 0, 4), calls(0, 0, 1), "ebpf-ioctls", 240.0, 60.0),
        (calls(0, 0, 0), calls(0, 0, 0), "equal", 150.0, 150.0),
    ] {
        // Pid 9 is busy on the GPU too, but holds no context on this device.
        let busy_elsewhere = active(9, calls(1000, 0, 0));
        let s = sample(
            &[0],
            1,
            vec![active(7, seven), active(8, eight), busy_elsewhere],
        );
        let out = attribute(
            &s,
            None,
            Some(&gpu_reading(300.0, contexts.clone())),
            IdlePolicy::Share,
            &Calibration::default(),
        );
        let gpu_j = |pid| find(&out, pid).map_or(0.0, |p| p.gpu_j);
        assert!(
            close(gpu_j(7), want_7) && close(gpu_j(8), want_8) && gpu_j(9) == 0.0,
            "{key}: {} {} {}",
            gpu_j(7),
            gpu_j(8),
            gpu_j(9)
        );
        assert_eq!(out.gpu_split, [(0, key)]);
    }
    let sampled = GpuDevice {
        processes: vec![gpu_process(7, Some(10)), gpu_process(8, Some(30))],
        ..GpuDevice::default()
    };
    let s = sample(&[0], 1, vec![active(7, calls(99, 0, 0))]);
    let out = attribute(
        &s,
        None,
        Some(&gpu_reading(300.0, sampled)),
        IdlePolicy::Share,
        &Calibration::default(),
    );
    assert_eq!(
        out.gpu_split,
        [(0, "nvml-samples")],
        "NVML samples come first"
    );
    assert!(close(of(&out, 8).gpu_j, 225.0));
}
