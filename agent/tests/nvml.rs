//! `NvmlSource` against a scripted stand-in for `libnvidia-ml.so.1` (tests/fakes/
//! fake_nvml.c), built with `cc` at test time and loaded through nvml-wrapper's real
//! code path. Each test gets its own copy of the library in its own directory, with the
//! script beside it, so tests run in parallel without sharing state.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use agent::energy::nvml::NvmlSource;
use agent::energy::{EnergyReading, EnergySource, GpuAccounting, Provenance, SourceError};
use tempfile::TempDir;

/// A compiled fake NVML and its script.
struct FakeNvml {
    dir: TempDir,
    lib: PathBuf,
}

impl FakeNvml {
    /// Compiles the fake; a missing or failing `cc` fails the test (never a skip).
    fn new(script: &str) -> FakeNvml {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("libnvidia-ml.so.1");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/fake_nvml.c");
        let output = Command::new("cc")
            .args(["-shared", "-fPIC", "-Wall", "-o"])
            .arg(&lib)
            .arg(&source)
            .output()
            .expect("running cc (a C compiler is required for the NVML tests)");
        assert!(
            output.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let fake = FakeNvml { dir, lib };
        fake.script(script);
        fake
    }

    /// Replaces the script; the fake re-reads it on every call.
    fn script(&self, text: &str) {
        let tmp = self.dir.path().join("fake_nvml.script.tmp");
        std::fs::write(&tmp, text).expect("write script");
        std::fs::rename(&tmp, self.dir.path().join("fake_nvml.script")).expect("rename");
    }

    /// The NVML calls made so far, in order.
    fn calls(&self) -> Vec<String> {
        let path = self.dir.path().join("fake_nvml.script.calls");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    fn open(&self) -> NvmlSource {
        NvmlSource::open(Some(&self.lib)).expect("open fake NVML")
    }
}

fn two_gpus(energy0_mj: u64, energy1_mj: u64) -> String {
    format!(
        "device_count=2\n\
         dev0.name=NVIDIA H100 80GB HBM3\ndev0.uuid=GPU-aaaa\n\
         dev1.name=NVIDIA A100-SXM4-40GB\ndev1.uuid=GPU-bbbb\n\
         dev0.energy_mj={energy0_mj}\ndev1.energy_mj={energy1_mj}\n\
         dev0.power_mw=300000\ndev1.power_mw=100000\n\
         dev0.util=0:0\ndev1.util=0:0\n"
    )
}

fn energies(reading: &EnergyReading) -> Vec<u64> {
    reading.domains.iter().map(|d| d.energy_uj).collect()
}

fn not_found_message(result: Result<NvmlSource, SourceError>) -> String {
    match result {
        Err(SourceError::NotFound(message)) => message,
        Err(other) => panic!("expected NotFound, got {other:?}"),
        Ok(source) => panic!("expected NotFound, opened {:?}", source.describe()),
    }
}

#[test]
fn two_devices_exact_energy_deltas() {
    let fake = FakeNvml::new(&two_gpus(1_000, 5_000));
    let mut source = fake.open();
    assert_eq!(source.name(), "nvml");
    assert_eq!(
        source.describe(),
        vec![
            "GPU 0 NVIDIA H100 80GB HBM3 (GPU-aaaa): energy counter yes, accounting off",
            "GPU 1 NVIDIA A100-SXM4-40GB (GPU-bbbb): energy counter yes, accounting off",
        ]
    );
    // (dev0 mJ, dev1 mJ) → (dev0 µJ, dev1 µJ)
    let steps = [
        ((1_500, 5_250), (500_000, 250_000)),
        ((1_500, 6_250), (0, 1_000_000)),
        ((4_000_000, 6_251), (3_998_500_000, 1_000)),
    ];
    for ((mj0, mj1), (uj0, uj1)) in steps {
        fake.script(&two_gpus(mj0, mj1));
        let reading = source.read().expect("read");
        assert_eq!(energies(&reading), vec![uj0, uj1], "{mj0} {mj1}");
        for (i, domain) in reading.domains.iter().enumerate() {
            assert_eq!(domain.domain.index, i as u32);
            assert_eq!(domain.provenance, Provenance::NvmlEnergy);
            assert_eq!(domain.note, None);
        }
        assert_eq!(
            reading.domains[1].domain.name,
            "GPU 1 NVIDIA A100-SXM4-40GB (GPU-bbbb)"
        );
        let power: Vec<_> = reading.gpus.iter().map(|g| g.power_mw).collect();
        assert_eq!(power, vec![Some(300_000), Some(100_000)]);
    }
}

#[test]
fn backwards_counter_gives_zero_and_a_note() {
    let fake = FakeNvml::new(&two_gpus(1_000, 1_000));
    let mut source = fake.open();
    // (dev0 mJ) → (µJ, note mentions)
    let steps = [
        (400, 0, Some("went backwards (1000 mJ -> 400 mJ")),
        (900, 500_000, None),
        (0, 0, Some("went backwards")),
    ];
    for (mj, uj, note) in steps {
        fake.script(&two_gpus(mj, 1_000));
        let reading = source.read().expect("read");
        let domain = &reading.domains[0];
        assert_eq!(domain.energy_uj, uj, "{mj}");
        match note {
            Some(text) => assert!(
                domain.note.as_deref().unwrap_or("").contains(text),
                "{domain:?}"
            ),
            None => assert_eq!(domain.note, None),
        }
        assert_eq!(reading.domains[1].energy_uj, 0);
    }
}

#[test]
fn unsupported_energy_counter_uses_power_times_elapsed() {
    let script = "device_count=1\ndev0.energy=notsupported\ndev0.power_mw=250000\n";
    let fake = FakeNvml::new(script);
    let mut source = fake.open();
    let described = source.describe().join("\n");
    assert!(
        described.contains("energy counter no (nvmlDeviceGetTotalEnergyConsumption"),
        "{described}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let reading = source.read().expect("read");
    assert!(reading.elapsed >= Duration::from_millis(200));
    let domain = &reading.domains[0];
    let expected_uj = 250.0 * reading.elapsed.as_secs_f64() * 1e6;
    let error = (domain.energy_uj as f64 - expected_uj).abs() / expected_uj;
    assert!(error < 0.01, "{} µJ vs {expected_uj} µJ", domain.energy_uj);
    assert_eq!(domain.provenance, Provenance::NvmlPower);
    assert!(
        domain.note.as_deref().unwrap_or("").contains("power × Δt"),
        "{domain:?}"
    );
    assert_eq!(reading.gpus[0].power_mw, Some(250_000));
}

#[test]
fn running_processes_with_mig_ids_and_utilization() {
    let fake = FakeNvml::new(
        "dev0.energy_mj=0\ndev0.power_mw=1\ndev0.util=70:40\n\
         dev0.procs=1234:1073741824:gi=1:ci=0,5678:2048,91:na:gi=2:ci=3\n",
    );
    let mut source = fake.open();
    let gpu = source.read().expect("read").gpus.remove(0);
    assert_eq!((gpu.gpu_util_pct, gpu.mem_util_pct), (Some(70), Some(40)));
    let got: Vec<_> = gpu
        .processes
        .iter()
        .map(|p| {
            (
                p.pid,
                p.used_memory_bytes,
                p.gpu_instance_id,
                p.compute_instance_id,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1234, Some(1 << 30), Some(1), Some(0)),
            (5678, Some(2048), None, None),
            (91, None, Some(2), Some(3)),
        ]
    );
    assert_eq!(gpu.notes, Vec::<String>::new());
}

#[test]
fn utilization_samples_are_averaged_and_only_new_ones_counted() {
    let base = "dev0.energy_mj=0\ndev0.power_mw=1\ndev0.util=50:10\ndev0.procs=1234:4096\n";
    let fake = FakeNvml::new(base);
    let mut source = fake.open();
    let first =
        "1234:ts=100:sm=80:mem=30:enc=4:dec=2,1234:ts=200:sm=60:mem=10,5678:ts=150:sm=20:mem=5";
    let second = format!("{first},1234:ts=300:sm=11:mem=3");
    // (samples in the driver's buffer) → [(pid, sm, mem, enc, dec)]
    let steps = [
        (
            first.to_string(),
            vec![
                (1234, Some(70), Some(20), Some(2), Some(1)),
                (5678, Some(20), Some(5), Some(0), Some(0)),
            ],
        ),
        (
            second.clone(),
            vec![(1234, Some(11), Some(3), Some(0), Some(0))],
        ),
        (second, vec![(1234, None, None, None, None)]),
    ];
    for (samples, want) in steps {
        fake.script(&format!("{base}dev0.samples={samples}\n"));
        let gpu = source.read().expect("read").gpus.remove(0);
        let got: Vec<_> = gpu
            .processes
            .iter()
            .map(|p| {
                (
                    p.pid,
                    p.sm_util_pct,
                    p.mem_util_pct,
                    p.enc_util_pct,
                    p.dec_util_pct,
                )
            })
            .collect();
        assert_eq!(got, want, "{samples}");
        assert_eq!(
            gpu.notes,
            Vec::<String>::new(),
            "no samples is not a failure"
        );
    }
}

#[test]
fn accounting_reports_an_ended_pid_once() {
    let base = "dev0.energy_mj=0\ndev0.power_mw=1\ndev0.util=0:0\ndev0.accounting=1\n";
    // 777 ended before the source opened: not ours to report.
    let before = "777:gpu=9:time=10:running=0,1234:running=1";
    let fake = FakeNvml::new(&format!("{base}dev0.procs=1234:10\ndev0.acct={before}\n"));
    let mut source = fake.open();
    assert!(source.describe()[0].ends_with("accounting on"));
    let ended = format!("{before},999:gpu=50:mem=20:maxmem=4096:time=5000:running=0");
    let stats_999 = GpuAccounting {
        pid: 999,
        gpu_util_pct: 50,
        mem_util_pct: 20,
        max_memory_bytes: 4096,
        time_ms: 5000,
        is_running: false,
    };
    // (accounting buffer, running procs) → ended pids reported this read
    let steps = [
        (before.to_string(), "1234:10", vec![]),
        (ended.clone(), "1234:10", vec![999]),
        (ended.clone(), "1234:10", vec![]),
        (
            ended.replace("1234:running=1", "1234:gpu=1:time=7:running=0"),
            "",
            vec![1234],
        ),
        (ended, "", vec![]),
    ];
    for (acct, procs, want) in steps {
        fake.script(&format!("{base}dev0.procs={procs}\ndev0.acct={acct}\n"));
        let gpu = source.read().expect("read").gpus.remove(0);
        let pids: Vec<u32> = gpu.ended.iter().map(|a| a.pid).collect();
        assert_eq!(pids, want, "{acct} / {procs}");
        if want == [999] {
            assert_eq!(gpu.ended, vec![stats_999.clone()]);
        }
        assert_eq!(gpu.notes, Vec::<String>::new());
    }
}

#[test]
fn lost_gpu_leaves_the_other_device_intact() {
    let fake = FakeNvml::new(&two_gpus(1_000, 2_000));
    let mut source = fake.open();
    fake.script(&format!("{}dev0.lost=1\n", two_gpus(1_700, 2_300)));
    let reading = source.read().expect("read");
    assert_eq!(energies(&reading), vec![0, 300_000]);
    let lost = &reading.domains[0];
    assert!(
        lost.note.as_deref().unwrap_or("").contains("GPU lost"),
        "{lost:?}"
    );
    assert!(!reading.gpus[0].notes.is_empty());
    assert_eq!(reading.gpus[0].power_mw, None);
    assert_eq!(reading.domains[1].note, None);
    assert_eq!(reading.gpus[1].notes, Vec::<String>::new());
    assert_eq!(reading.gpus[1].power_mw, Some(100_000));
    // Back on the bus with the counter still counting: the lost interval is caught up.
    fake.script(&two_gpus(2_000, 2_300));
    let reading = source.read().expect("read");
    assert_eq!(energies(&reading), vec![1_000_000, 0]);
    assert_eq!(reading.domains[0].note, None);
}

#[test]
fn each_failed_call_degrades_only_its_field() {
    let fake = FakeNvml::new(
        "dev0.energy_mj=100\ndev0.power_mw=unknown\ndev0.util=notsupported\n\
         dev0.procs=lost\ndev0.samples=unknown\ndev0.accounting=noperm\n",
    );
    let mut source = fake.open();
    fake.script(
        "dev0.energy_mj=150\ndev0.power_mw=unknown\ndev0.util=notsupported\n\
         dev0.procs=lost\ndev0.samples=unknown\ndev0.accounting=noperm\n",
    );
    let mut reading = source.read().expect("read");
    assert_eq!(energies(&reading), vec![50_000]);
    assert_eq!(reading.domains[0].provenance, Provenance::NvmlEnergy);
    let gpu = reading.gpus.remove(0);
    assert_eq!((gpu.power_mw, gpu.gpu_util_pct), (None, None));
    assert!(gpu.processes.is_empty());
    let calls: Vec<&str> = gpu
        .notes
        .iter()
        .map(|n| n.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        calls,
        vec![
            "nvmlDeviceGetPowerUsage",
            "nvmlDeviceGetUtilizationRates",
            "nvmlDeviceGetComputeRunningProcesses_v3",
            "nvmlDeviceGetProcessUtilization",
            "nvmlDeviceGetAccountingMode",
        ]
    );
    assert!(
        gpu.notes.iter().all(|n| !n.contains("failed to load")),
        "{:?}",
        gpu.notes
    );
    assert!(source.describe()[0].ends_with("accounting unknown"));
}

#[test]
fn nvml_is_initialised_once_and_shut_down_on_drop() {
    let fake = FakeNvml::new(&two_gpus(0, 0));
    let mut source = fake.open();
    for _ in 0..3 {
        source.read().expect("read");
    }
    drop(source);
    let calls = fake.calls();
    let count = |name: &str| calls.iter().filter(|c| *c == name).count();
    assert_eq!(count("nvmlInit_v2"), 1);
    assert_eq!(count("nvmlShutdown"), 1);
    assert_eq!(calls.last().map(String::as_str), Some("nvmlShutdown"));
}

#[test]
fn bad_library_path_is_not_found_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such/libnvidia-ml.so.1");
    let message = not_found_message(NvmlSource::open(Some(&missing)));
    assert!(message.starts_with("no NVIDIA driver: "), "{message}");
    assert!(message.contains("no-such"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn driver_not_loaded_and_no_devices_are_not_found() {
    // (script) → message start
    let cases = [
        ("init=driver_not_loaded\n", "no NVIDIA driver: "),
        ("device_count=0\n", "no NVIDIA GPU: "),
    ];
    for (script, want) in cases {
        let fake = FakeNvml::new(script);
        let message = not_found_message(NvmlSource::open(Some(&fake.lib)));
        assert!(message.starts_with(want), "{script}: {message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

#[test]
fn default_library_on_this_machine_is_not_found() {
    // This machine has no NVIDIA driver; the default lookup must say so, not panic.
    let message = not_found_message(NvmlSource::open(None));
    assert!(
        message.starts_with("no NVIDIA driver: libnvidia-ml.so.1"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}
