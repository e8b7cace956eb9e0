//! `cargo xtask`: the project's developer entry point (setup, test, run, bench).
mod bench;
mod cmd;
mod run;
mod setup;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "greentop developer tasks", disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what a fresh machine lacks (nightly rust-src, rustfmt, clippy, bpf-linker, apt packages).
    Setup,
    /// Setup, then fmt check, clippy (host and eBPF), unit and integration tests. Needs root.
    Test {
        /// Extra arguments for `cargo test` (a further `--` separates test-binary arguments).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Setup, build greentop in release mode and run it (via sudo when not root).
    Run {
        /// Arguments for greentop.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every benchmark and write the table into docs/benchmarks.md; with a
    /// target, run that one (`list` lists them).
    Bench {
        /// Benchmark target, e.g. `ebpf`, or `list`.
        target: Option<String>,
        /// Extra arguments for the benchmark binary.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().task {
        Task::Setup => setup::run().map(|()| ExitCode::SUCCESS),
        Task::Test { args } => test::run(&args).map(|()| ExitCode::SUCCESS),
        Task::Run { args } => run::run(&args).map(|()| ExitCode::SUCCESS),
        Task::Bench { target, args } => bench::run(target.as_deref(), &args),
    };
    // One line with the whole cause chain; no backtrace even under RUST_BACKTRACE.
    outcome.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Task {
        match Cli::try_parse_from([&["xtask"], args].concat()) {
            Ok(cli) => cli.task,
            Err(error) => panic!("{args:?}: {error}"),
        }
    }

    #[test]
    fn arguments_after_double_dash_pass_through() {
        let Task::Test { args } = parse(&["test", "--", "ledger", "--", "--nocapture"]) else {
            panic!("not test");
        };
        assert_eq!(args, ["ledger", "--", "--nocapture"]);
        let Task::Run { args } = parse(&["run", "--", "--batch", "-n", "3"]) else {
            panic!("not run");
        };
        assert_eq!(args, ["--batch", "-n", "3"]);
        let Task::Bench { target, args } = parse(&["bench", "ebpf", "--", "--json"]) else {
            panic!("not bench");
        };
        assert_eq!(
            (target.as_deref(), &args[..]),
            (Some("ebpf"), &["--json".to_owned()][..])
        );
    }
}
