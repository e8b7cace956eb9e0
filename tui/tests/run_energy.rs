//! `greentop run` against the kernel's own accounting and a fixture RAPL: a job that
//! forks 100 short-lived children (half of them orphaned at once) while 4 threads
//! work. Its CPU time must equal the tree's getrusage, and its joules the idle
//! policy's formula at the fixture's known power. Needs root (eBPF ledger).
//!
//! The fixture's `energy_uj` files are FIFOs: a real-time thread computes each value
//! when greentop opens the file, from the time of that read, so the counter holds
//! exactly `power × elapsed` at the instants greentop reads it, however late any
//! thread is scheduled on a loaded machine.
mod run_support;

use std::ffi::CString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use run_support::*;

const PACKAGE_W: f64 = 40.0;
const DRAM_W: f64 = 4.0;

/// A counter file served through a FIFO at a constant power.
struct FifoCounter {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl FifoCounter {
    fn start(path: &Path, watts: f64, origin: Instant) -> FifoCounter {
        let _ = std::fs::remove_file(path);
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid C path; mkfifo creates the node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        // Readers' closes, so a value is never written into a reader's stream twice.
        // SAFETY: plain system calls with a valid path.
        let closes = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(closes >= 0);
        // SAFETY: as above.
        let watch =
            unsafe { libc::inotify_add_watch(closes, c_path.as_ptr(), libc::IN_CLOSE_NOWRITE) };
        assert!(watch >= 0);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let server = std::thread::spawn(move || {
            let param = libc::sched_param { sched_priority: 50 };
            // SAFETY: sets this thread's own policy with a valid sched_param.
            let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
            assert_eq!(rc, 0, "SCHED_FIFO for the fixture counter (needs root)");
            serve(&c_path, closes, watts, origin, &flag);
            // SAFETY: our descriptor.
            unsafe { libc::close(closes) };
        });
        FifoCounter {
            path: path.to_path_buf(),
            stop,
            server: Some(server),
        }
    }
}

/// Each time a reader opens the FIFO: write `power × elapsed` as of now, close, and
/// wait for that reader to close before serving the next one.
fn serve(path: &CString, closes: i32, watts: f64, origin: Instant, stop: &AtomicBool) {
    let mut event = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        // Blocks until a reader opens the file.
        // SAFETY: a valid C path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY) };
        if fd < 0 {
            return;
        }
        let uj = (watts * 1e6 * origin.elapsed().as_secs_f64()) as u64;
        let text = format!("{uj}\n");
        if !stop.load(Ordering::SeqCst) {
            // SAFETY: writes our buffer to our descriptor.
            unsafe { libc::write(fd, text.as_ptr().cast(), text.len()) };
        }
        // SAFETY: our descriptor; then a blocking read of inotify events.
        unsafe {
            libc::close(fd);
            libc::read(closes, event.as_mut_ptr().cast(), event.len());
        }
    }
}

impl Drop for FifoCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let Some(server) = self.server.take() else {
            return;
        };
        // Opening and closing the read side releases the server wherever it waits.
        while !server.is_finished() {
            let _ = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = server.join();
    }
}

/// A sysfs root with the one-socket powercap fixture (package and DRAM counters as
/// FIFOs) and this machine's real CPU topology and BTF.
fn fixture_sysfs() -> (tempfile::TempDir, Vec<FifoCounter>) {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures/powercap/one-socket/.");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(fixture)
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    );
    for (link, target) in [
        ("devices/system", "/sys/devices/system"),
        ("kernel", "/sys/kernel"),
    ] {
        let at = dir.path().join(link);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, at).unwrap();
    }
    let zone = dir
        .path()
        .join("devices/virtual/powercap/intel-rapl/intel-rapl:0");
    let origin = Instant::now();
    let counters = vec![
        FifoCounter::start(&zone.join("energy_uj"), PACKAGE_W, origin),
        FifoCounter::start(&zone.join("intel-rapl:0:2/energy_uj"), DRAM_W, origin),
    ];
    (dir, counters)
}

/// CPUs of the machine, all in one package (the formula below is per package).
fn cpus_in_one_package() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let packages: std::collections::BTreeSet<String> = (0..online)
        .filter_map(|cpu| {
            std::fs::read_to_string(format!(
                "/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"
            ))
            .ok()
        })
        .collect();
    assert!(packages.len() <= 1, "one package expected: {packages:?}");
    online as f64
}

#[test]
fn a_forking_threaded_job_matches_getrusage_and_the_formula() {
    let (sysfs, counters) = fixture_sysfs();
    let root = sysfs.path().to_str().unwrap();
    let options = [
        "--sysfs-root",
        root,
        "--source",
        "rapl",
        "--no-gpu",
        "--idle",
        "exclude",
        "--ledger",
        "ebpf",
        "--intensity",
        "100",
    ];
    let (out, report) = run_json(&options, &job_cmd(&["tree", "100", "20", "4", "400"]));
    drop(counters);
    assert!(out.status.success(), "{}", out.stderr);
    let run = only_run(&report);
    let oracle_s = printed(&out.stdout, "tree_cpu_ns") / 1e9;
    let cpu_s = f(&run["cpu_seconds"]);
    eprintln!(
        "CPU {cpu_s:.4} s vs getrusage {oracle_s:.4} s: {:+.2} %",
        (cpu_s / oracle_s - 1.0) * 100.0
    );
    assert!(
        rel(cpu_s, oracle_s) <= 0.02,
        "CPU {cpu_s} s, getrusage of the tree {oracle_s} s"
    );
    // greentop reaped the job and its orphans: its own rusage agrees too.
    assert!(
        rel(f(&run["rusage_cpu_seconds"]), oracle_s) <= 0.02,
        "{run}"
    );
    // The job, 100 children and 50 intermediates.
    assert!(run["processes"].as_u64().unwrap() >= 151, "{run}");
    // exclude: E = P × c / ncpu, whatever else the machine ran.
    let ncpu = cpus_in_one_package();
    for (field, watts) in [("cpu_joules", PACKAGE_W), ("dram_joules", DRAM_W)] {
        let got = f(&run[field]);
        let want = watts * oracle_s / ncpu;
        eprintln!(
            "{field} {got:.3} J vs formula {want:.3} J: {:+.2} %",
            (got / want - 1.0) * 100.0
        );
        assert!(rel(got, want) <= 0.02, "{field} {got} J, formula {want} J");
    }
    assert_eq!(run["provenance"]["cpu_source"], "rapl-powercap");
    assert_eq!(run["provenance"]["measured"], true);
    let joules = f(&run["joules"]);
    let gco2 = f(&run["gco2"]);
    assert!(rel(gco2, joules / 3.6e6 * 100.0) < 1e-9, "{run}");
    assert!(f(&run["machine_share"]) > 0.0 && f(&run["machine_share"]) <= 1.0);
}
