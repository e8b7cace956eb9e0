//! Helpers for the `greentop run` tests: the workload program (job.c, compiled
//! once with cc), running `greentop run` under a guard that kills its process
//! group however the test ends, and reading its JSON report.
#![allow(dead_code)] // each test file uses its own subset
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn greentop() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop"))
}

/// The workload program, compiled once per test binary.
pub fn job() -> &'static Path {
    static JOB: OnceLock<PathBuf> = OnceLock::new();
    JOB.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_support/job.c");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join(format!("greentop-run-job-{}", std::process::id()));
        let cc = Command::new("cc")
            .args(["-O1", "-pthread", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("running cc (a C compiler is required for the run tests)");
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
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
/// that group when dropped.
pub struct Running {
    pub child: Child,
}

impl Running {
    /// Starts `greentop run OPTIONS -- COMMAND` with stdout and stderr piped.
    pub fn start(options: &[&str], command: &[String], stdin: Stdio) -> Running {
        let child = Command::new(greentop())
            .arg("run")
            .args(options)
            .arg("--")
            .args(command)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn greentop run");
        Running { child }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Waits (at most `limit`) and collects the output.
    pub fn finish(mut self, limit: Duration) -> Finished {
        let mut stdout = self.child.stdout.take().unwrap();
        let mut stderr = self.child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let err_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < limit,
                "greentop run took longer than {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let finished = Finished {
            status,
            stdout: out_reader.join().unwrap(),
            stderr: err_reader.join().unwrap(),
        };
        assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
        finished
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
