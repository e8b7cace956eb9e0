//! The tools measured side by side, how each is started on the fixture, and a
//! running one: its precise CPU time (the kernel's per-process CPU clock, which
//! counts exited threads too), its output, and, for greentop, its eBPF programs.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use greentop_tests::KillOnDrop;
use greentop_tests::benchkit::process_cpu_ns;

use super::env::{Env, Fixture, with_powercap_at_sys};

/// One tool in one configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tool {
    Greentop,
    ProcPoll,
    /// Scaphandre's stdout exporter, its default top 5 processes.
    ScaphTop,
    /// The same with every process (`-p 65535`).
    ScaphAll,
    /// CodeCarbon's tracker, process mode, on the fixture's RAPL counter.
    CodeCarbon,
    /// CodeCarbon forced into CPU-load mode at the fixture's power, where its process
    /// mode splits power by the tracked tree's CPU time.
    CodeCarbonLoad,
}

impl Tool {
    pub const ALL: [Tool; 6] = [
        Tool::Greentop,
        Tool::ProcPoll,
        Tool::ScaphTop,
        Tool::ScaphAll,
        Tool::CodeCarbon,
        Tool::CodeCarbonLoad,
    ];

    /// The short name `--tools` takes.
    pub fn key(self) -> &'static str {
        match self {
            Tool::Greentop => "greentop",
            Tool::ProcPoll => "procpoll",
            Tool::ScaphTop => "scaphandre-top",
            Tool::ScaphAll => "scaphandre-all",
            Tool::CodeCarbon => "codecarbon",
            Tool::CodeCarbonLoad => "codecarbon-load",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tool::Greentop => "greentop-agent",
            Tool::ProcPoll => "/proc poller (Kepler 0.10's method)",
            Tool::ScaphTop => "Scaphandre 1.0 stdout, top 5",
            Tool::ScaphAll => "Scaphandre 1.0 stdout, all processes",
            Tool::CodeCarbon => "CodeCarbon tracker (RAPL)",
            Tool::CodeCarbonLoad => "CodeCarbon tracker (CPU-load mode, 40 W)",
        }
    }

    /// Why this tool cannot run here, if it cannot.
    pub fn unavailable(self, env: &Env) -> Option<String> {
        let scaph = || {
            env.scaphandre
                .as_ref()
                .err()
                .or(env.shim.as_ref().err())
                .cloned()
        };
        if !env.selected.contains(&self) {
            return Some("not selected (--tools)".into());
        }
        match self {
            Tool::Greentop | Tool::ProcPoll => None,
            Tool::ScaphTop | Tool::ScaphAll => scaph(),
            Tool::CodeCarbon | Tool::CodeCarbonLoad => env.python.as_ref().err().cloned(),
        }
    }

    /// Whether the tool's job must be started by the tool itself (CodeCarbon tracks
    /// the process it runs in and its children).
    pub fn wraps_the_job(self) -> bool {
        matches!(self, Tool::CodeCarbon | Tool::CodeCarbonLoad)
    }

    /// The command line on `fixture`; `job` is run by a wrapping tool, `tail_s` is how
    /// long a wrapping tool tracks after it (or at all, without a job).
    fn command(
        self,
        env: &Env,
        fixture: &Fixture,
        job: &[String],
        tail_s: f64,
    ) -> anyhow::Result<Command> {
        let root = fixture.root.to_str().context("fixture path")?;
        let mut cmd;
        match self {
            Tool::Greentop => {
                cmd = Command::new(&env.agent);
                cmd.args(["--interval-s", "1", "--sysfs-root", root]);
            }
            Tool::ProcPoll => {
                cmd = Command::new(env.bin("gt-procpoll"));
                cmd.args(["--interval-s", "1", "--sysfs-root", root]);
            }
            Tool::ScaphTop | Tool::ScaphAll => {
                cmd = Command::new(peer(&env.scaphandre)?);
                cmd.env("LD_PRELOAD", peer(&env.shim)?)
                    .env("GT_PROC_MODULES", &env.modules_file)
                    .env("SCAPHANDRE_POWERCAP_PATH", fixture.powercap());
                let top = if self == Tool::ScaphAll { "65535" } else { "5" };
                cmd.args(["--vm", "stdout", "--timeout=-1", "-s", "1", "-p", top]);
            }
            Tool::CodeCarbon | Tool::CodeCarbonLoad => {
                cmd = Command::new(peer(&env.python)?);
                cmd.arg(&env.driver).args(["--secs", &tail_s.to_string()]);
                if self == Tool::CodeCarbonLoad {
                    cmd.args(["--load-mode", "--cpu-power", "40"]);
                }
                if !job.is_empty() {
                    cmd.arg("--").args(job);
                }
                with_powercap_at_sys(&mut cmd, &fixture.powercap())?;
            }
        }
        Ok(cmd)
    }
}

fn peer(found: &Result<PathBuf, String>) -> anyhow::Result<&Path> {
    found.as_deref().map_err(|why| anyhow::anyhow!("{why}"))
}

