//! `greentop`: htop for watts and gCO₂. Parses the command line and hands over.
use clap::Parser;

mod batch;
mod cli;

fn main() -> std::process::ExitCode {
    batch::run(cli::Cli::parse())
}
