//! `greentop`: htop for watts and gCO₂. Parses the command line and hands over.
use clap::Parser;

mod batch;
mod cli;
mod commands;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let result = match &cli.command {
        Some(command) => commands::run_command(&cli, command),
        None if cli.batch || cli.list_sources => batch::run(&cli),
        None => greentop_tui::run::run_live(&cli.common, cli.delay_s),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("greentop: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
