//! Agent overhead side by side: each tool's CPU time, % of one core, at 1 s intervals
//! in four scenarios, each tool started in turn under the same load (the order
//! rotating each round); greentop's in-kernel cost is its programs' bpf_stats run
//! time over the same window. In the 1,000-waker scenario the counter-only floor
//! program is measured too, alone, for the per-event ratio.
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use greentop_tests::KillOnDrop;
use greentop_tests::benchkit::median;

use super::env::{Env, Fixture};
use super::tools::{Running, Tool, progress, rotation};
use super::{Options, bpf};
use crate::{attach_alone, prog_stats};

/// The loads the tools are measured under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    Idle,
    Sleepers,
    Wakers,
    Threads,
}

pub const SCENARIOS: [Scenario; 4] = [
    Scenario::Idle,
    Scenario::Sleepers,
    Scenario::Wakers,
    Scenario::Threads,
];

impl Scenario {
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Sleepers => "1,000 sleeping processes",
            Scenario::Wakers => "1,000 processes waking 10×/s",
            Scenario::Threads => "1 process, 5,000 threads",
        }
    }

    /// Starts the load for `secs`; returns once it is in place.
    fn start(self, env: &Env, secs: f64) -> anyhow::Result<Option<KillOnDrop>> {
        let secs = format!("{secs:.0}");
        let args: Vec<&str> = match self {
            Scenario::Idle => return Ok(None),
            Scenario::Sleepers => vec!["sleepers", "1000", &secs],
            Scenario::Wakers => vec!["wakers", "1000", &secs, "10", "10"],
            Scenario::Threads => vec!["idle-threads", "5000", &secs],
        };
        let mut child = Command::new(env.bin("gt-load"))
            .args(&args)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting gt-load")?;
        if self != Scenario::Wakers {
            // gt-load prints one line once every sleeper or thread exists.
            let mut line = String::new();
            let stdout = child.stdout.take().context("gt-load's stdout")?;
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        }
        // Let the burst of forks (and the wakers' first wake-ups) pass.
        std::thread::sleep(Duration::from_millis(1500));
        Ok(Some(KillOnDrop(child)))
    }
}

/// One tool's cost over one window.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// User-space process: % of one core.
    pub user_pct: f64,
    /// greentop's programs in the kernel: % of one core (NaN for the others).
    pub kernel_pct: f64,
    pub switch_ns: f64,
    pub all_ns_per_switch: f64,
    pub switches_per_s: f64,
}

impl Sample {
    pub fn total_pct(&self) -> f64 {
        if self.kernel_pct.is_nan() {
            self.user_pct
        } else {
            self.user_pct + self.kernel_pct
        }
    }
}

/// Every sample, by scenario and tool, one per round; and the floor's ns per switch.
#[derive(Default)]
pub struct Results {
    pub samples: HashMap<(Scenario, Tool), Vec<Sample>>,
    pub floor_ns: Vec<f64>,
    pub unavailable: Vec<(Tool, String)>,
    pub failures: Vec<String>,
}

impl Results {
    pub fn median_of(&self, scenario: Scenario, tool: Tool, f: impl Fn(&Sample) -> f64) -> f64 {
        let values: Vec<f64> = self
            .samples
            .get(&(scenario, tool))
            .map(|s| s.iter().map(&f).collect())
            .unwrap_or_default();
        median(&values)
    }

    /// Median over rounds of `tool`'s total / greentop's total in the same round.
    pub fn ratio_to_greentop(&self, scenario: Scenario, tool: Tool) -> f64 {
        let (Some(peer), Some(ours)) = (
            self.samples.get(&(scenario, tool)),
            self.samples.get(&(scenario, Tool::Greentop)),
        ) else {
            return f64::NAN;
        };
        let ratios: Vec<f64> = peer
            .iter()
            .zip(ours)
            .map(|(p, g)| p.total_pct() / g.total_pct())
            .collect();
        median(&ratios)
    }
}

pub const TOOLS: [Tool; 5] = [
    Tool::Greentop,
    Tool::ProcPoll,
    Tool::ScaphTop,
    Tool::ScaphAll,
    Tool::CodeCarbon,
];

pub fn measure_all(env: &Env, fixture: &Fixture, opts: &Options) -> anyhow::Result<Results> {
    let mut results = Results::default();
    let mut tools = Vec::new();
    for tool in TOOLS {
        match tool.unavailable(env) {
            Some(why) => results.unavailable.push((tool, why)),
            None => tools.push(tool),
        }
    }
    let per_tool = opts.settle_s + opts.window_s + 8.0;
    let load_secs = (tools.len() + 1) as f64 * per_tool + 60.0;
    for round in 0..opts.rounds {
        for scenario in SCENARIOS {
            progress("overhead", round, opts.rounds, scenario.label());
            let _load = scenario.start(env, load_secs)?;
            for tool in rotation(&tools, round) {
                match measure(env, fixture, tool, opts) {
                    Ok(sample) => results
                        .samples
                        .entry((scenario, tool))
                        .or_default()
                        .push(sample),
                    Err(err) => results.failures.push(format!(
                        "{} in {}: {err:#}",
                        tool.label(),
                        scenario.label()
                    )),
                }
            }
            if scenario == Scenario::Wakers {
                results.floor_ns.push(floor(opts.window_s)?);
            }
        }
    }
    Ok(results)
}

/// One tool over one window of the running load.
fn measure(env: &Env, fixture: &Fixture, tool: Tool, opts: &Options) -> anyhow::Result<Sample> {
    let mut running = Running::start_settled(tool, env, fixture, opts)?;
    let ids = bpf::program_ids(running.pid);
    let (cpu0, stats0, t0) = (running.cpu_ns()?, bpf::stats(&ids), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(opts.window_s));
    let (cpu1, stats1, wall) = (running.cpu_ns()?, bpf::stats(&ids), t0.elapsed());
    running.ensure_alive()?;
    running.stop();
    let wall_ns = wall.as_nanos() as f64;
    let user_pct = (cpu1 - cpu0) as f64 / wall_ns * 100.0;
    if tool != Tool::Greentop {
        return Ok(Sample {
            user_pct,
            kernel_pct: f64::NAN,
            switch_ns: f64::NAN,
            all_ns_per_switch: f64::NAN,
            switches_per_s: f64::NAN,
        });
    }
    let w = bpf::window(&stats0, &stats1);
    anyhow::ensure!(
        w.switches > 0,
        "no bpf_stats for greentop's switch program (ids {ids:?})"
    );
    Ok(Sample {
        user_pct,
        kernel_pct: w.all_ns as f64 / wall_ns * 100.0,
        switch_ns: w.switch_ns as f64 / w.switches as f64,
        all_ns_per_switch: w.all_ns as f64 / w.switches as f64,
        switches_per_s: w.switches as f64 / wall.as_secs_f64(),
    })
}

/// The counter-only program alone on sched_switch over one window: ns per switch.
fn floor(window_s: f64) -> anyhow::Result<f64> {
    let (ebpf, name) = attach_alone("floor_switch")?;
    let before = prog_stats(&ebpf, &name)?;
    std::thread::sleep(Duration::from_secs_f64(window_s));
    let after = prog_stats(&ebpf, &name)?;
    let runs = after.1.saturating_sub(before.1).max(1);
    Ok(after.0.saturating_sub(before.0) as f64 / runs as f64)
}
