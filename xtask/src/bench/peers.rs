//! The peers `cargo xtask bench` measures greentop against, installed under
//! target/peers from the package registries by their ordinary clients: Scaphandre
//! 1.0.0 (`cargo install`) and CodeCarbon (`pip install` into a venv). Only the
//! benchmark needs them; `cargo xtask setup` does not install them.
//!
//! A peer that cannot be installed (no network, no python3) is not an error: its
//! reason goes into `target/peers/NAME.why`, which `gt-bench versus` reports in the
//! table in place of the peer's figures.
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::cmd;

/// Scaphandre's version, the one issue 14 compares with.
pub const SCAPHANDRE_VERSION: &str = "1.0.0";
/// CodeCarbon's version the table was measured with.
pub const CODECARBON_VERSION: &str = "3.3.2";

/// `target/peers` of the workspace.
pub fn dir() -> PathBuf {
    cmd::workspace_root().join("target/peers")
}

/// Installs each missing peer; records why one could not be.
pub fn install() -> Result<()> {
    let peers = dir();
    fs::create_dir_all(&peers).with_context(|| format!("creating {}", peers.display()))?;
    let scaphandre = peers.join("bin/scaphandre");
    if !scaphandre.exists() {
        eprintln!(
            "==> installing Scaphandre {SCAPHANDRE_VERSION} (cargo install, several minutes)"
        );
        let mut install = cmd::command("cargo");
        install
            .args([
                "install",
                "scaphandre",
                "--locked",
                "--version",
                SCAPHANDRE_VERSION,
            ])
            .arg("--root")
            .arg(&peers)
            .arg("--target-dir")
            .arg(cmd::workspace_root().join("target/peers-build"));
        attempt(&peers, "scaphandre", &mut install)?;
    }
    let python = peers.join("venv/bin/python");
    if !has_codecarbon(&python) {
        eprintln!("==> installing CodeCarbon {CODECARBON_VERSION} (pip, in target/peers/venv)");
        let mut venv = cmd::command("python3");
        venv.args(["-m", "venv"]).arg(peers.join("venv"));
        if attempt(&peers, "codecarbon", &mut venv)? {
            let mut pip = cmd::command(peers.join("venv/bin/pip"));
            pip.args(["install", &format!("codecarbon=={CODECARBON_VERSION}")]);
            attempt(&peers, "codecarbon", &mut pip)?;
        }
    }
    Ok(())
}

fn has_codecarbon(python: &Path) -> bool {
    python.exists() && cmd::probe(python, &["-c", "import codecarbon"]).is_some()
}

/// Runs an installing command with its output in `peers/NAME-install.log`; on
/// failure writes `peers/NAME.why` (the command and the log's first `error` line,
/// else its last line) and
/// returns false; on success removes an old `NAME.why`.
fn attempt(peers: &Path, name: &str, install: &mut Command) -> Result<bool> {
    let log_path = peers.join(format!("{name}-install.log"));
    let why_path = peers.join(format!("{name}.why"));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    install
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null());
    let outcome = install.status();
    let failure = match outcome {
        Ok(status) if status.success() => {
            let _ = fs::remove_file(&why_path);
            return Ok(true);
        }
        Ok(status) => {
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            let first_error = text.lines().find(|l| l.trim_start().starts_with("error"));
            let last = text.lines().rfind(|l| !l.trim().is_empty());
            format!(
                "`{}` failed ({status}): {}",
                cmd::describe(install),
                first_error.or(last).unwrap_or("").trim()
            )
        }
        Err(error) => format!("`{}` could not start: {error}", cmd::describe(install)),
    };
    eprintln!("warning: {name} will be reported as not installed: {failure}");
    fs::write(&why_path, format!("{failure}\n"))
        .with_context(|| format!("writing {}", why_path.display()))?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_install_leaves_its_reason_and_a_later_success_clears_it() {
        let peers = std::env::temp_dir().join(format!("xtask-peers-{}", std::process::id()));
        fs::create_dir_all(&peers).unwrap();
        let mut failing = Command::new("sh");
        failing.args([
            "-c",
            "echo compiling; echo 'error: no network'; echo 'more'; exit 3",
        ]);
        assert!(!attempt(&peers, "tool", &mut failing).unwrap());
        let why = fs::read_to_string(peers.join("tool.why")).unwrap();
        assert!(
            why.contains("exit status: 3") && why.contains("error: no network"),
            "{why}"
        );
        assert!(attempt(&peers, "tool", &mut Command::new("true")).unwrap());
        assert!(!peers.join("tool.why").exists());
        let mut missing = Command::new(peers.join("no-such-program"));
        assert!(!attempt(&peers, "tool", &mut missing).unwrap());
        let why = fs::read_to_string(peers.join("tool.why")).unwrap();
        assert!(why.contains("could not start"), "{why}");
        fs::remove_dir_all(&peers).unwrap();
    }
}
