//! Helpers for the tests that run the built greentop-agent: the agent as a child
//! that is killed when the test ends, its stderr and stdout as line channels, a
//! tmpfs mounted by the test, CPU load, and waiting for what the agent says.
#![allow(dead_code)] // each test file uses its own subset
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Generous: everything must hold on a machine saturated by other work.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// The options every test agent runs with: /proc sampling and the estimate, so
/// nothing waits on probes or counters, and a short interval.
pub const QUICK: &[&str] = &[
    "--ledger",
    "procfs",
    "--source",
    "estimate",
    "--no-gpu",
    "--probe-ms",
    "20",
];

/// A running agent; killed and reaped when dropped, pass or fail.
pub struct Agent {
    pub child: Child,
    pub stderr: Lines,
    pub stdout: Option<Lines>,
}

impl Agent {
    /// `greentop-agent QUICK ARGS`, with `RUST_LOG=log_filter` when given.
    pub fn start(args: &[&str], log_filter: Option<&str>) -> Agent {
        let mut command = Command::new(env!("CARGO_BIN_EXE_greentop-agent"));
        command.args(QUICK).args(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        match log_filter {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command.spawn().expect("spawn greentop-agent");
        let stderr = Lines::of(child.stderr.take().unwrap());
        let stdout = Some(Lines::of(child.stdout.take().unwrap()));
        Agent {
            child,
            stderr,
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// Waits (at most `PATIENCE`) for the agent to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the agent did not exit; it said:\n{}",
                self.stderr.seen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of a child's output, read on a thread; every line is kept for reports.
pub struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    pub fn of(stream: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line, waiting at most `PATIENCE`; `None` at the end.
    pub fn next(&mut self) -> Option<String> {
        let line = self.rx.recv_timeout(PATIENCE).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Reads until a line satisfies `ok` and returns it; fails with what was seen.
    pub fn until(&mut self, what: &str, mut ok: impl FnMut(&str) -> bool) -> String {
        loop {
            match self.next() {
                Some(line) if ok(&line) => return line,
                Some(_) => {}
                None => panic!("no line with {what}; seen:\n{}", self.seen()),
            }
        }
    }

    /// Every line read so far.
    pub fn seen(&self) -> String {
        self.seen.join("\n")
    }
}

/// A tmpfs mounted on a directory; lazily unmounted on drop, pass or fail.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() };
        assert_eq!(
            uid, 0,
            "this test mounts a tmpfs and needs root (uid {uid}); run it as cargo xtask test does"
        );
        let c = |s: &[u8]| CString::new(s).unwrap();
        let (src, target, fstype) = (c(b"tmpfs"), c(at.as_os_str().as_bytes()), c(b"tmpfs"));
        let data = c(format!("size={size},mode=0755").as_bytes());
        // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount tmpfs on {}: {}",
            at.display(),
            std::io::Error::last_os_error()
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A shell busy loop; killed and reaped when dropped.
pub struct Busy(pub Child);

impl Busy {
    pub fn start() -> Busy {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn a busy loop");
        Busy(child)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `ok` every 20 ms for at most `PATIENCE`.
pub fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
