//! `greentop run` without root, measured by a greentop-agent over its socket: the
//! agent runs as root (eBPF ledger, a fixture RAPL at a known power) with its socket
//! in the `nogroup` group, and `greentop run` runs as nobody in that group, with no
//! capabilities. The run's CPU time must equal the kernel's account of the job, its
//! joules the idle policy's formula; with the config's `[agent] socket` the agent is
//! chosen without `--connect`; without an agent it samples /proc as before; an agent
//! that dies or stalls mid-run is noted and the command's exit status kept.
//! Needs root, setpriv, cc and greentop-agent built beside greentop.
mod run_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use run_support::rapl::{DRAM_W, PACKAGE_W, cpus_in_one_package, fixture_sysfs};
use run_support::*;
use serde_json::Value;

const NOBODY: u32 = 65534;
/// Longest a `greentop run` of these tests may take (a loaded machine).
const LIMIT: Duration = Duration::from_secs(120);

/// An agent, killed and reaped when dropped, pass or fail.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    /// greentop-agent as root every 0.5 s with the socket in `nogroup`; `sysfs` is a
    /// fixture RAPL's root (else the estimate). Returns once the socket answers.
    fn start(sock: &Path, sysfs: Option<&str>) -> Agent {
        let binary = Path::new(env!("CARGO_BIN_EXE_greentop")).with_file_name("greentop-agent");
        assert!(
            binary.exists(),
            "{} is not built: run `cargo build` (cargo xtask test builds it)",
            binary.display()
        );
        let mut command = Command::new(binary);
        command.args(["--ledger", "ebpf", "--no-gpu", "--idle", "exclude"]);
        command.args(["--intensity", "100", "--interval", "0.5"]);
        match sysfs {
            Some(root) => command.args(["--sysfs-root", root, "--source", "rapl"]),
            None => command.args(["--source", "estimate"]),
        };
        command
            .args(["--socket-group", "nogroup", "--socket"])
            .arg(sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let agent = Agent(command.spawn().expect("spawn greentop-agent"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "the agent's socket never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.0.id()).unwrap();
        // SAFETY: signals our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
}

/// A directory everyone may read and write (for nobody's report and config).
fn open_dir() -> tempfile::TempDir {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "setpriv needs root");
    let dir = tempfile::tempdir().unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o777);
    std::fs::set_permissions(dir.path(), mode).unwrap();
    dir
}

/// `greentop run OPTIONS -- COMMAND` as nobody in the socket's group, without
/// capabilities, in `/`.
fn run_as_nobody(options: &[&str], command: &[String], env: &[(&str, &Path)]) -> Running {
    let gid = agent::sinks::socket::group_id("nogroup").expect("the nogroup group");
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(greentop())
        .arg("run")
        .args(options)
        .arg("--")
        .args(command)
        .envs(env.iter().map(|&(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null());
    Running::spawn(setpriv)
}

/// The report nobody wrote to `path`.
fn report(path: &Path, out: &Finished) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr:\n{}", out.stderr));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

fn notes(run: &Value) -> String {
    run["notes"].to_string()
}

#[test]
fn the_agent_measures_a_job_of_an_unprivileged_user_like_getrusage_and_the_formula() {
    let (sysfs, counters) = fixture_sysfs();
    let dir = open_dir();
    let sock = dir.path().join("agent.sock");
    let agent = Agent::start(&sock, Some(sysfs.path().to_str().unwrap()));
    let json = dir.path().join("r.json");
    let options = [
        "--connect",
        sock.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ];
    // 20 children of 20 ms (half orphaned), 2 threads of 200 ms.
    let out =
        run_as_nobody(&options, &job_cmd(&["tree", "20", "20", "2", "200"]), &[]).finish(LIMIT);
    drop(agent);
    drop(counters);
    assert!(out.status.success(), "{}", out.stderr);
    let report = report(&json, &out);
    let run = only_run(&report);
    assert_eq!(run["feed"], format!("agent:{}", sock.display()), "{run}");
    assert!(out.stderr.contains("via greentop-agent "), "{}", out.stderr);
    // The agent's interval as measured (its ticks jitter on a loaded machine).
    let said: f64 = notes(run)
        .split("greentop-agent's ")
        .nth(1)
        .and_then(|rest| rest.split(" s intervals").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no interval length in the notes: {run}"));
    assert!((0.4..=0.6).contains(&said), "{run}");
    assert!(
        run["provenance"]["ledger"]
            .as_str()
            .unwrap()
            .starts_with("ebpf")
    );
    let oracle_s = printed(&out.stdout, "tree_cpu_ns") / 1e9;
    let cpu_s = f(&run["cpu_seconds"]);
    let rusage_s = f(&run["rusage_cpu_seconds"]);
    eprintln!(
        "agent feed: CPU {cpu_s:.4} s vs getrusage {oracle_s:.4} s: {:+.2} %; greentop's rusage {rusage_s:.4} s",
        (cpu_s / oracle_s - 1.0) * 100.0
    );
    assert!(rel(cpu_s, oracle_s) <= 0.02, "{run}");
    assert!(rel(rusage_s, oracle_s) <= 0.02, "{run}");
    // exclude: E = P × c / ncpu in every interval, whatever else the machine ran.
    let ncpu = cpus_in_one_package();
    for (field, watts) in [("cpu_joules", PACKAGE_W), ("dram_joules", DRAM_W)] {
        let got = f(&run[field]);
        let want = watts * oracle_s / ncpu;
        eprintln!(
            "agent feed: {field} {got:.3} J vs formula {want:.3} J: {:+.2} %",
            (got / want - 1.0) * 100.0
        );
        assert!(got > 0.0 && rel(got, want) <= 0.02, "{field}: {run}");
    }
    assert!(rel(f(&run["gco2"]), f(&run["joules"]) / 3.6e6 * 100.0) < 1e-9);
}

#[test]
fn without_privileges_the_configured_agent_is_chosen_and_without_it_proc_is_sampled() {
    let dir = open_dir();
    let sock = dir.path().join("agent.sock");
    // nobody's default config file: $XDG_CONFIG_HOME/greentop/config.toml.
    let config_home = dir.path().join("config");
    std::fs::create_dir_all(config_home.join("greentop")).unwrap();
    let config = format!("[agent]\nsocket = {:?}\n", sock.to_str().unwrap());
    std::fs::write(config_home.join("greentop/config.toml"), config).unwrap();
    let env = [("XDG_CONFIG_HOME", config_home.as_path())];
    let json = dir.path().join("r.json");
    let options = ["--json", json.to_str().unwrap()];

    // Phases, with the docs' helper: the marks are answered at once.
    let helper = write_mark_helper(dir.path());
    let script = format!(
        "import sys, time\n\
         sys.path.insert(0, {dir:?})\n\
         from greentop_mark import mark\n\
         def burn(s):\n    t = time.process_time()\n    while time.process_time() - t < s: pass\n\
         mark('load'); burn(0.2); mark('train'); burn(0.3)\n",
        dir = helper.parent().unwrap().to_str().unwrap()
    );
    let python = ["python3".to_string(), "-c".to_string(), script];
    let agent = Agent::start(&sock, None);
    let out = run_as_nobody(&options, &python, &env).finish(LIMIT);
    drop(agent);
    assert!(out.status.success(), "{}", out.stderr);
    let run = only_run(&report(&json, &out)).clone();
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(&format!(
            "measuring with greentop-agent at {}",
            sock.display()
        )),
        "{}",
        out.stderr
    );
    assert_eq!(run["feed"], format!("agent:{}", sock.display()), "{run}");
    assert!(notes(&run).contains("([agent] socket)"), "{run}");
    let (cpu_s, rusage_s) = (f(&run["cpu_seconds"]), f(&run["rusage_cpu_seconds"]));
    eprintln!("auto agent feed: CPU {cpu_s:.4} s vs rusage {rusage_s:.4} s");
    assert!(rel(cpu_s, rusage_s) <= 0.02, "{run}");
    assert!(f(&run["joules"]) > 0.0, "{run}");
    let phases = run["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.ends_with(&["load", "train"]), "{run}");
    let phase_cpu: f64 = phases.iter().map(|p| f(&p["cpu_seconds"])).sum();
    assert!(rel(phase_cpu, cpu_s) < 1e-9, "{run}");
    assert!(notes(&run).contains("a phase starts at the end of the agent's interval"));

    // The agent gone (its socket left behind by SIGKILL): /proc, as before.
    let out = run_as_nobody(&options, &job_cmd(&["burn", "300"]), &env).finish(LIMIT);
    assert!(out.status.success(), "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("lower fidelity /proc sampling"),
        "{}",
        out.stderr
    );
    let run = only_run(&report(&json, &out)).clone();
    assert_eq!(run["feed"], "local", "{run}");
    assert_eq!(run["provenance"]["ledger"], "procfs", "{run}");
    assert!(
        notes(&run).contains("the greentop-agent socket named in the config was not used"),
        "{run}"
    );
}

#[test]
fn an_agent_that_dies_or_stalls_mid_run_is_noted_and_the_exit_status_kept() {
    let dir = open_dir();
    let sock = dir.path().join("agent.sock");
    let go = dir.path().join("go");
    // Waits for the test's go, so the agent is surely gone before the exit.
    let script = format!(
        "echo ready; while [ ! -e {} ]; do sleep 0.05; done; exit 7",
        go.display()
    );
    let command: Vec<String> = ["sh", "-c", &script].map(String::from).to_vec();
    let options = ["--connect", sock.to_str().unwrap()];
    let cases: [(i32, &str); 2] = [
        (libc::SIGKILL, "went away"),
        (
            libc::SIGSTOP,
            "sent no interval ending after the command exited",
        ),
    ];
    for (signal, said) in cases {
        let _ = std::fs::remove_file(&go);
        let agent = Agent::start(&sock, None);
        let mut running = run_as_nobody(&options, &command, &[]);
        running.wait_for_line("ready");
        // An interval of the run, then the signal.
        std::thread::sleep(Duration::from_millis(700));
        agent.signal(signal);
        std::fs::write(&go, "").unwrap();
        let out = running.finish(LIMIT);
        drop(agent);
        assert_eq!(out.status.code(), Some(7), "{}", out.stderr);
        assert!(out.stderr.contains(said), "{}", out.stderr);
        assert!(out.stderr.contains("greentop run: sh "), "{}", out.stderr);
        let _ = std::fs::remove_file(&sock);
    }
}

#[test]
fn connect_mistakes_are_usage_errors() {
    let dir = open_dir();
    let missing = dir.path().join("none.sock");
    let cases: [(&[&str], &str); 2] = [
        (
            &["--connect", missing.to_str().unwrap(), "--tick", "0.2"],
            "--tick 0.2 with --connect",
        ),
        (
            &["--connect", missing.to_str().unwrap()],
            "is greentop-agent running with --socket here?",
        ),
    ];
    for (options, said) in cases {
        let out = run_as_nobody(options, &["true".to_string()], &[]).finish(LIMIT);
        assert_eq!(out.status.code(), Some(2), "{options:?}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{options:?}: {}", out.stderr);
        assert!(!out.stderr.contains("greentop run: "), "{}", out.stderr);
    }
}
