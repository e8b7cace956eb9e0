//! `cargo xtask setup`: idempotently installs what a fresh machine lacks to build and
//! test greentop, printing one line per step.
//!
//! Nothing is done for tracefs/debugfs or for the `bpf`/`perf_event` syscalls: the
//! agent does not need the former, and the tests report when the latter are unusable.
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// The bpf-linker release aya-build is known to work with.
const BPF_LINKER_VERSION: &str = "0.10.4";

/// Components of the nightly toolchain: aya-build compiles agent-ebpf with
/// `-Z build-std=core` (needs rust-src) and `cargo xtask test` lints it (needs clippy).
const NIGHTLY_COMPONENTS: &[&str] = &["rust-src", "clippy"];

/// Debian packages the tests use, each with a command it provides (the fallback check
/// where there is no dpkg).
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("tmux", "tmux"),
    ("procps", "ps"),
    ("util-linux", "setpriv"),
    ("gcc", "cc"),
    // `promtool check metrics|config` on a live scrape and docs/deploy/prometheus.yml.
    ("prometheus", "promtool"),
    // `systemd-analyze verify` on docs/deploy/greentop-agent.service.
    ("systemd", "systemd-analyze"),
];

pub fn run() -> Result<()> {
    nightly_toolchain()?;
    stable_component("rustfmt", "fmt")?;
    stable_component("clippy", "clippy")?;
    bpf_linker()?;
    debian_packages()
}

/// Makes sure the nightly toolchain and [`NIGHTLY_COMPONENTS`] are installed.
fn nightly_toolchain() -> Result<()> {
    if !cmd::on_path("rustup") {
        bail!(
            "rustup is not on PATH: greentop needs rustup with a stable and a nightly \
             toolchain; install rustup first"
        );
    }
    let list_args = ["component", "list", "--toolchain", "nightly", "--installed"];
    let Some(installed) = cmd::probe("rustup", &list_args) else {
        println!("installing: nightly toolchain (minimal profile) with rust-src and clippy");
        let mut install = cmd::command("rustup");
        install.args(["toolchain", "install", "nightly", "--profile", "minimal"]);
        for component in NIGHTLY_COMPONENTS {
            install.args(["--component", component]);
        }
        return cmd::run(&mut install).context(
            "the nightly toolchain is missing and `rustup toolchain install nightly` failed; \
             aya-build needs nightly with rust-src to build agent-ebpf",
        );
    };
    for component in NIGHTLY_COMPONENTS {
        if has_component(&installed, component) {
            println!("ok: nightly {component} already present");
            continue;
        }
        println!("installing: nightly {component}");
        cmd::run(cmd::command("rustup").args([
            "component",
            "add",
            component,
            "--toolchain",
            "nightly",
        ]))
        .with_context(|| {
            format!("`rustup component add {component} --toolchain nightly` failed")
        })?;
    }
    Ok(())
}

/// Whether `rustup component list --installed` output lists `component` (either bare,
/// like `rust-src`, or with a target suffix, like `clippy-x86_64-unknown-linux-gnu`).
fn has_component(installed: &str, component: &str) -> bool {
    installed.lines().map(str::trim).any(|line| {
        line == component
            || line
                .strip_prefix(component)
                .is_some_and(|rest| rest.starts_with('-') && rest[1..].contains("-unknown-"))
    })
}

/// Makes sure `cargo <subcommand>` works on the default (stable) toolchain.
fn stable_component(component: &str, subcommand: &str) -> Result<()> {
    if cmd::probe("cargo", &[subcommand, "--version"]).is_some() {
        println!("ok: {component} already present");
        return Ok(());
    }
    println!("installing: {component} (rustup component add)");
    cmd::run(cmd::command("rustup").args(["component", "add", component]))
        .with_context(|| format!("`rustup component add {component}` failed"))
}

/// Makes sure bpf-linker [`BPF_LINKER_VERSION`] is on PATH or in the cargo bin directory.
fn bpf_linker() -> Result<()> {
    let mut candidates = vec![PathBuf::from("bpf-linker")];
    if let Some(bin) = cmd::cargo_bin_dir() {
        candidates.push(bin.join("bpf-linker"));
    }
    for candidate in &candidates {
        let Some(version) = cmd::probe(candidate, &["--version"]) else {
            continue;
        };
        if version
            .split_whitespace()
            .any(|word| word == BPF_LINKER_VERSION)
        {
            println!("ok: bpf-linker {BPF_LINKER_VERSION} already present");
            return Ok(());
        }
    }
    println!("installing: bpf-linker {BPF_LINKER_VERSION} (cargo install, takes a few minutes)");
    cmd::run(cmd::command("cargo").args([
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--locked",
    ]))
    .with_context(|| format!("`cargo install bpf-linker --version {BPF_LINKER_VERSION}` failed"))
}

/// Makes sure [`DEBIAN_PACKAGES`] are installed, with apt-get when root.
fn debian_packages() -> Result<()> {
    let names: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .map(|(package, _)| *package)
        .collect();
    if !cmd::on_path("dpkg-query") {
        return commands_without_dpkg();
    }
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|package| !dpkg_installed(package))
        .collect();
    if missing.is_empty() {
        println!("ok: packages {} already present", names.join(" "));
        return Ok(());
    }
    let missing = missing.join(" ");
    if !cmd::is_root() {
        bail!(
            "Debian packages missing: {missing}; install them as root with:\n  \
             sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends {missing}"
        );
    }
    println!("installing: {missing} (apt-get)");
    cmd::run(
        cmd::command("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("`apt-get update` failed")?;
    cmd::run(
        cmd::command("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(missing.split(' '))
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .with_context(|| format!("`apt-get install {missing}` failed"))
}

/// Whether dpkg reports `package` as installed.
fn dpkg_installed(package: &str) -> bool {
    cmd::probe("dpkg-query", &["-W", "-f=${Status}", package])
        .is_some_and(|status| status.contains("install ok installed"))
}

/// Without dpkg (not Debian), checks the commands the packages provide instead.
fn commands_without_dpkg() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .filter(|(_, command)| !cmd::on_path(command))
        .map(|(_, command)| *command)
        .collect();
    if missing.is_empty() {
        println!(
            "ok: tmux, ps, setpriv, cc, promtool and systemd-analyze already present \
             (no dpkg; checked PATH)"
        );
        return Ok(());
    }
    bail!(
        "no dpkg here and these commands are missing: {}; install them with the \
         system's package manager (Debian packages: tmux procps util-linux gcc \
         prometheus systemd)",
        missing.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_components_with_and_without_target_suffix() {
        let list = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\nrust-src\n";
        assert!(has_component(list, "rust-src"));
        assert!(has_component(list, "clippy"));
        assert!(!has_component(list, "rustfmt"));
        assert!(!has_component("rust-src-extra\n", "rust-src"));
    }
}
