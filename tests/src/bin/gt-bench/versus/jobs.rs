//! A job run under one tool at a time, for the attribution blocks: the tool starts and
//! settles, the job runs (as the tool's child when the tool wraps jobs, CodeCarbon),
//! the tool reports a few more intervals, and its output is read back.
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use greentop_tests::children_cpu_ns;

use super::Options;
use super::env::{Env, FIXTURE_WATTS, Fixture};
use super::outputs::{self, Account};
use super::tools::{Output, Running, Tool};

/// Seconds a tool keeps reporting after the job, so the job's last interval (and a
/// process's exit) is in its output.
const TAIL_S: f64 = 2.5;

/// What one job under one tool gave.
pub struct JobRun {
    pub account: Account,
    /// The job's stdout lines.
    pub job_lines: Vec<String>,
    /// The job's pid, or the wrapping tool's (whose tree holds the job).
    pub job_pid: u32,
    /// CPU time of the job and everything it reaped, from getrusage, s.
    pub job_cpu_s: f64,
}

pub fn run_job(
    env: &Env,
    fixture: &Fixture,
    tool: Tool,
    job: &[String],
    opts: &Options,
) -> anyhow::Result<JobRun> {
    if tool.wraps_the_job() {
        return run_wrapped(env, fixture, tool, job);
    }
    let mut running = Running::start(tool, env, fixture, Output::Tapped, &[], 0.0)?;
    running.wait_ready(Duration::from_secs_f64(opts.settle_s))?;
    let before = children_cpu_ns();
    let mut child = Command::new(&job[0])
        .args(&job[1..])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", job[0]))?;
    let job_pid = child.id();
    let mut text = String::new();
    child
        .stdout
        .take()
        .context("the job's stdout")?
        .read_to_string(&mut text)?;
    let status = child.wait()?;
    let job_cpu_s = (children_cpu_ns() - before) as f64 / 1e9;
    if !status.success() {
        bail!("the job {job:?} failed: {status}");
    }
    std::thread::sleep(Duration::from_secs_f64(TAIL_S));
    let lines = running.stop();
    Ok(JobRun {
        account: account(tool, &lines, job_pid, env.ncpu),
        job_lines: text.lines().map(str::to_owned).collect(),
        job_pid,
        job_cpu_s,
    })
}

/// CodeCarbon runs the job itself and tracks for TAIL_S after it.
fn run_wrapped(env: &Env, fixture: &Fixture, tool: Tool, job: &[String]) -> anyhow::Result<JobRun> {
    let mut running = Running::start(tool, env, fixture, Output::Tapped, job, TAIL_S)?;
    let pid = running.pid;
    if !running.wait_exit(Duration::from_secs(180)) {
        bail!("{} did not finish its job in 180 s", tool.label());
    }
    let lines = running.stop();
    let job_lines = outputs::child_lines(&lines);
    let job_cpu_s = lines
        .iter()
        .find_map(|(_, l)| l.strip_prefix("child_cpu_s ")?.trim().parse().ok())
        .context("the CodeCarbon driver did not report its child's CPU time")?;
    Ok(JobRun {
        account: account(tool, &lines, pid, env.ncpu),
        job_lines,
        job_pid: pid,
        job_cpu_s,
    })
}

fn account(tool: Tool, lines: &[(f64, String)], tree_pid: u32, ncpu: usize) -> Account {
    match tool {
        Tool::Greentop => outputs::greentop(lines),
        Tool::ProcPoll => outputs::procpoll(lines),
        Tool::ScaphTop | Tool::ScaphAll => outputs::scaphandre(lines, ncpu),
        Tool::CodeCarbon => outputs::codecarbon(lines, None, tree_pid, ncpu),
        Tool::CodeCarbonLoad => outputs::codecarbon(lines, Some(FIXTURE_WATTS), tree_pid, ncpu),
    }
}

/// The `pids …` line of `gt-load burst`.
pub fn burst_pids(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("pids "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The `children_cpu_ns N` line of `gt-load burst`, in seconds.
pub fn burst_cpu_s(lines: &[String]) -> Option<f64> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("children_cpu_ns "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map(|ns| ns / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_output() {
        let lines = vec![
            "children_cpu_ns 1500000000".to_owned(),
            "pids 10 11 x 12".to_owned(),
        ];
        assert_eq!(burst_pids(&lines), [10, 11, 12]);
        assert_eq!(burst_cpu_s(&lines), Some(1.5));
        assert_eq!(burst_cpu_s(&[]), None);
    }
}
