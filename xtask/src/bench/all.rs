//! `cargo xtask bench` with no target: every group of the side-by-side table
//! (issue 14), each benchmark writing its blocks to `target/bench/GROUP.json`, then
//! `gt-bench table` rewrites the generated section of docs/benchmarks.md.
//!
//! A group that fails is named in the table with its exit status; the others still
//! run. A peer that is not installed is reported by `gt-bench versus` itself.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::peers;
use crate::cmd;

/// One benchmark run: the table title it fills, the binary and its arguments (the
/// JSON path is appended after `--json`).
struct Group {
    name: &'static str,
    title: &'static str,
    binary: &'static str,
    args: &'static [&'static str],
}

/// Run in this order; the comparison first, while the machine is freshest.
const GROUPS: &[Group] = &[
    Group {
        name: "versus",
        title: "Agent overhead, short-lived work, accuracy, memory",
        binary: "gt-bench",
        // 6 s windows keep the run near 25 minutes; every figure stays a median of 5.
        args: &[
            "versus",
            "--rounds",
            "5",
            "--window",
            "6",
            "--patience-s",
            "60",
        ],
    },
    Group {
        name: "agent",
        title: "The daemon's outputs",
        binary: "gt-bench-agent",
        args: &["20", "5"],
    },
    Group {
        name: "log",
        title: "Log and report",
        binary: "gt-bench-log",
        // The fuzz runs are a test, not a figure: none here.
        args: &["24", "500", "0", "--rounds", "5"],
    },
    Group {
        name: "tui",
        title: "Live view",
        binary: "gt-bench-tui",
        args: &["300", "--rounds", "5"],
    },
];

pub fn run() -> Result<ExitCode> {
    if !cmd::is_root() {
        bail!("`cargo xtask bench` needs root (eBPF, bpf_stats, mount namespaces)");
    }
    peers::install()?;
    let mut build = cmd::command("cargo");
    build.args(["build", "--release", "--bins"]);
    build.args([
        "-p",
        "greentop-tests",
        "-p",
        "greentop",
        "-p",
        "greentop-agent",
    ]);
    eprintln!("==> {}", cmd::describe(&build));
    cmd::run(&mut build).context("building the benchmark binaries")?;
    let release = cmd::workspace_root().join("target/release");
    let out_dir = cmd::workspace_root().join("target/bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut files = Vec::new();
    let mut missing = Vec::new();
    for group in GROUPS {
        let json = out_dir.join(format!("{}.json", group.name));
        let _ = std::fs::remove_file(&json);
        let mut bench = cmd::command(release.join(group.binary));
        bench.args(group.args).arg("--json").arg(&json);
        if group.name == "versus" {
            bench.arg("--peers").arg(peers::dir());
        }
        eprintln!("==> {}", cmd::describe(&bench));
        let outcome = cmd::status(&mut bench);
        let failed = match outcome {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("{} exited with {status}", group.binary)),
            Err(error) => Some(format!("{error:#}")),
        };
        // A failed run may still have written the blocks it finished.
        if json.exists() {
            files.push(json);
        }
        if let Some(why) = failed {
            eprintln!("warning: {}: {why}", group.title);
            missing.push(format!("{}={why} (its output above says why)", group.title));
        }
    }
    write_table(&release, &files, &missing)?;
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `gt-bench table` over the blocks written, with the failed groups named.
fn write_table(release: &Path, files: &[PathBuf], missing: &[String]) -> Result<()> {
    let describe = cmd::probe("git", &["describe", "--always", "--dirty"])
        .map(|d| d.trim().to_owned())
        .unwrap_or_default();
    let mut table = cmd::command(release.join("gt-bench"));
    table
        .args(["table", "--doc", "docs/benchmarks.md", "--agent"])
        .arg(format!("at {describe}"));
    for why in missing {
        table.arg("--missing").arg(why);
    }
    table.args(files);
    eprintln!("==> {}", cmd::describe(&table));
    cmd::run(&mut table)
}
