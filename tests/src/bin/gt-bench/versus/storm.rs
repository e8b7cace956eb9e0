//! Short-lived work: 200 processes of ~5 ms each, one after the other
//! (`gt-load burst 200 5`), under each tool in turn; the share of their CPU time
//! (getrusage RUSAGE_CHILDREN of their parent) each tool attributes to them.
use std::collections::HashMap;

use greentop_tests::benchkit::median;
use greentop_tests::benchkit::table::{Block, num};

use super::Options;
use super::env::{Env, NO_WRAP_RANGE_UJ};
use super::jobs::{burst_cpu_s, burst_pids, run_job};
use super::tools::{JOB_TOOLS as TOOLS, Tool, progress, rotation, runnable};

pub fn block(env: &Env, opts: &Options, load: [f64; 3]) -> anyhow::Result<Block> {
    let fixture = env.fixture("storm", NO_WRAP_RANGE_UJ)?;
    let job: Vec<String> = vec![
        env.bin("gt-load").to_string_lossy().into_owned(),
        "burst".into(),
        "200".into(),
        "5".into(),
    ];
    let mut shares: HashMap<Tool, Vec<f64>> = HashMap::new();
    let mut failures = Vec::new();
    // CodeCarbon with RAPL does not split: its row says so without a run.
    let tools = runnable(&TOOLS, env, |t| t != Tool::CodeCarbon);
    for round in 0..opts.rounds {
        for tool in rotation(&tools, round) {
            progress("storm", round, opts.rounds, tool.label());
            match run_job(env, &fixture, tool, &job, opts) {
                Ok(run) => {
                    let storm_s = burst_cpu_s(&run.job_lines).unwrap_or(f64::NAN);
                    let attributed = if tool.wraps_the_job() {
                        run.account.cpu_of(&[run.job_pid])
                    } else {
                        run.account.cpu_of(&burst_pids(&run.job_lines))
                    };
                    shares.entry(tool).or_default().push(attributed / storm_s);
                }
                Err(err) => failures.push(format!("{}: {err:#}", tool.label())),
            }
        }
    }
    let mut block = Block::new(
        "Short-lived work: 200 processes of ~5 ms",
        "cargo xtask bench versus -- --blocks storm",
        &[
            "tool",
            "share of the storm's CPU time attributed to it",
            "target",
        ],
    );
    block.load_before = load;
    for tool in TOOLS {
        let share = median(&shares.get(&tool).cloned().unwrap_or_default());
        let cell = match tool.unavailable(env) {
            Some(why) => format!("not run: {why}"),
            None if tool == Tool::CodeCarbon => {
                "n/a: with RAPL, process mode charges the whole package to the tracked tree".into()
            }
            // `+ 0.0` turns a -0.0 share (nothing seen) into 0.0.
            None => format!("{} %", num(share * 100.0 + 0.0, 1)),
        };
        let target = match tool {
            Tool::Greentop if share >= 0.99 => "≥ 99 %: met",
            Tool::Greentop => "≥ 99 %: missed",
            _ => "",
        };
        block.row(vec![tool.label().into(), cell, target.into()]);
    }
    block.note(format!(
        "`gt-load burst 200 5` runs 200 children in turn, each spinning 5 ms of its own CPU time; \
         the denominator is their CPU time from getrusage(RUSAGE_CHILDREN) in the parent. \
         Median of {} rounds, each tool alone on the fixture at 1 s intervals.",
        opts.rounds
    ));
    block.note(
        "greentop: the `cpu_seconds` of the children's pids, summed over the intervals \
         (exited processes appear once more with their final share). /proc poller: the \
         utime+stime deltas it saw. Scaphandre: the CPU time its process power implies \
         (process W / host W × CPUs × step). CodeCarbon in CPU-load mode: the CPU time its \
         joules imply (J × CPUs / 40 W), for its whole tracked tree (the driver, \
         `gt-load burst` and the storm).",
    );
    for failure in failures {
        block.note(format!("failed: {failure}"));
    }
    Ok(block)
}
