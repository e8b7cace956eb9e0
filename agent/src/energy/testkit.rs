//! Fixture energy counters for tests, whose values are computed at the instant they
//! are read, so no assertion depends on a helper thread running on time:
//! - [`FifoCounter`]: a powercap `energy_uj` replaced by a FIFO. Each read blocks
//!   until the server answers with `script(read index, seconds since start)`, the
//!   seconds being when the reader opened the file (the server's own wait for a CPU
//!   taken off, from its schedstat), and the server keeps every value it served, in
//!   order: the oracle is exactly what was read.
//! - [`ScriptedPerf`]: a perf-reader seam whose counters call a closure per read.
//!
//! Compiled for this crate's tests and, with feature `testkit`, for other crates'.
use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::perf_power::{CounterOpener, RawCounter};

/// µJ to answer the `n`-th read (from 0) with, at `seconds` since the counter started.
pub type Script = Box<dyn FnMut(usize, f64) -> u64 + Send>;

/// A counter at a constant power: `start_uj + watts × seconds`.
pub fn at_watts(start_uj: u64, watts: f64) -> Script {
    Box::new(move |_, seconds| start_uj + (watts * 1e6 * seconds) as u64)
}

/// An `energy_uj` file answered, read by read, by a script. Drop it before the
/// directory that holds it.
pub struct FifoCounter {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
    served: Arc<Mutex<Vec<u64>>>,
    /// When each read began (the reader's open), seconds since `origin`.
    opened: Arc<Mutex<Vec<f64>>>,
    /// Time zero of the script (a follower shares its leader's).
    origin: Instant,
}

impl FifoCounter {
    /// Replaces the file at `path` with a FIFO served by `script`, each value computed
    /// for the instant its reader opened the file.
    pub fn serve(path: &Path, script: Script) -> FifoCounter {
        FifoCounter::start(path, script, Instant::now(), None)
    }

    /// Like `serve`, but the `n`-th read is valued at the instant of the `leader`'s
    /// `n`-th read: counters read one after the other in one pass (as greentop reads
    /// a package zone and then its DRAM zone) are latched together, as hardware
    /// counters read microseconds apart would be.
    pub fn serve_with(leader: &FifoCounter, path: &Path, script: Script) -> FifoCounter {
        FifoCounter::start(path, script, leader.origin, Some(leader.opened.clone()))
    }

    fn start(
        path: &Path,
        mut script: Script,
        origin: Instant,
        leader: Option<Arc<Mutex<Vec<f64>>>>,
    ) -> FifoCounter {
        let _ = std::fs::remove_file(path);
        mkfifo(path);
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let opened = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let (path, stop) = (path.to_path_buf(), stop.clone());
            let (served, opened) = (served.clone(), opened.clone());
            std::thread::spawn(move || {
                let next = path.with_extension("next");
                loop {
                    let queued_before = run_delay_ns();
                    // Blocks until a reader opens the FIFO now at `path`.
                    let Ok(mut fifo) = OpenOptions::new().write(true).open(&path) else {
                        break;
                    };
                    // The reader opened when this thread became runnable: take off the
                    // time it then waited for a CPU, so the value does not depend on
                    // when this thread got to run.
                    let queued_s = run_delay_ns().saturating_sub(queued_before) as f64 / 1e9;
                    let at_s = (origin.elapsed().as_secs_f64() - queued_s).max(0.0);
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    // The next read opens a fresh FIFO: this one is never reopened, so
                    // a reader still closing it cannot take the next value.
                    mkfifo(&next);
                    std::fs::rename(&next, &path).expect("rename the next FIFO into place"); // ok: test fixture
                    let mut opened = opened.lock().expect("read times"); // ok: test fixture
                    let n = opened.len();
                    let latched = leader
                        .as_ref()
                        .and_then(|l| l.lock().expect("leader read times").get(n).copied()); // ok: test fixture
                    let at_s = latched.unwrap_or(at_s);
                    opened.push(at_s);
                    drop(opened);
                    let value = script(n, at_s);
                    served.lock().expect("served values").push(value); // ok: test fixture
                    let _ = writeln!(fifo, "{value}");
                }
            })
        };
        FifoCounter {
            path: path.to_path_buf(),
            stop,
            server: Some(server),
            served,
            opened,
            origin,
        }
    }

    /// Every value served, in order.
    pub fn served(&self) -> Vec<u64> {
        self.served.lock().expect("served values").clone() // ok: test fixture
    }
}

