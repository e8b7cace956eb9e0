//! `gt-bench versus`: greentop-agent side by side with what users would pick
//! instead — a `/proc` poller with Kepler 0.10's method (`gt-procpoll`), Scaphandre
//! 1.0 and CodeCarbon's tracker — on the same machine, the same fixture powercap
//! tree, in one run: overhead, short-lived work, accuracy, memory. Writes the blocks
//! as JSON for `gt-bench table` (docs/benchmarks.md).
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use greentop_tests::benchkit::table::Block;
use greentop_tests::benchkit::wait_for_quiet;

mod accuracy;
mod bpf;
mod env;
mod jobs;
mod memory;
mod outputs;
mod overhead;
mod report;
mod storm;
mod tools;

/// greentop-agent side by side with a /proc poller, Scaphandre and CodeCarbon.
#[derive(Debug, Parser)]
#[command(name = "gt-bench versus")]
pub struct Options {
    /// Rounds of every measurement (the tables give medians).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Seconds each tool is measured for, once settled.
    #[arg(long = "window", default_value_t = 8.0)]
    pub window_s: f64,
    /// Seconds a tool runs after start-up before it is measured.
    #[arg(long = "settle", default_value_t = 2.5)]
    pub settle_s: f64,
    /// Blocks to run, comma-separated: overhead, storm, accuracy, memory.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "overhead,storm,accuracy,memory"
    )]
    pub blocks: Vec<String>,
    /// Tools to run, comma-separated: greentop, procpoll, scaphandre-top,
    /// scaphandre-all, codecarbon, codecarbon-load (the others are reported as not run).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "greentop,procpoll,scaphandre-top,scaphandre-all,codecarbon,codecarbon-load"
    )]
    pub tools: Vec<String>,
    /// The greentop-agent to measure (default: the one beside gt-bench).
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// Where the peers are installed (bin/scaphandre, venv/bin/python).
    #[arg(long, default_value = "target/peers")]
    pub peers: PathBuf,
    /// Write the blocks here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Before each block, wait until the 1-minute load average is below this.
    #[arg(long, default_value_t = 1.5)]
    pub max_load: f64,
    /// Longest wait for that, seconds.
    #[arg(long, default_value_t = 900)]
    pub patience_s: u64,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let opts = Options::try_parse_from(
        std::iter::once("gt-bench versus".to_owned()).chain(args.iter().cloned()),
    )?;
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .context("enabling bpf_stats (needs root)")?;
    let mut selected = Vec::new();
    for key in &opts.tools {
        let tool = tools::Tool::ALL
            .into_iter()
            .find(|t| t.key() == key)
            .with_context(|| format!("unknown tool `{key}`"))?;
        selected.push(tool);
    }
    let mut env = env::Env::prepare(&opts.peers, selected)?;
    if let Some(agent) = &opts.agent {
        env.agent = agent.clone();
    }
    for (what, found) in [
        ("Scaphandre", &env.scaphandre),
        ("the shim", &env.shim),
        ("CodeCarbon", &env.python),
    ] {
        if let Err(why) = found {
            eprintln!("gt-bench versus: {what} will not run: {why}");
        }
    }
    let mut blocks: Vec<Block> = Vec::new();
    for name in &opts.blocks {
        let done = blocks.len();
        let load = wait_for_quiet(opts.max_load, Duration::from_secs(opts.patience_s));
        eprintln!("gt-bench versus: block {name}, load average {load:?}");
        match name.as_str() {
            "overhead" => {
                let fixture = env.fixture("overhead", env::NO_WRAP_RANGE_UJ)?;
                let results = overhead::measure_all(&env, &fixture, &opts)?;
                blocks.extend(report::overhead_blocks(&env, &opts, load, &results));
            }
            "storm" => blocks.push(storm::block(&env, &opts, load)?),
            "accuracy" => blocks.push(accuracy::block(&env, &opts, load)?),
            "memory" => blocks.push(memory::block(&env, &opts, load)?),
            other => anyhow::bail!("unknown block `{other}` (overhead, storm, accuracy, memory)"),
        }
        for block in &blocks[done..] {
            println!("{}", block.to_markdown());
        }
        if let Some(path) = &opts.json {
            std::fs::write(path, serde_json::to_string_pretty(&blocks)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
