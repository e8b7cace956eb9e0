//! `greentop`: htop for watts and gCO₂. Parses the command line and hands over.
use std::io::Write;

mod batch;
mod cli;
mod commands;

use greentop_tui::feed::FeedKind;
use greentop_tui::run::run_live;

fn main() -> std::process::ExitCode {
    let cli: cli::Cli = agent::cli::parse_args("greentop");
    let result = match &cli.command {
        Some(cli::Command::Run(args)) => greentop_tui::jobrun::run(&cli.common, args),
        Some(cli::Command::Replay(args)) => commands::replay(&cli, args),
        Some(command) => commands::run_command(&cli, command).map(|()| 0),
        None if cli.batch || cli.list_sources => batch::run(&cli).map(|()| 0),
        None => {
            let feed = match &cli.connect {
                Some(path) => FeedKind::Connect(path.clone()),
                None => FeedKind::Local(Box::new(cli.common.pipeline_options())),
            };
            run_live(feed, cli.delay_s).map(|end| end.exit_code())
        }
    };
    match result {
        Ok(code) => code.into(),
        Err(err) => {
            // Not eprintln!: it panics when stderr is gone with the terminal.
            let _ = writeln!(std::io::stderr(), "greentop: {err:#}");
            agent::cli::exit_status(&err).into()
        }
    }
}
