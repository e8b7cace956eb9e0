//! The overhead block's tables: % of one core per tool and scenario, and the targets
//! at the 1,000-waker load.
use greentop_tests::benchkit::median;
use greentop_tests::benchkit::table::{Block, num};

use super::Options;
use super::env::Env;
use super::overhead::{Results, SCENARIOS, Scenario, TOOLS};
use super::tools::Tool;

/// `0.31 %`, with `(2.4×)` greentop's total beside a peer's.
fn cell(
    results: &Results,
    scenario: Scenario,
    tool: Tool,
    f: fn(&super::overhead::Sample) -> f64,
) -> String {
    let pct = results.median_of(scenario, tool, f);
    if pct.is_nan() {
        return "failed".into();
    }
    if tool == Tool::Greentop {
        return format!("{} %", num(pct, 3));
    }
    let ratio = results.ratio_to_greentop(scenario, tool);
    format!("{} % ({}× greentop)", num(pct, 2), num(ratio, 1))
}

pub fn overhead_blocks(env: &Env, opts: &Options, load: [f64; 3], results: &Results) -> Vec<Block> {
    /// One figure of a sample.
    type Figure = fn(&super::overhead::Sample) -> f64;
    let mut header = vec!["tool"];
    header.extend(SCENARIOS.map(Scenario::label));
    let mut block = Block::new(
        "Agent overhead, % of one core at 1 s intervals",
        "cargo xtask bench versus -- --blocks overhead",
        &header,
    );
    block.load_before = load;
    let rows: [(&str, Tool, Figure); 3] = [
        ("greentop-agent, user space", Tool::Greentop, |s| s.user_pct),
        (
            "greentop-agent, in the kernel (all its programs)",
            Tool::Greentop,
            |s| s.kernel_pct,
        ),
        ("greentop-agent, total", Tool::Greentop, |s| s.total_pct()),
    ];
    for (label, tool, f) in rows {
        let mut row = vec![label.to_owned()];
        row.extend(SCENARIOS.map(|s| cell(results, s, tool, f)));
        block.row(row);
    }
    for tool in TOOLS.into_iter().skip(1) {
        let mut row = vec![tool.label().to_owned()];
        match results.unavailable.iter().find(|(t, _)| *t == tool) {
            Some((_, why)) => row.push(format!("not run: {why}")),
            None => row.extend(SCENARIOS.map(|s| cell(results, s, tool, |x| x.total_pct()))),
        }
        block.row(row);
    }
    block.note(format!(
        "CPU time of each tool's process (its kernel CPU-time clock: every thread, user and \
         system) over a {} s window after start-up and {} s of settling, divided by the wall \
         time; median of {} rounds, the tools' order rotating each round. greentop's in-kernel \
         cost is the `bpf_stats` run time of the programs it holds (ledger, lifecycle, GPU \
         ioctl counter), charged by the kernel to whichever task switched, not to the agent. \
         `×` is a peer's total over greentop's total in the same round (median of the ratios).",
        opts.window_s, opts.settle_s, opts.rounds
    ));
    block.note(
        "Loads: `gt-load sleepers 1000` (forked processes asleep), `gt-load wakers 1000 … 10 10` \
         (each wakes 10×/s and spins 10 µs), `gt-load idle-threads 5000`. All tools read the \
         same 40 W fixture powercap tree; greentop-agent's JSON lines, the poller's and \
         Scaphandre's stdout go to /dev/null.",
    );
    for failure in &results.failures {
        block.note(format!("failed: {failure}"));
    }
    vec![block, targets(env, opts, load, results)]
}

fn verdict(met: bool) -> String {
    if met { "met".into() } else { "missed".into() }
}

fn targets(_env: &Env, opts: &Options, load: [f64; 3], results: &Results) -> Block {
    let mut block = Block::new(
        "greentop-agent against its targets",
        "cargo xtask bench versus -- --blocks overhead",
        &["target", "measured (median)", ""],
    );
    block.load_before = load;
    let g = |scenario, f: fn(&super::overhead::Sample) -> f64| {
        results.median_of(scenario, Tool::Greentop, f)
    };
    let user_wakers = g(Scenario::Wakers, |s| s.user_pct);
    block.row(vec![
        "user side ≤ 0.3 % of a core at 1,000 wakers".into(),
        format!("{} %", num(user_wakers, 3)),
        verdict(user_wakers <= 0.3),
    ]);
    let switch_ns = g(Scenario::Wakers, |s| s.switch_ns);
    let all_ns = g(Scenario::Wakers, |s| s.all_ns_per_switch);
    let floor = median(&results.floor_ns);
    block.row(vec![
        "in-kernel ≤ 1.5× the floor per event at 1,000 wakers: the sched_switch program".into(),
        format!(
            "{} ns vs floor {} ns: {}×",
            num(switch_ns, 0),
            num(floor, 0),
            num(switch_ns / floor, 2)
        ),
        verdict(switch_ns / floor <= 1.5),
    ]);
    block.row(vec![
        "the same, all of greentop's programs per switch".into(),
        format!(
            "{} ns: {}× the floor",
            num(all_ns, 0),
            num(all_ns / floor, 2)
        ),
        verdict(all_ns / floor <= 1.5),
    ]);
    let idle = g(Scenario::Idle, |s| s.user_pct);
    for (scenario, what) in [
        (Scenario::Sleepers, "1,000 sleeping processes"),
        (Scenario::Threads, "5,000 idle threads"),
    ] {
        let ratio = g(scenario, |s| s.user_pct) / idle;
        block.row(vec![
            format!("user side flat in idle work: {what} / idle"),
            format!("{}×", num(ratio, 2)),
            verdict(ratio <= 1.25),
        ]);
    }
    block.note(format!(
        "Floor: the counter-only program (`floor_switch`, one per-CPU array increment) attached \
         alone to sched_switch for {} s under the same 1,000 wakers, in each round; \
         {} switches/s with greentop running (median). \"Flat\" is taken as within 25 % of idle.",
        opts.window_s,
        num(g(Scenario::Wakers, |s| s.switches_per_s), 0)
    ));
    block
}
