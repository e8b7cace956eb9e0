//! `greentop run` as a user meets it: exit status, signals, stdin/stdout, the
//! invoking user under sudo, orphans, repeats, units, comparisons, phases and the
//! CodeCarbon CSV. Runs the real binary (as root: the eBPF ledger).
mod common;
mod run_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use run_support::*;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

#[test]
fn the_exit_status_passes_through() {
    // (command, status, said in the summary)
    let cases = [
        (job_cmd(&["exit", "3"]), 3, "exit status 3"),
        (job_cmd(&["exit", "0"]), 0, "exit status 0"),
        (sh("kill -TERM $$"), 143, "killed by SIGTERM"),
        (
            vec!["/nonexistent/greentop-cmd".to_string()],
            127,
            "cannot run",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    for (command, code, said) in cases {
        let out = run(&["--json", json.to_str().unwrap()], &command);
        assert_eq!(out.status.code(), Some(code), "{command:?}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{command:?}: {}", out.stderr);
        // A report when the command ran, none (not even an empty file) when not.
        assert_eq!(json.exists(), code != 127, "{command:?}");
        let _ = std::fs::remove_file(&json);
    }
    let out = run(&[], &job_cmd(&["exit", "3"]));
    assert!(out.stderr.starts_with("greentop run: "), "{}", out.stderr);
    assert!(out.stderr.contains("gCO₂/kWh"), "{}", out.stderr);
}

/// A greentop killed with SIGKILL cannot remove its mark socket's directory; the next
/// `greentop run` does, since nobody holds that socket any more.
#[test]
fn a_sigkilled_greentops_mark_directory_goes_at_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("TMPDIR", tmp.path().to_str().unwrap())];
    let mark_dirs = || -> Vec<String> {
        let names = std::fs::read_dir(tmp.path()).unwrap().flatten();
        names
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("greentop-run-"))
            .collect()
    };
    let script = sh("echo ready; exec sleep 60");
    let mut running = Running::start_with(&[], &script, Stdio::null(), &env);
    running.wait_for_line("ready");
    assert_eq!(mark_dirs().len(), 1, "the run's socket directory");
    // SAFETY: signals the greentop we started.
    unsafe { libc::kill(running.pid(), libc::SIGKILL) };
    drop(running);
    assert_eq!(mark_dirs().len(), 1, "left behind by SIGKILL");
    let out =
        Running::start_with(&[], &sh("true"), Stdio::null(), &env).finish(Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(
        mark_dirs(),
        Vec::<String>::new(),
        "removed, and the new one too"
    );
}

#[test]
fn signals_to_greentop_reach_the_command_and_the_summary_still_prints() {
    let script = "trap 'echo got-usr1' USR1; trap 'echo got-int; exit 7' INT; \
                  echo ready; while :; do sleep 0.02; done";
    let mut running = Running::start(&[], &sh(script), Stdio::null());
    running.wait_for_line("ready");
    // SAFETY: signals the greentop we started.
    unsafe { libc::kill(running.pid(), libc::SIGUSR1) };
    running.wait_for_line("got-usr1");
    // SAFETY: as above.
    unsafe { libc::kill(running.pid(), libc::SIGINT) };
    let out = running.finish(Duration::from_secs(60));
    assert!(out.stdout.contains("got-int"), "{}", out.stdout);
    assert_eq!(out.status.code(), Some(7), "{}", out.stderr);
    assert!(out.stderr.contains("exit status 7"), "{}", out.stderr);
    // SIGTERM kills a command that does not catch it: 128 + 15, and a summary.
    let mut running = Running::start(&[], &sh("echo ready; exec sleep 60"), Stdio::null());
    running.wait_for_line("ready");
    // SAFETY: as above.
    unsafe { libc::kill(running.pid(), libc::SIGTERM) };
    let out = running.finish(Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(143), "{}", out.stderr);
    assert!(out.stderr.contains("killed by SIGTERM"), "{}", out.stderr);
    assert!(out.stderr.contains("energy"), "{}", out.stderr);
}

#[test]
fn stdin_and_stdout_pass_through_a_pipe() {
    let mut running = Running::start(&[], &["cat".to_string()], Stdio::piped());
    let input = "hello\nworld, in a pipe\n";
    let mut stdin = running.child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = running.finish(Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, input, "stdout is the command's alone");
    assert!(out.stderr.contains("greentop run: cat"), "{}", out.stderr);
}

#[test]
fn the_command_gets_no_descriptor_of_greentop() {
    // The shell lists its own descriptors (a glob, no pipeline whose pipes it would
    // hold at that moment).
    let list = sh("for f in /proc/$$/fd/*; do printf '%s ' \"${f##*/}\"; done");
    let direct = Command::new("sh")
        .args(&list[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let direct = String::from_utf8_lossy(&direct.stdout).to_string();
    let out = run(&[], &list);
    // Whatever the test harness passes down may differ; greentop adds nothing.
    let inherited: Vec<&str> = direct.split_whitespace().collect();
    let seen: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        ["0", "1", "2"].iter().all(|fd| seen.contains(fd)),
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|fd| inherited.contains(fd)),
        "{seen:?} beyond {inherited:?}"
    );
}