impl Drop for FifoCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let Some(server) = self.server.take() else {
            return;
        };
        // A reader that does not wait releases the server from its open. If the FIFO
        // is gone (its directory removed first), the server is left blocked.
        let start = Instant::now();
        while !server.is_finished() {
            let reader = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path);
            if reader.is_err() && start.elapsed() > Duration::from_secs(2) {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = server.join();
    }
}

/// Nanoseconds this thread has spent runnable but waiting for a CPU
/// (`/proc/thread-self/schedstat`, second field); 0 where the kernel does not say.
fn run_delay_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn mkfifo(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).expect("path without NUL"); // ok: test fixture
    // SAFETY: `c_path` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Copies a fixture tree (symlinks as symlinks) into `dst`.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create fixture dir"); // ok: test fixture
    let entries = std::fs::read_dir(src).expect("read fixture dir"); // ok: test fixture
    for entry in entries.flatten() {
        let to = dst.join(entry.file_name());
        let file_type = entry.file_type().expect("fixture entry type"); // ok: test fixture
        if file_type.is_symlink() {
            let target = std::fs::read_link(entry.path()).expect("fixture symlink"); // ok: test fixture
            std::os::unix::fs::symlink(target, &to).expect("copy fixture symlink"); // ok: test fixture
        } else if file_type.is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy fixture file"); // ok: test fixture
        }
    }
}

/// A raw perf count per read: `script(read index, seconds since opened)`; an `Err`
/// is a failed read.
pub type CountScript = Box<dyn FnMut(usize, f64) -> std::io::Result<u64> + Send>;

/// One scripted counter.
pub struct ScriptedCounter {
    script: CountScript,
    reads: usize,
    start: Instant,
}

impl std::fmt::Debug for ScriptedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScriptedCounter after {} reads", self.reads)
    }
}

impl RawCounter for ScriptedCounter {
    fn read_count(&mut self) -> std::io::Result<u64> {
        let count = (self.script)(self.reads, self.start.elapsed().as_secs_f64());
        self.reads += 1;
        count
    }
}

/// A perf opener handing out scripted counters: `make(config, cpu)` gives each
/// counter's script, or None for an event this "kernel" does not have (ENOENT).
pub struct ScriptedPerf<F>(pub F);

impl<F> CounterOpener for ScriptedPerf<F>
where
    F: Fn(u64, u32) -> Option<CountScript>,
{
    fn open(&self, _pmu_type: u32, config: u64, cpu: u32) -> std::io::Result<Box<dyn RawCounter>> {
        let script =
            (self.0)(config, cpu).ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))?;
        Ok(Box::new(ScriptedCounter {
            script,
            reads: 0,
            start: Instant::now(),
        }))
    }
}

/// Writes a perf `power` PMU description under `<root>/bus/event_source/devices/power`
/// with `events` as (name, config) and the usual 2^-32 J scale.
pub fn perf_pmu_tree(root: &Path, events: &[(&str, u64)]) {
    let dir = root.join("bus/event_source/devices/power");
    std::fs::create_dir_all(dir.join("events")).expect("create PMU dir"); // ok: test fixture
    std::fs::write(dir.join("type"), "14\n").expect("PMU type"); // ok: test fixture
    std::fs::write(dir.join("cpumask"), "0\n").expect("PMU cpumask"); // ok: test fixture
    for (name, config) in events {
        let events = dir.join("events");
        std::fs::write(events.join(name), format!("event={config:#04x}\n")).expect("event"); // ok: test fixture
        std::fs::write(
            events.join(format!("{name}.scale")),
            "2.3283064365386962890625e-10\n",
        )
        .expect("scale"); // ok: test fixture
        std::fs::write(events.join(format!("{name}.unit")), "Joules\n").expect("unit"); // ok: test fixture
    }
}

/// Raw perf counts (2^-32 J units) for `joules`.
pub fn perf_counts(joules: f64) -> u64 {
    (joules * (1u64 << 32) as f64) as u64
}
