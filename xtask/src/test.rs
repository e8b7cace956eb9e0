//! `cargo xtask test`: the whole check, in order, stopping at the first failing step:
//! setup, rustfmt, clippy (host and eBPF), unit tests, then the root-only integration
//! tests one at a time (they measure real CPU time).
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cmd, setup};

/// The package holding the integration tests that load eBPF programs.
const INTEGRATION_PACKAGE: &str = "greentop-tests";

/// The eBPF crate: built for the BPF target by aya-build, never for the host.
const EBPF_PACKAGE: &str = "agent-ebpf";

struct Step {
    name: &'static str,
    command: Command,
}

/// Tests counted from the `test result:` lines of every cargo test run.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    /// Adds one libtest summary line, e.g.
    /// `test result: ok. 7 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; …`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// Runs a `cargo test` command, echoing its output and counting its results.
fn run_counting(command: &mut Command, tally: &mut Tally) -> Result<()> {
    use std::io::{BufRead, BufReader};
    command.stdout(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", cmd::describe(command)))?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading test output")?;
            println!("{line}");
            tally.add_line(&line);
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() {
        bail!("{} exited with {status}", cmd::describe(command));
    }
    Ok(())
}

pub fn run(extra: &[String]) -> Result<()> {
    setup::run()?;
    if !cmd::is_root() {
        bail!(
            "the eBPF integration tests ({INTEGRATION_PACKAGE}) need root to load BPF \
             programs and open perf events; rerun as root, e.g. \
             `sudo -E env \"PATH=$PATH\" cargo xtask test`"
        );
    }
    let (cargo_args, test_args) = split_extra(extra);
    let steps = steps(cargo_args, test_args);
    let total = steps.len();
    let mut tally = Tally::default();
    for (index, Step { name, mut command }) in steps.into_iter().enumerate() {
        println!(
            "\n==> [{}/{total}] {name}: {}",
            index + 1,
            cmd::describe(&command)
        );
        let result = if name.ends_with("tests") {
            run_counting(&mut command, &mut tally)
        } else {
            cmd::run(&mut command)
        };
        result.with_context(|| format!("step `{name}` failed"))?;
    }
    println!("\nok: all {total} steps passed");
    anyhow::ensure!(tally.passed > 0, "no test ran");
    println!(
        "tests: {} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.ignored
    );
    Ok(())
}

/// Splits the extra arguments at the first `--`: before it they go to `cargo test`,
/// after it to the test binaries.
fn split_extra(extra: &[String]) -> (&[String], &[String]) {
    match extra.iter().position(|arg| arg == "--") {
        Some(at) => (&extra[..at], &extra[at + 1..]),
        None => (extra, &[]),
    }
}

fn steps(cargo_args: &[String], test_args: &[String]) -> Vec<Step> {
    let mut fmt = cmd::command("cargo");
    fmt.args(["fmt", "--all", "--", "--check"]);

    let mut clippy = cmd::command("cargo");
    clippy.args([
        "clippy",
        "--workspace",
        "--exclude",
        EBPF_PACKAGE,
        "--all-targets",
    ]);
    clippy.args(["--", "-D", "warnings"]);

    let mut unit = cmd::command("cargo");
    unit.args(["test", "--workspace", "--exclude", EBPF_PACKAGE]);
    unit.args(["--exclude", INTEGRATION_PACKAGE])
        .args(cargo_args);
    if !test_args.is_empty() {
        unit.arg("--").args(test_args);
    }

    let mut integration = cmd::command("cargo");
    integration
        .args(["test", "--package", INTEGRATION_PACKAGE])
        .args(cargo_args);
    integration.args(["--", "--test-threads=1"]).args(test_args);
    integration.env("RUST_TEST_THREADS", "1");

    vec![
        Step {
            name: "rustfmt",
            command: fmt,
        },
        Step {
            name: "clippy (host)",
            command: clippy,
        },
        Step {
            name: "clippy (eBPF)",
            command: ebpf_clippy(),
        },
        Step {
            name: "unit tests",
            command: unit,
        },
        Step {
            name: "integration tests",
            command: integration,
        },
    ]
}

/// Lints agent-ebpf the way aya-build compiles it: nightly, the BPF target, `core`
/// built from rust-src, and the `bpf_target_arch` cfg aya-build passes in its
/// `CARGO_ENCODED_RUSTFLAGS` (`-Cdebuginfo` and `-Clink-arg=--btf` only matter for
/// codegen and linking, which clippy does not do). A separate target directory keeps
/// these artifacts from invalidating the host build's.
fn ebpf_clippy() -> Command {
    let mut clippy = cmd::command("cargo");
    clippy.args(["+nightly", "clippy", "--package", EBPF_PACKAGE]);
    clippy.args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"]);
    clippy.args(["--", "-D", "warnings"]);
    clippy.env("CARGO_TARGET_DIR", "target/ebpf-clippy");
    clippy.env(
        "CARGO_ENCODED_RUSTFLAGS",
        format!("--cfg=bpf_target_arch=\"{}\"", bpf_target_arch()),
    );
    // As aya-build does: a RUSTC inherited from an outer cargo would pin the toolchain.
    clippy
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    clippy
}

/// The architecture whose kernel headers the eBPF code targets: the host's, with the
/// same riscv64 fix-up as aya-build.
fn bpf_target_arch() -> &'static str {
    match std::env::consts::ARCH {
        arch if arch.starts_with("riscv64") => "riscv64",
        arch => arch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn extra_args_split_at_the_first_double_dash() {
        let extra = strings(&["ledger", "--", "--nocapture", "--", "x"]);
        let (cargo_args, test_args) = split_extra(&extra);
        assert_eq!(cargo_args, strings(&["ledger"]));
        assert_eq!(test_args, strings(&["--nocapture", "--", "x"]));
        let extra = strings(&["--release"]);
        assert_eq!(split_extra(&extra), (&extra[..], &[][..]));
    }

    #[test]
    fn test_result_lines_are_tallied() {
        let mut tally = Tally::default();
        for line in [
            "test result: ok. 7 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 12.38s",
            "running 7 tests",
            "test result: FAILED. 2 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out",
            "test passed_thing ... ok",
        ] {
            tally.add_line(line);
        }
        assert_eq!(
            tally,
            Tally {
                passed: 9,
                failed: 3,
                ignored: 1
            }
        );
    }

    #[test]
    fn integration_tests_run_one_at_a_time() {
        let steps = steps(&[], &strings(&["--nocapture"]));
        let integration = cmd::describe(&steps[4].command);
        assert!(
            integration.ends_with("-- --test-threads=1 --nocapture"),
            "{integration}"
        );
        let unit = cmd::describe(&steps[3].command);
        assert!(!unit.contains("--test-threads"), "{unit}");
    }
}
