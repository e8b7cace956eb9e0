//! Least privilege, end to end: as an unprivileged user (nobody) with only the
//! capabilities the shipped systemd unit grants, the agent opens its log, socket and
//! metrics port, loads its probes and opens its counters, then every one of its
//! threads drops every capability; it still attributes, reads RAPL through the fds
//! it opened, logs the kernel's rare events, serves metrics and the socket, and a
//! SIGHUP reopens its log.
mod fleet_support;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use agent::privilege::{CapSet, cap, status_sets};
use agent::sinks::log::{read_intervals, segments};
use agent::sinks::metrics::scrape::{samples, sum};
use agent::sinks::socket::stream::IntervalStream;
use fleet_support::*;

/// The fixture's counters as root-only regular files, as powercap has them since
/// CVE-2020-8694, and every directory open to others.
fn root_only_counters(sysfs: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(sysfs, 0o755);
    let mut counters = Vec::new();
    let mut dirs = vec![sysfs.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                mode(&entry.path(), 0o755);
                dirs.push(entry.path());
            } else if kind.is_file() && entry.file_name() == "energy_uj" {
                std::fs::write(entry.path(), format!("{:012}\n", 1_000_000)).unwrap();
                mode(&entry.path(), 0o400);
                counters.push(entry.path());
            } else if kind.is_file() {
                mode(&entry.path(), 0o444);
            }
        }
    }
    counters
}

/// Adds `uj` to a counter file in place (same length: no truncation to race with).
fn bump(path: &std::path::Path, uj: u64) {
    use std::os::unix::fs::FileExt;
    let now: u64 = std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(format!("{:012}\n", now + uj).as_bytes(), 0)
        .unwrap();
}

/// The capabilities the shipped systemd unit grants, as setpriv takes them
/// (`-all,+bpf,+perfmon,+dac_read_search`): the test runs what is deployed.
fn unit_capabilities() -> String {
    let unit = std::fs::read_to_string(repo_file("docs/deploy/greentop-agent.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("AmbientCapabilities= in the unit");
    let caps: Vec<String> = line
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    format!("-all,{}", caps.join(","))
}

#[test]
fn runs_as_an_unprivileged_user_with_only_the_capabilities_it_needs() {
    let sysfs = powercap_copy("one-socket");
    let counters = root_only_counters(sysfs.path());
    let config = empty_config(sysfs.path());
    let caps = unit_capabilities();
    let (_home, log, socket) = nobodys_dirs();
    let mut command = Command::new("setpriv");
    command.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
    command.args([
        "--inh-caps",
        &caps,
        "--ambient-caps",
        &caps,
        "--bounding-set",
        &caps,
    ]);
    command.arg("--").arg(agent_bin());
    command.args([
        "--ledger",
        "ebpf",
        "--source",
        "rapl",
        "--no-gpu",
        "--interval-s",
        "0.3",
    ]);
    command
        .args(["--metrics-addr", "127.0.0.1:0", "--config"])
        .arg(&config);
    command
        .arg("--log-dir")
        .arg(&log)
        .arg("--socket")
        .arg(&socket);
    command.arg("--json");
    command.arg("--sysfs-root").arg(sysfs.path());
    // Map pressure, so the kernel side has something rare to log.
    command.args([
        "--ledger-table-slots",
        "2",
        "--ledger-overflow-entries",
        "4",
    ]);
    command
        .env("RUST_LOG", "agent=info,greentop_ebpf=warn")
        .env("HOME", "/nonexistent");
    let mut agent = Agent::start(command);
    let said = agent.wait_stderr("capabilities: kept");
    assert!(
        said.contains("kept none; dropped 3 (cap_dac_read_search,cap_perfmon,cap_bpf)"),
        "{said}"
    );
    every_thread_dropped(&agent);
    // Loads and attributes: the eBPF ledger, processes with CPU time.
    let first = agent.interval();
    assert!(
        first.system.ledger.starts_with("ebpf"),
        "{}",
        first.system.ledger
    );
    // Reads RAPL after the drop: the counters move only now, and are root-only.
    let mut read_after_drop = 0.0;
    for _ in 0..40 {
        counters.iter().for_each(|c| bump(c, 300_000));
        let interval = agent.interval();
        assert!(interval.processes.iter().any(|p| p.cpu_seconds > 0.0));
        let denied = interval
            .system
            .energy_notes
            .iter()
            .find(|n| n.contains("ermission"));
        assert!(denied.is_none(), "{denied:?}");
        read_after_drop += domain_joules(&interval, "package", "rapl-powercap");
        if read_after_drop > 0.0 {
            break;
        }
    }
    assert!(
        read_after_drop > 0.0,
        "RAPL read through the fds opened before the drop"
    );
    // Logs: the overflow map's rare event, from the kernel, as this user.
    agent.wait_stderr("ledger overflow map full");
    // Serves metrics, and the socket.
    let (head, body) = agent.get("/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let all = samples(&body).unwrap();
    assert!(sum(&all, "greentop_agent_intervals_total", &[]) >= 1.0);
    let stream = UnixStream::connect(&socket).expect("connect to the socket");
    let mut reader = IntervalStream::open(stream).expect("the socket's header");
    assert!(reader.next_interval().unwrap().is_some(), "an interval");
    // SIGHUP reopens the log with no capability left: a new segment, written to.
    let before = logged(&log);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(agent.pid as i32, libc::SIGHUP) }, 0);
    agent.wait_stderr("SIGHUP: configuration read again");
    let deadline = Instant::now() + PATIENCE;
    while segments::list(&log).unwrap().len() < 2 || logged(&log) < before + 2 {
        assert!(
            Instant::now() < deadline,
            "no new segment written after SIGHUP"
        );
        agent.interval();
    }
    let said = agent.stderr_lines().join("\n");
    assert!(!said.contains("log: "), "the log failed:\n{said}");
    every_thread_dropped(&agent);
}

/// Every thread of the agent — the tick's, the runtime's, the main one — holds no
/// capability, may not gain one, and runs as nobody.
fn every_thread_dropped(agent: &Agent) {
    let started_with = CapSet::of(&[cap::BPF, cap::PERFMON, cap::DAC_READ_SEARCH]);
    let tasks = std::fs::read_dir(format!("/proc/{}/task", agent.pid)).unwrap();
    let mut threads = 0;
    for task in tasks.map(Result::unwrap) {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // a blocking-pool thread that just ended
        };
        threads += 1;
        assert!(
            status.contains("Uid:\t65534\t65534\t65534\t65534"),
            "{status}"
        );
        assert!(status.contains("NoNewPrivs:\t1"), "{status}");
        for (set, value) in status_sets(&status) {
            let want = if set == "CapBnd" {
                started_with
            } else {
                CapSet::default()
            };
            assert_eq!(value, want, "{set} is {value}:\n{status}");
        }
    }
    assert!(
        threads >= 3,
        "the main, tick and runtime threads: {threads}"
    );
}

/// Intervals in the log now.
fn logged(log: &Path) -> usize {
    let mut n = 0;
    read_intervals(&[log.to_path_buf()], &mut |_| n += 1).unwrap();
    n
}

/// A directory nobody (65534) owns, with its log directory and socket path in it.
fn nobodys_dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (log, run) = (home.path().join("log"), home.path().join("run"));
    for dir in [&log, &run] {
        std::fs::create_dir(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    }
    (home, log, run.join("agent.sock"))
}
