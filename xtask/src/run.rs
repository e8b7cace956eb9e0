//! `cargo xtask run`: set up, build greentop in release mode and replace this process
//! with it (through sudo when not root, so the eBPF ledger can load).
use std::{env, os::unix::process::CommandExt, path::PathBuf, process::Command};

use anyhow::{Context, Result};

use crate::{cmd, setup};

pub fn run(args: &[String]) -> Result<()> {
    setup::run()?;
    cmd::run(cmd::command("cargo").args(["build", "--release", "--package", "greentop"]))
        .context("building greentop failed")?;
    let binary = target_dir().join("release").join("greentop");
    // Plain `Command`s: greentop keeps the caller's working directory and environment.
    let mut greentop = if cmd::is_root() {
        Command::new(&binary)
    } else if cmd::on_path("sudo") {
        println!("note: not root; running greentop through sudo");
        let mut sudo = Command::new("sudo");
        sudo.arg("--").arg(&binary);
        sudo
    } else {
        println!("note: not root and no sudo; greentop will fall back to /proc sampling");
        Command::new(&binary)
    };
    greentop.args(args);
    // `exec` only returns on failure.
    let error = greentop.exec();
    Err(error).with_context(|| format!("could not exec `{}`", cmd::describe(&greentop)))
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the workspace root, where
/// the build ran) or `<root>/target`.
fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => cmd::workspace_root().join(dir),
        None => cmd::workspace_root().join("target"),
    }
}
