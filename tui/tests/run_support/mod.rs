//! Helpers for the `greentop run` tests: the workload program (job.c, compiled
//! once with cc), running `greentop run` under a guard that kills its process
//! group however the test ends, and reading its JSON report.
#![allow(dead_code)] // each test file uses its own subset
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn greentop() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop"))
}

/// The workload program, compiled once for each version of its source and shared by
/// the test binaries (compiled aside, then renamed into place).
pub fn job() -> &'static Path {
    static JOB: OnceLock<PathBuf> = OnceLock::new();
    JOB.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_support/job.c");
        let text = std::fs::read(&src).unwrap();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&text, &mut hasher);
        let hash = std::hash::Hasher::finish(&hasher);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join(format!("greentop-run-job-{hash:016x}"));
        if out.exists() {
            return out;
        }
        let aside = dir.join(format!(
            "greentop-run-job-{hash:016x}.{}",
            std::process::id()
        ));
        let cc = Command::new("cc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&aside)
            .arg(&src)
            .output()
            .expect("running cc (a C compiler is required for the run tests)");
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
        std::fs::rename(&aside, &out).unwrap();
        out
    })
}

/// `job ARGS` as command words.
pub fn job_cmd(args: &[&str]) -> Vec<String> {
    std::iter::once(job().to_string_lossy().into_owned())
        .chain(args.iter().map(|a| a.to_string()))
        .collect()
}

/// A spawned `greentop run`, in its own process group, killed with everything in
/// that group when dropped. Its stdout and stderr are read by threads as they come.
pub struct Running {
    pub child: Child,
    stdout: Receiver<String>,
    stdout_seen: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Starts `greentop run OPTIONS -- COMMAND` with stdout and stderr piped.
    pub fn start(options: &[&str], command: &[String], stdin: Stdio) -> Running {
        Running::start_with(options, command, stdin, &[])
    }

    /// As `start`, with extra environment variables.
    pub fn start_with(
        options: &[&str],
        command: &[String],
        stdin: Stdio,
        env: &[(&str, &str)],
    ) -> Running {
        let mut child = Command::new(greentop())
            .arg("run")
            .args(options)
            .arg("--")
            .args(command)
            .envs(env.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn greentop run");
        let out = child.stdout.take().unwrap();
        let (lines, stdout) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Running {
            child,
            stdout,
            stdout_seen: String::new(),
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Reads stdout until a line equal to `want` (30 s at most).
    pub fn wait_for_line(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let found = line == want;
                    self.stdout_seen.push_str(&line);
                    self.stdout_seen.push('\n');
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("no line {want:?} on stdout; saw {:?}", self.stdout_seen),
            }
        }
    }

    /// Waits (at most `limit`) and collects the output.
    pub fn finish(mut self, limit: Duration) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < limit,
                "greentop run took longer than {limit:?}; where its processes wait:\n{}",
                group_waits(self.pid())
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // Whatever is still in the group (an orphan holding stdout) goes now.
        // SAFETY: kill with a negative pid signals the process group we created.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let mut stdout = std::mem::take(&mut self.stdout_seen);
        for line in self.stdout.iter() {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        assert!(!stderr.contains("panicked"), "{stderr}");
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: kill with a negative pid signals the process group we created.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `greentop run OPTIONS -- COMMAND` to the end (two minutes at most).
pub fn run(options: &[&str], command: &[String]) -> Finished {
    Running::start(options, command, Stdio::null()).finish(Duration::from_secs(120))
}

/// Runs with `--json` into a temporary file and returns the output and the report.
pub fn run_json(options: &[&str], command: &[String]) -> (Finished, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let mut all = vec!["--json", path.to_str().unwrap()];
    all.extend_from_slice(options);
    let out = run(&all, command);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr:\n{}", out.stderr));
    let report = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"));
    (out, report)
}

/// The only run of the only command.
pub fn only_run(report: &Value) -> &Value {
    let runs = report["commands"][0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{report}");
    &runs[0]
}

pub fn f(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The `NAME VALUE` line a job printed on stdout.
pub fn printed(stdout: &str, name: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` line in {stdout:?}"))
}

/// Relative difference.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

/// The Python helper of docs/run.md, as a module `greentop_mark` in `dir`.
pub fn write_mark_helper(dir: &Path) -> PathBuf {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/run.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let start = text
        .find("```python\n")
        .expect("a python block in docs/run.md")
        + 10;
    let len = text[start..].find("```").unwrap();
    let code = &text[start..start + len];
    assert!(
        code.lines().count() <= 5,
        "the helper is five lines: {code}"
    );
    let path = dir.join("greentop_mark.py");
    std::fs::write(&path, code).unwrap();
    path
}

/// What every process in process group `pgid` (greentop run and its job) waits on,
/// for a test that timed out.
fn group_waits(pgid: i32) -> String {
    let pids = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    pids.filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            // `pid (comm) state ppid pgrp …`: comm may hold spaces and parentheses.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            fields.split_whitespace().nth(2) == Some(&pgid.to_string())
        })
        .map(waits)
        .collect()
}

/// What the threads of `pid` wait on (wchan, kernel stack), and its children.
fn waits(pid: i32) -> String {
    let mut out = String::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    for task in tasks.flatten() {
        let path = task.path();
        let read = |name: &str| std::fs::read_to_string(path.join(name)).unwrap_or_default();
        out.push_str(&format!(
            "{} {} wchan={}\n{}",
            path.display(),
            read("comm").trim(),
            read("wchan"),
            read("stack")
        ));
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    out.push_str(&format!("children: {}\n", children.unwrap_or_default()));
    out
}
