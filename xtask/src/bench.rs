//! `cargo xtask bench`: dispatches to the benchmark binaries; with no target, lists them.
//!
//! No setup step here: run `cargo xtask setup` (or `test`) once first.
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cmd;

/// Benchmark targets: name, what it measures.
const TARGETS: &[(&str, &str)] = &[
    (
        "ebpf",
        "overhead of the eBPF CPU-time ledger (gt-bench ebpf; needs root)",
    ),
    (
        "ticks",
        "ledger tick cost with and without 2,000 idle processes (gt-bench ticks; needs root)",
    ),
];

pub fn run(target: Option<&str>, args: &[String]) -> Result<ExitCode> {
    let Some(target) = target else {
        println!("benchmark targets (cargo xtask bench TARGET [ARGS]):");
        for (name, what) in TARGETS {
            println!("  {name:<8} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    if !TARGETS.iter().any(|(name, _)| *name == target) {
        let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
        bail!(
            "unknown benchmark target `{target}`; known: {}",
            names.join(", ")
        );
    }
    // gt-bench drives the gt-load workload beside it: build both.
    let mut build = cmd::command("cargo");
    build.args([
        "build",
        "--release",
        "--package",
        "greentop-tests",
        "--bins",
    ]);
    eprintln!("==> {}", cmd::describe(&build));
    if !cmd::status(&mut build)?.success() {
        bail!("building the benchmark binaries failed");
    }
    let mut bench = cmd::command("cargo");
    bench.args([
        "run",
        "--release",
        "--package",
        "greentop-tests",
        "--bin",
        "gt-bench",
    ]);
    bench.arg("--").arg(target).args(args);
    // stderr, like cargo's own progress: stdout is the benchmark's alone.
    eprintln!("==> {}", cmd::describe(&bench));
    let status = cmd::status(&mut bench)?;
    // Propagate the benchmark's exit code; a signal death becomes a plain failure.
    Ok(status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}
