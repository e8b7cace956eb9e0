//! A fixture RAPL at a known power for the `greentop run` tests: the one-socket
//! powercap tree with this machine's CPU topology and BTF, whose `energy_uj` files
//! are FIFOs. A real-time thread computes each value when a reader opens the file,
//! from the time of that read, so the counter holds exactly `power × elapsed` at the
//! instants it is read, however late any thread is scheduled on a loaded machine.
use std::ffi::CString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub const PACKAGE_W: f64 = 40.0;
pub const DRAM_W: f64 = 4.0;

/// A counter file served through a FIFO at a constant power.
pub struct FifoCounter {
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
pub fn fixture_sysfs() -> (tempfile::TempDir, Vec<FifoCounter>) {
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
pub fn cpus_in_one_package() -> f64 {
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
