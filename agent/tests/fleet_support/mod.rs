//! Helpers for the fleet tests: the built `greentop-agent` run as a child (killed
//! and reaped when dropped), its JSON intervals and stderr lines read as they come,
//! `/metrics` fetched over plain HTTP/1.1, and fixture powercap trees.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::energy::testkit::copy_tree;
use agent::model::Interval;

/// Generous: the machine may be saturated by other work.
pub const PATIENCE: Duration = Duration::from_secs(90);

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop-agent"))
}

pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// A running agent.
pub struct Agent {
    child: Child,
    pub pid: u32,
    intervals: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Where it serves `/metrics`, from its start-up line.
    pub metrics: Option<SocketAddr>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Starts `command` (the agent, or a wrapper that execs it) and waits until it
    /// has dropped its capabilities (its last start-up step) and, with metrics, said
    /// where they are.
    pub fn start(mut command: Command) -> Agent {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn greentop-agent");
        let pid = child.id();
        let (tx, intervals) = channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = BufReader::new(child.stderr.take().expect("piped stderr"));
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut agent = Agent {
            child,
            pid,
            intervals,
            stderr,
            metrics: None,
        };
        agent.wait_stderr("capabilities: kept");
        let addr = agent
            .stderr_lines()
            .iter()
            .find_map(|l| l.split("metrics on http://").nth(1).map(str::to_string));
        agent.metrics = addr.map(|a| {
            a.trim_end_matches("/metrics")
                .parse()
                .unwrap_or_else(|e| panic!("metrics address {a}: {e}"))
        });
        agent
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The first stderr line containing `needle`, waiting for it; fails the test
    /// with everything the agent said if it exits or takes too long.
    pub fn wait_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.stderr_lines().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "greentop-agent exited ({status}) before saying {needle:?}:\n{}",
                    self.stderr_lines().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} from greentop-agent:\n{}",
                self.stderr_lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next interval it printed.
    pub fn interval(&self) -> Interval {
        match self.intervals.recv_timeout(PATIENCE) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                "no interval from greentop-agent:\n{}",
                self.stderr_lines().join("\n")
            ),
        }
    }

    /// `/proc/PID/status` of the agent.
    pub fn status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("agent status")
    }

    /// GET `path` from the metrics server: (status line and headers, body).
    pub fn get(&self, path: &str) -> (String, String) {
        let addr = self.metrics.expect("the agent serves metrics");
        http_get(addr, path)
    }
}

/// One HTTP/1.1 GET on a fresh connection.
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    (head.to_string(), body.to_string())
}

/// A copy of `agent/tests/fixtures/powercap/<name>` whose `kernel` is the real
/// `/sys/kernel` (for BTF), so the eBPF ledger loads as on the real tree.
pub fn powercap_copy(name: &str) -> tempfile::TempDir {
    let sysfs = tempfile::tempdir().unwrap();
    copy_tree(
        &repo_file("agent/tests/fixtures/powercap").join(name),
        sysfs.path(),
    );
    std::os::unix::fs::symlink("/sys/kernel", sysfs.path().join("kernel")).unwrap();
    sysfs
}

/// The `energy_uj` of a zone reached through `class/powercap/<zone>`.
pub fn energy_file(sysfs: &Path, zone: &str) -> PathBuf {
    let dir = std::fs::canonicalize(sysfs.join("class/powercap").join(zone)).unwrap();
    dir.join("energy_uj")
}

/// An empty config file, so no machine-wide one is read.
pub fn empty_config(dir: &Path) -> PathBuf {
    let path = dir.join("greentop.toml");
    std::fs::write(&path, "").unwrap();
    path
}

/// Joules of `kind` domains from `source` in an interval.
pub fn domain_joules(interval: &Interval, kind: &str, source: &str) -> f64 {
    interval
        .system
        .energy
        .iter()
        .filter(|d| d.kind == kind && d.source == source)
        .map(|d| d.joules)
        .sum()
}