/// The tools of round `round` in the order they run: rotated by one each round, so
/// none is always measured first (or last) after the load starts.
pub fn rotation(tools: &[Tool], round: usize) -> Vec<Tool> {
    let mut order = tools.to_vec();
    order.rotate_left(round % tools.len().max(1));
    order
}

/// The tools measured running a job (storm, accuracy): all but Scaphandre's top 5,
/// which would show the job only when it is among them.
pub const JOB_TOOLS: [Tool; 5] = [
    Tool::Greentop,
    Tool::ProcPoll,
    Tool::ScaphAll,
    Tool::CodeCarbon,
    Tool::CodeCarbonLoad,
];

/// The tools of `tools` that can run here and `keep` accepts.
pub fn runnable(tools: &[Tool], env: &Env, keep: impl Fn(Tool) -> bool) -> Vec<Tool> {
    tools
        .iter()
        .copied()
        .filter(|t| t.unavailable(env).is_none() && keep(*t))
        .collect()
}

/// The progress line on stderr before one measurement.
pub fn progress(block: &str, round: usize, rounds: usize, what: &str) {
    eprintln!("{block}: round {} of {rounds}, {what}", round + 1);
}

/// Where a tool's stdout goes.
pub enum Output {
    /// Discarded (the overhead runs).
    Null,
    /// Kept, each line stamped with the seconds since the tool started when it was
    /// read (a reader thread in this process).
    Tapped,
}

/// A running tool; killed and reaped when dropped.
pub struct Running {
    pub tool: Tool,
    child: KillOnDrop,
    pub pid: u32,
    pub started: Instant,
    lines: Arc<Mutex<Vec<(f64, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn start(
        tool: Tool,
        env: &Env,
        fixture: &Fixture,
        output: Output,
        job: &[String],
        tail_s: f64,
    ) -> anyhow::Result<Running> {
        let mut cmd = tool.command(env, fixture, job, tail_s)?;
        cmd.stdin(Stdio::null()).stderr(Stdio::null());
        cmd.stdout(match output {
            Output::Null => Stdio::null(),
            Output::Tapped => Stdio::piped(),
        });
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", tool.label()))?;
        let pid = child.id();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = child.stdout.take().map(|stdout| {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let at = started.elapsed().as_secs_f64();
                    lines.lock().expect("tool output").push((at, line));
                }
            })
        });
        Ok(Running {
            tool,
            child: KillOnDrop(child),
            pid,
            started,
            lines,
            reader,
        })
    }

    /// Starts `tool` with no job (a wrapper just tracks itself) for a window of
    /// `opts`, and waits until it works and has settled.
    pub fn start_settled(
        tool: Tool,
        env: &Env,
        fixture: &Fixture,
        opts: &super::Options,
    ) -> anyhow::Result<Running> {
        let output = if tool.wraps_the_job() {
            Output::Tapped
        } else {
            Output::Null
        };
        let tail = opts.settle_s + opts.window_s + 60.0;
        let mut running = Running::start(tool, env, fixture, output, &[], tail)?;
        running.wait_ready(Duration::from_secs_f64(opts.settle_s))?;
        Ok(running)
    }

    /// Waits until the tool works: greentop has its eBPF programs, a tapped wrapper
    /// said `ready`; then `settle` more.
    pub fn wait_ready(&mut self, settle: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.0.try_wait()? {
                bail!("{} exited during start-up ({status})", self.tool.label());
            }
            let ready = match self.tool {
                Tool::Greentop => !super::bpf::program_ids(self.pid).is_empty(),
                Tool::CodeCarbon | Tool::CodeCarbonLoad if self.reader.is_some() => {
                    self.lines().iter().any(|(_, l)| l == "ready")
                }
                Tool::CodeCarbon | Tool::CodeCarbonLoad => {
                    self.started.elapsed() > Duration::from_secs(4)
                }
                _ => true,
            };
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} not ready after 60 s", self.tool.label());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(settle);
        Ok(())
    }

    /// Fails if the tool has exited.
    pub fn ensure_alive(&mut self) -> anyhow::Result<()> {
        match self.child.0.try_wait()? {
            Some(status) => bail!("{} exited ({status})", self.tool.label()),
            None => Ok(()),
        }
    }

    /// The process's CPU time so far, ns (all its threads, live and exited).
    pub fn cpu_ns(&self) -> anyhow::Result<u64> {
        process_cpu_ns(self.pid).with_context(|| format!("CPU clock of {}", self.tool.label()))
    }

    /// A copy of the lines read so far.
    pub fn lines(&self) -> Vec<(f64, String)> {
        self.lines.lock().expect("tool output").clone()
    }

    /// Waits up to `limit` for the tool to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if matches!(self.child.0.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Stops the tool (SIGTERM, then SIGKILL after 2 s) and returns its output lines.
    pub fn stop(mut self) -> Vec<(f64, String)> {
        // SAFETY: kill with a pid we started and have not reaped.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        self.wait_exit(Duration::from_secs(2));
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines()
    }
}
