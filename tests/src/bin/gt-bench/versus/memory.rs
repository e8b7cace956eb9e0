//! Memory with 10,000 threads alive (`gt-load idle-threads 10000`): each tool's
//! resident set once settled (median of VmRSS sampled every 250 ms over the second
//! half of the window) and its peak (VmHWM), greentop first.
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use greentop_tests::KillOnDrop;
use greentop_tests::benchkit::median;
use greentop_tests::benchkit::table::{Block, num};

use super::Options;
use super::env::{Env, NO_WRAP_RANGE_UJ};
use super::tools::{Running, Tool, progress, runnable};

const TOOLS: [Tool; 4] = [
    Tool::Greentop,
    Tool::ProcPoll,
    Tool::ScaphAll,
    Tool::CodeCarbon,
];
const THREADS: usize = 10_000;
const MIB: f64 = 1024.0 * 1024.0;

/// `VmRSS` and `VmHWM` of a `/proc/PID/status` text, bytes.
pub fn rss_hwm(status: &str) -> Option<(u64, u64)> {
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024))
}

pub fn block(env: &Env, opts: &Options, load: [f64; 3]) -> anyhow::Result<Block> {
    let fixture = env.fixture("memory", NO_WRAP_RANGE_UJ)?;
    let tools = runnable(&TOOLS, env, |_| true);
    let mut steady: HashMap<Tool, Vec<f64>> = HashMap::new();
    let mut peak: HashMap<Tool, Vec<f64>> = HashMap::new();
    let mut failures = Vec::new();
    for round in 0..opts.rounds {
        let secs = (tools.len() as f64 * (opts.window_s + opts.settle_s + 10.0) + 60.0).to_string();
        let mut threads = Command::new(env.bin("gt-load"))
            .args(["idle-threads", &THREADS.to_string(), &secs])
            .stdout(Stdio::piped())
            .spawn()
            .context("starting gt-load idle-threads")?;
        let mut line = String::new();
        let stdout = threads.stdout.take().context("gt-load's stdout")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let _threads = KillOnDrop(threads);
        for tool in &tools {
            progress("memory", round, opts.rounds, tool.label());
            match measure(env, &fixture, *tool, opts) {
                Ok((rss, hwm)) => {
                    steady.entry(*tool).or_default().push(rss);
                    peak.entry(*tool).or_default().push(hwm);
                }
                Err(err) => failures.push(format!("{}: {err:#}", tool.label())),
            }
        }
    }
    let mut block = Block::new(
        "Memory with 10,000 threads alive",
        "cargo xtask bench versus -- --blocks memory",
        &[
            "tool",
            "RSS once settled, MiB",
            "peak (VmHWM), MiB",
            "target",
        ],
    );
    block.load_before = load;
    for tool in TOOLS {
        if let Some(why) = tool.unavailable(env) {
            block.row(vec![tool.label().into(), format!("not run: {why}")]);
            continue;
        }
        let get = |m: &HashMap<Tool, Vec<f64>>| median(&m.get(&tool).cloned().unwrap_or_default());
        let target = match tool {
            // 50 MB = 47.7 MiB; the peak is what a host must have free to start it.
            Tool::Greentop if get(&peak) <= 50e6 => "≤ 50 MB (47.7 MiB), peak too: met",
            Tool::Greentop => "≤ 50 MB (47.7 MiB), peak too: missed",
            _ => "",
        };
        block.row(vec![
            tool.label().into(),
            num(get(&steady) / MIB, 1),
            num(get(&peak) / MIB, 1),
            target.into(),
        ]);
    }
    block.note(format!(
        "One process holds 10,000 sleeping threads (`gt-load idle-threads 10000`); each tool \
         runs alone on the fixture at 1 s intervals. Settled: the median of VmRSS sampled \
         every 250 ms over the last half of a {} s window after start-up; peak: VmHWM at its \
         end. Median of {} rounds.",
        opts.window_s, opts.rounds
    ));
    for failure in failures {
        block.note(format!("failed: {failure}"));
    }
    Ok(block)
}

/// (settled RSS, VmHWM) of one tool, bytes.
fn measure(
    env: &Env,
    fixture: &super::env::Fixture,
    tool: Tool,
    opts: &Options,
) -> anyhow::Result<(f64, f64)> {
    let running = Running::start_settled(tool, env, fixture, opts)?;
    let status_path = format!("/proc/{}/status", running.pid);
    let start = Instant::now();
    let window = Duration::from_secs_f64(opts.window_s);
    let (mut rss, mut hwm) = (Vec::new(), 0);
    while start.elapsed() < window {
        std::thread::sleep(Duration::from_millis(250));
        let text = std::fs::read_to_string(&status_path).context("reading the tool's status")?;
        let (now, high) = rss_hwm(&text).context("VmRSS/VmHWM in the tool's status")?;
        if start.elapsed() >= window / 2 {
            rss.push(now as f64);
        }
        hwm = high;
    }
    running.stop();
    Ok((median(&rss), hwm as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_and_high_water_mark_of_a_status() {
        let status =
            "Name:\tgreentop-agent\nVmPeak:\t  100 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   22528 kB\n";
        assert_eq!(rss_hwm(status), Some((22528 * 1024, 40960 * 1024)));
        assert_eq!(rss_hwm("Name:\tx\n"), None);
    }
}
