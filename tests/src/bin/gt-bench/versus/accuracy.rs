//! Accuracy: a steady busy loop (`gt-load busy-ms 5000`: 5 s of its own CPU time)
//! under the 40 W fixture, each tool in turn; the joules each tool gives it against
//! the formula `40 W × its CPU seconds / CPUs` (what is left to a process that runs
//! alone when the package's power is split by CPU time over all CPUs). Then the same
//! with the counter wrapping every 1.5 s (max_energy_range_uj = 60 J): the joules
//! again, and the intervals whose node energy is not 40 W × their length (± 5 %):
//! dropped or wrong.
use std::collections::HashMap;

use greentop_tests::benchkit::median;
use greentop_tests::benchkit::table::{Block, num};

use super::Options;
use super::env::{Env, FIXTURE_WATTS, NO_WRAP_RANGE_UJ, WRAP_RANGE_UJ};
use super::jobs::{JobRun, run_job};
use super::outputs::NodeInterval;
use super::tools::{JOB_TOOLS as TOOLS, Tool, progress, rotation, runnable};

/// Per tool and fixture (false: no wrap, true: wrap), one value per round.
#[derive(Default)]
struct Results {
    ratio: HashMap<(Tool, bool), Vec<f64>>,
    bad: HashMap<(Tool, bool), (usize, usize)>,
    failures: Vec<String>,
}

pub fn block(env: &Env, opts: &Options, load: [f64; 3]) -> anyhow::Result<Block> {
    let job: Vec<String> = vec![
        env.bin("gt-load").to_string_lossy().into_owned(),
        "busy-ms".into(),
        "5000".into(),
    ];
    let mut results = Results::default();
    for (wrap, range) in [(false, NO_WRAP_RANGE_UJ), (true, WRAP_RANGE_UJ)] {
        let fixture = env.fixture(if wrap { "wrap" } else { "steady" }, range)?;
        // CPU-load mode never reads the counter: no wrap run for it.
        let tools = runnable(&TOOLS, env, |t| !(wrap && t == Tool::CodeCarbonLoad));
        for round in 0..opts.rounds {
            for tool in rotation(&tools, round) {
                let counter = if wrap { ", wrapping counter" } else { "" };
                let what = format!("{}{counter}", tool.label());
                progress("accuracy", round, opts.rounds, &what);
                match run_job(env, &fixture, tool, &job, opts) {
                    Ok(run) => record(&mut results, tool, wrap, &run, env.ncpu),
                    Err(err) => results.failures.push(format!("{}: {err:#}", tool.label())),
                }
            }
        }
    }
    Ok(table(env, opts, load, &results))
}

fn record(results: &mut Results, tool: Tool, wrap: bool, run: &JobRun, ncpu: usize) {
    let formula_j = FIXTURE_WATTS * run.job_cpu_s / ncpu as f64;
    let joules = run.account.joules_of(&[run.job_pid]);
    results
        .ratio
        .entry((tool, wrap))
        .or_default()
        .push(joules / formula_j);
    let (bad, total) = bad_intervals(&run.account.intervals);
    let entry = results.bad.entry((tool, wrap)).or_default();
    entry.0 += bad;
    entry.1 += total;
}

/// (intervals whose power is off 40 W by more than 5 % or unknown, intervals) among
/// those of known length.
pub fn bad_intervals(intervals: &[NodeInterval]) -> (usize, usize) {
    let timed: Vec<&NodeInterval> = intervals
        .iter()
        .filter(|i| i.secs.is_finite() && i.secs > 0.0)
        .collect();
    let bad = timed
        .iter()
        .filter(|i| {
            let watts = i.joules / i.secs;
            !watts.is_finite() || (watts - FIXTURE_WATTS).abs() > 0.05 * FIXTURE_WATTS
        })
        .count();
    (bad, timed.len())
}

fn table(env: &Env, opts: &Options, load: [f64; 3], results: &Results) -> Block {
    let mut block = Block::new(
        "Accuracy: a busy loop under a 40 W fixture counter",
        "cargo xtask bench versus -- --blocks accuracy",
        &[
            "tool",
            "joules / formula",
            "intervals off 40 W",
            "joules / formula, counter wrapping every 1.5 s",
            "intervals off 40 W, wrapping",
        ],
    );
    block.load_before = load;
    for tool in TOOLS {
        if let Some(why) = tool.unavailable(env) {
            block.row(vec![tool.label().into(), format!("not run: {why}")]);
            continue;
        }
        let mut row = vec![tool.label().to_owned()];
        for wrap in [false, true] {
            let ratios = results
                .ratio
                .get(&(tool, wrap))
                .cloned()
                .unwrap_or_default();
            let (bad, total) = results.bad.get(&(tool, wrap)).copied().unwrap_or_default();
            if wrap && tool == Tool::CodeCarbonLoad {
                row.extend(["n/a (reads no counter)".to_owned(), String::new()]);
                continue;
            }
            row.push(num(median(&ratios), 3));
            row.push(format!("{bad} of {total}"));
        }
        block.row(row);
    }
    block.note(format!(
        "Formula: 40 W × the loop's CPU seconds (getrusage) / {} CPUs; median of {} rounds. \
         The fixture's `energy_uj` is a FIFO (`agent::energy::testkit::FifoCounter`) whose \
         every read is answered with 40 W × the time the reader opened it: all four tools \
         read it with open+read, so no helper thread's timing enters the values.",
        env.ncpu, opts.rounds
    ));
    block.note(
        "Intervals off 40 W: the node energy each tool reports per interval (greentop \
         `system.cpu_joules`, the poller's zone delta, Scaphandre's host power, CodeCarbon's \
         cumulative CPU energy between two measurements) is more than 5 % away from 40 W × \
         the interval, or missing; summed over all rounds. A tool's first interval (no \
         baseline) is not counted.",
    );
    for failure in &results.failures {
        block.note(format!("failed: {failure}"));
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_off_the_fixture_power() {
        let intervals = [
            NodeInterval {
                secs: f64::NAN,
                joules: 0.0,
            },
            NodeInterval {
                secs: 1.0,
                joules: 40.5,
            },
            NodeInterval {
                secs: 1.0,
                joules: 0.0,
            },
            NodeInterval {
                secs: 2.0,
                joules: 80.0,
            },
            NodeInterval {
                secs: 1.0,
                joules: f64::NAN,
            },
            NodeInterval {
                secs: 1.0,
                joules: -20.0,
            },
        ];
        assert_eq!(bad_intervals(&intervals), (3, 5));
    }
}
