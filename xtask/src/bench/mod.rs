//! `cargo xtask bench`: with no target, every group of the side-by-side table into
//! docs/benchmarks.md (`all.rs`); `cargo xtask bench TARGET` runs one benchmark
//! binary; `cargo xtask bench list` lists the targets.
//!
//! No toolchain setup here: run `cargo xtask setup` (or `test`) once first. The peers
//! (Scaphandre, CodeCarbon) are installed under target/peers on first use (`peers.rs`).
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cmd;

mod all;
mod peers;

/// Benchmark targets: name, what it measures.
const TARGETS: &[(&str, &str)] = &[
    (
        "ebpf",
        "overhead of the eBPF CPU-time ledger (gt-bench ebpf; needs root)",
    ),
    (
        "wakers",
        "the ledger's cost per switch in situ, 1,000 processes waking 10x/s: clock vs runtime ledger (gt-bench wakers; needs root)",
    ),
    (
        "tui",
        "render time for 2,000 processes at 200x60, and greentop's CPU at 1 s refresh (gt-bench-tui; root, tmux)",
    ),
    (
        "gpu",
        "ns per CUDA call with the GPU uprobes vs an unprobed call, and per syscall/ioctl with the NVIDIA ioctl counter (gt-bench gpu; root, cc)",
    ),
    (
        "ticks",
        "ledger tick cost with and without 2,000 idle processes (gt-bench ticks; needs root)",
    ),
    (
        "agent",
        "greentop-agent at 1 s: CPU with the log and the socket beside JSON lines only, and tick-to-socket latency (gt-bench-agent [SECS] [RUNS]; needs root)",
    ),
    (
        "versus",
        "greentop-agent beside a /proc poller, Scaphandre and CodeCarbon: overhead, short-lived work, accuracy, memory (gt-bench versus [OPTIONS]; needs root; installs the peers)",
    ),
    (
        "log",
        "binary log bytes per process-interval over a day of 500 processes, greentop report's time on it, and N runs of the reader's fuzz target (gt-bench-log [HOURS] [PROCESSES] [FUZZ_RUNS])",
    ),
];

pub fn run(target: Option<&str>, args: &[String]) -> Result<ExitCode> {
    let Some(target) = target else {
        return all::run();
    };
    if target == "list" {
        println!("cargo xtask bench: every group below, the table into docs/benchmarks.md");
        println!("benchmark targets (cargo xtask bench TARGET [ARGS]):");
        for (name, what) in TARGETS {
            println!("  {name:<8} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !TARGETS.iter().any(|(name, _)| *name == target) {
        let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
        bail!(
            "unknown benchmark target `{target}`; known: {}",
            names.join(", ")
        );
    }
    // Each benchmark binary drives a sibling (gt-load, or greentop itself): build all
    // of its package's binaries in release mode first.
    if target == "versus" {
        peers::install()?;
    }
    let (package, binary, bench_args): (&str, &str, Vec<&str>) = match target {
        "tui" => ("greentop", "gt-bench-tui", Vec::new()),
        "log" => ("greentop-tests", "gt-bench-log", Vec::new()),
        "agent" => ("greentop-tests", "gt-bench-agent", Vec::new()),
        _ => ("greentop-tests", "gt-bench", vec![target]),
    };
    let mut build = cmd::command("cargo");
    build.args(["build", "--release", "--package", package, "--bins"]);
    if target == "agent" || target == "versus" {
        // The daemon they measure.
        build.args(["--package", "greentop-agent"]);
    }
    eprintln!("==> {}", cmd::describe(&build));
    if !cmd::status(&mut build)?.success() {
        bail!("building the benchmark binaries failed");
    }
    let mut bench = cmd::command("cargo");
    bench.args(["run", "--release", "--package", package, "--bin", binary]);
    bench.arg("--").args(bench_args).args(args);
    // stderr, like cargo's own progress: stdout is the benchmark's alone.
    eprintln!("==> {}", cmd::describe(&bench));
    let status = cmd::status(&mut bench)?;
    // Propagate the benchmark's exit code; a signal death becomes a plain failure.
    Ok(status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}
