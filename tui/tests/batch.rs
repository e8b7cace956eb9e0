//! `greentop --batch` end to end: the JSON contract, the table, the unprivileged
//! /proc fallback and clear errors. Runs the real binary; the eBPF parts need root.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn greentop() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_greentop"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run greentop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "greentop panicked: {stderr}");
    out
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A copy of the binary that an unprivileged user can execute wherever the checkout is.
fn public_copy(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("greentop");
    std::fs::copy(greentop(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

fn as_nobody(binary: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(binary);
    cmd
}

#[test]
fn json_lines_follow_the_contract() {
    let child = Command::new(greentop())
        .args(["--batch", "-n", "2", "-d", "0.3", "--json", "--threads"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn greentop");
    let pid = u64::from(child.id());
    let out = child.wait_with_output().expect("wait greentop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "one object per interval");
    for line in &lines {
        for key in ["ts", "interval_s", "system", "processes"] {
            assert!(line.get(key).is_some(), "missing {key}");
        }
        let system = &line["system"];
        assert_eq!(
            system["ledger"], "ebpf-tp_btf",
            "as root on this kernel: {system}"
        );
        for key in [
            "cpu_seconds",
            "idle_seconds",
            "cpus",
            "packages",
            "ledger_health",
        ] {
            assert!(system.get(key).is_some(), "system.{key} missing");
        }
        let wall = line["interval_s"].as_f64().unwrap() * system["cpus"].as_f64().unwrap();
        let accounted =
            system["cpu_seconds"].as_f64().unwrap() + system["idle_seconds"].as_f64().unwrap();
        assert!(
            (accounted - wall).abs() / wall < 0.02,
            "busy+idle {accounted} vs {wall}"
        );
        let processes = line["processes"].as_array().unwrap();
        let me = processes
            .iter()
            .find(|p| p["pid"] == pid)
            .expect("greentop sees itself");
        assert_eq!(me["comm"], "greentop");
        for key in [
            "pid",
            "ppid",
            "comm",
            "user",
            "cgroup",
            "job",
            "cpu_seconds",
            "exited",
            "threads",
        ] {
            assert!(me.get(key).is_some(), "process.{key} missing: {me}");
        }
        assert_eq!(me["user"], "root");
        assert!(
            me["job"].as_str().is_some_and(|j| j.starts_with("tree:")),
            "{me}"
        );
        let threads = me["threads"].as_array().unwrap();
        let sum: f64 = threads
            .iter()
            .map(|t| t["cpu_seconds"].as_f64().unwrap())
            .sum();
        assert!((sum - me["cpu_seconds"].as_f64().unwrap()).abs() < 1e-9);
        assert!(
            threads
                .iter()
                .all(|t| t.get("tid").is_some() && t.get("comm").is_some())
        );
    }
}

#[test]
fn table_without_json() {
    let out = run(Command::new(greentop()).args(["--batch", "-n", "1", "-d", "0.2"]));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ledger ebpf-tp_btf"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["PID", "USER", "CPU%", "W", "J", "mgCO2", "JOB", "COMMAND"]),
        "{text}"
    );
}

#[test]
fn unprivileged_falls_back_to_proc_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let binary = public_copy(dir.path());
    let out = run(as_nobody(&binary).args(["--batch", "-n", "2", "-d", "0.3", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let system = &lines[1]["system"];
    assert_eq!(system["ledger"], "procfs");
    let note = system["ledger_note"].as_str().unwrap_or_default();
    assert!(note.contains("lower fidelity"), "{note}");
    assert!(
        note.contains("CAP_BPF"),
        "note says what is missing: {note}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lower fidelity"),
        "the user is told on stderr: {stderr}"
    );
}

#[test]
fn unprivileged_with_ebpf_required_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let binary = public_copy(dir.path());
    let out = run(as_nobody(&binary).args(["--batch", "-n", "1", "--ledger", "ebpf"]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("eBPF ledger unavailable") && stderr.contains("root"),
        "{stderr}"
    );
}

#[test]
fn bad_procfs_root_names_the_path() {
    let out = run(Command::new(greentop()).args([
        "--batch",
        "-n",
        "1",
        "-d",
        "0.1",
        "--ledger",
        "procfs",
        "--procfs-root",
        "/nonexistent/proc",
    ]));
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/proc"), "{stderr}");
}

#[test]
fn help_matches_golden() {
    for (args, name) in [
        (&["--help"][..], "help.txt"),
        (&["run", "--help"][..], "run-help.txt"),
    ] {
        let out = run(Command::new(greentop()).args(args));
        let help = String::from_utf8_lossy(&out.stdout);
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, help.as_bytes()).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(
            help, want,
            "greentop {args:?} changed: rerun with UPDATE_GOLDEN=1 and review the diff"
        );
    }
}