#[test]
fn under_sudo_the_command_runs_as_the_invoking_user() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(unsafe { libc::getuid() }, 0, "this test needs root");
    let dir = tempfile::tempdir().unwrap();
    let helper = write_mark_helper(dir.path());
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let script = format!(
        "id -u; id -g; id -G; echo \"$HOME $USER $LOGNAME\"; \
         /usr/bin/python3 -c 'import sys; sys.path.insert(0, \"{}\"); import greentop_mark; greentop_mark.mark(\"as nobody\")'",
        helper.parent().unwrap().display()
    );
    let env = [
        ("SUDO_UID", "65534"),
        ("SUDO_GID", "65534"),
        ("SUDO_USER", "nobody"),
    ];
    let report = dir.path().join("r.json");
    let options = ["--json", report.to_str().unwrap()];
    let out = Running::start_with(&options, &sh(&script), Stdio::null(), &env)
        .finish(Duration::from_secs(60));
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["65534", "65534", "65534", "/nonexistent nobody nobody"]
    );
    // The mark socket was the user's to write to.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let phases = &only_run(&report)["phases"];
    assert!(
        phases
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "as nobody"),
        "{phases}"
    );
}

#[test]
fn orphans_are_adopted_measured_and_reaped() {
    let (out, report) = run_json(&[], &job_cmd(&["orphan", "300"]));
    assert!(out.status.success(), "{}", out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("orphan "))
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (pid, orphan_s) = (
        words[1].parse::<u64>().unwrap(),
        words[3].parse::<f64>().unwrap() / 1e9,
    );
    let run = only_run(&report);
    let rows = run["top_processes"].as_array().unwrap();
    let row = rows
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("{run}"));
    assert!(
        f(&row["cpu_seconds"]) >= 0.98 * orphan_s,
        "{row} vs {orphan_s} s"
    );
    // greentop, its subreaper, reaped it: the kernel's rusage has its time.
    assert!(f(&run["rusage_cpu_seconds"]) >= 0.98 * orphan_s, "{run}");
}

#[test]
fn ctrl_c_on_the_terminal_reaches_the_command_once_and_the_summary_prints() {
    // The terminal sends SIGINT to the whole foreground group, greentop included:
    // greentop must not send it a second time, and must outlive it.
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("inner.sh");
    std::fs::write(
        &inner,
        "n=0; trap 'n=$((n+1)); echo got-int-$n' INT; echo ready\n\
         i=0; while [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; echo done-$n\n",
    )
    .unwrap();
    let outer = format!(
        "trap 'echo outer-int' INT; {} run -- sh {}; echo EXIT=$?; sleep 60",
        greentop().display(),
        inner.display()
    );
    let session = common::Session::start("gt-run-ctrl-c", 120, 40, &outer);
    let minute = Duration::from_secs(60);
    common::wait_for(&session.0, "the command to start", minute, |t| {
        t.contains("ready")
    });
    common::send(&session.0, &["C-c"]);
    let text = common::wait_for(&session.0, "greentop to exit", minute, |t| {
        t.contains("EXIT=")
    });
    assert!(
        text.contains("got-int-1") && text.contains("done-1"),
        "{text}"
    );
    assert!(
        !text.contains("got-int-2"),
        "SIGINT delivered twice:\n{text}"
    );
    assert!(text.contains("greentop run: sh "), "{text}");
    assert!(text.contains("EXIT=0"), "{text}");
}

#[test]
fn without_privileges_it_samples_proc_and_says_so() {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(greentop())
        .args(["run", "--"])
        .args(job_cmd(&["burn", "300"]))
        .current_dir("/")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Said up front, before the command's own output, and again in the summary.
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("lower fidelity /proc sampling"), "{stderr}");
    assert!(
        stderr.contains("note: lower fidelity /proc sampling"),
        "{stderr}"
    );
    assert!(stderr.contains("ledger procfs"), "{stderr}");
    assert!(stderr.contains("greentop run: "), "{stderr}");
}

#[test]
fn mistakes_in_what_was_asked_are_usage_errors() {
    // (options, command, said): exit status 2, nothing run.
    let cases: [(&[&str], &[&str], &str); 3] = [
        (
            &["--json", "/nonexistent/dir/r.json"],
            &["true"],
            "cannot write /nonexistent/dir/r.json",
        ),
        (
            &[],
            &["true", "---", "false"],
            "--- separates commands only with --compare",
        ),
        (
            &["--compare"],
            &["true"],
            "--compare needs two or more commands",
        ),
    ];
    for (options, command, said) in cases {
        let command: Vec<String> = command.iter().map(|w| w.to_string()).collect();
        let out = run(options, &command);
        assert_eq!(out.status.code(), Some(2), "{options:?}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{options:?}: {}", out.stderr);
        assert!(
            !out.stderr.contains("greentop run: "),
            "nothing ran: {}",
            out.stderr
        );
    }
}
