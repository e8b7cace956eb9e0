//! `greentop run [OPTIONS] -- CMD ARGS...`: the energy and carbon of one job, like
//! `time` for joules. Starts the command, follows its whole process tree through the
//! pipeline's Intervals, and prints wall and CPU time, joules by domain, watts, the
//! job's share of the machine, gCO₂ and equivalents on stderr; repeats, compares,
//! splits by phase marks and waits for green power on request. See docs/run.md.
mod agent_feed;
pub mod args;
pub mod child;
mod emissions_csv;
pub mod green;
mod host;
pub mod marks;
mod measure;
pub mod record;
pub mod report;
pub mod signals;
pub mod stats;
pub mod text;
pub mod tree;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use agent::carbon::{CarbonResolver, IntensitySource, Series};
use agent::cli::{CommonArgs, LedgerChoice, UsageError};
use agent::config::Settings;
use agent::driver::Driver;
use agent::pipeline::{Pipeline, open_ledger, open_sources};
use agent::probes::Fidelity;
use anyhow::Context;

use agent_feed::AgentFeed;
pub use args::RunArgs;
use green::{Clock, GreenDecision, GreenPolicy, Outlook};
use marks::MarkSocket;
use measure::{LocalFeed, Measurer, RunFeed};
use record::RunRecord;
use report::{Output, Report};

/// Runs the job as asked; returns the exit status to leave with: the command's
/// (128 + signal if a signal ended it), 127/126 if it could not start.
/// `connect` is a `--connect` given before `run`.
pub fn run(before: &CommonArgs, connect: Option<&Path>, args: &RunArgs) -> anyhow::Result<u8> {
    let json = args.json.as_deref().map(Output::check).transpose()?;
    let csv = args
        .emissions_csv
        .as_deref()
        .map(Output::check)
        .transpose()?;
    let connect = args.connect.as_deref().or(connect);
    let result = run_checked(before, connect, args, json.as_ref(), csv.as_ref());
    // A file made for a report that never came (no run, an error) goes again.
    json.iter().chain(&csv).for_each(Output::discard_if_unused);
    result
}

fn run_checked(
    before: &CommonArgs,
    connect: Option<&Path>,
    args: &RunArgs,
    json: Option<&Output>,
    csv: Option<&Output>,
) -> anyhow::Result<u8> {
    let common = args::merge_common(before, &args.common);
    let commands = args.commands().map_err(UsageError)?;
    if let (Some(_), Some(tick)) = (connect, args.tick) {
        return Err(UsageError(format!(
            "--tick {tick} with --connect: the run is measured at the agent's interval \
             (greentop-agent --interval)"
        ))
        .into());
    }
    let settings = common.pipeline_options().settings()?;
    signals::install().context("installing signal handlers")?;
    if let Err(err) = child::become_subreaper() {
        say(&format!(
            "cannot adopt the job's orphans ({err}): processes whose parent exits early may be missed"
        ));
    }
    let user = child::invoking_user().context("finding the user who ran sudo")?;
    let when_green = match args.when_green {
        true => match wait_for_green(&settings, args)? {
            Some(decision) => Some(decision),
            None => {
                say("interrupted while waiting: the command was not started");
                return Ok(interrupted_code());
            }
        },
        false => None,
    };
    let mut feed = choose_feed(&common, &settings, connect, args)?;
    let marks = MarkSocket::open(user.as_ref().map(|u| (u.uid, u.gid)))
        .context("creating the GREENTOP_MARK socket")?;
    let mut measurer = Measurer {
        feed: feed.as_mut(),
        marks: &marks,
        user: user.as_ref(),
    };
    let (runs, code) = run_all(&mut measurer, &commands, args);
    if runs.iter().any(|r| !r.is_empty()) {
        let report = Report::build(args.label.clone(), args.units, when_green, &commands, runs);
        print_summary(&report, args);
        write_outputs(&report, args, json, csv, user.as_ref())?;
    }
    Ok(code)
}

/// The system-wide config, where a greentop-agent run as a service names its socket.
const SYSTEM_CONFIG: &str = "/etc/greentop/config.toml";

/// The `[agent] socket` of the config greentop read, else of the system-wide config
/// at `system` (a user's own config rarely names the machine's agent), with where
/// it was found. A system config this user cannot read or parse is not theirs to
/// fix: it is passed over.
fn configured_socket(
    config: &agent::config::Config,
    system: &Path,
) -> Option<(std::path::PathBuf, String)> {
    let socket = |c: &agent::config::Config| c.agent.as_ref().and_then(|a| a.socket.clone());
    if let Some(path) = socket(config) {
        return Some((path, "the config".to_string()));
    }
    let system_config = agent::config::Config::load(system).ok()?;
    socket(&system_config).map(|path| (path, system.display().to_string()))
}

/// The agent's socket with `--connect`; otherwise the local pipeline, unless it
/// cannot load the probes (no root, no CAP_BPF + CAP_PERFMON: the ledger falls back
/// to /proc) and the config's `[agent] socket` (or the system config's) answers:
/// then that agent.
fn choose_feed(
    common: &CommonArgs,
    settings: &Settings,
    connect: Option<&Path>,
    args: &RunArgs,
) -> anyhow::Result<Box<dyn RunFeed>> {
    if let Some(path) = connect {
        return Ok(Box::new(AgentFeed::open(path, Vec::new())?));
    }
    let opts = common.pipeline_options();
    let ledger = open_ledger(&opts)?;
    let mut note = None;
    // The configs are read for a socket only when the probes could not be loaded.
    let fallback = match (ledger.fidelity(), common.ledger) {
        (Fidelity::Procfs { reason }, LedgerChoice::Auto) => {
            configured_socket(&settings.config, Path::new(SYSTEM_CONFIG))
                .map(|found| (reason, found))
        }
        _ => None,
    };
    if let Some((reason, (path, config))) = &fallback {
        let mut notes = vec![format!(
            "the probes could not be loaded, so greentop-agent's socket from {config} \
             ([agent] socket) measured the run; the probes: {reason}"
        )];
        if let Some(tick) = args.tick {
            notes.push(format!(
                "--tick {tick} does not apply: the agent's intervals set the resolution"
            ));
        }
        match AgentFeed::open(path, notes) {
            Ok(feed) => {
                say(&format!(
                    "measuring with greentop-agent at {}",
                    path.display()
                ));
                return Ok(Box::new(feed));
            }
            Err(err) => {
                note = Some(format!(
                    "the greentop-agent socket named in {config} was not used ({err:#}): \
                     /proc sampling instead"
                ));
            }
        }
    }
    let pipeline = Pipeline::new(ledger, open_sources(&opts.sources)?, settings.clone())?;
    let tick = Duration::from_secs_f64(args.tick_s());
    Ok(Box::new(LocalFeed::new(Driver::new(pipeline), tick, note)))
}

fn write_outputs(
    report: &Report,
    args: &RunArgs,
    json: Option<&Output>,
    csv: Option<&Output>,
    user: Option<&child::User>,
) -> anyhow::Result<()> {
    if let Some(out) = json {
        out.write_json(report, user)?;
    }
    if let Some(out) = csv {
        let first = report.commands.first().map(|c| c.command.as_slice());
        let project = args
            .label
            .clone()
            .unwrap_or_else(|| report::program(first.unwrap_or_default()));
        out.append_csv(report, &project, user)?;
    }
    Ok(())
}

/// Every run, in order; stops at the first failure or stop signal. Returns the runs
/// per command and the exit status to leave with.
fn run_all(
    measurer: &mut Measurer,
    commands: &[Vec<String>],
    args: &RunArgs,
) -> (Vec<Vec<RunRecord>>, u8) {
    let mut runs: Vec<Vec<RunRecord>> = vec![Vec::new(); commands.len()];
    let repeats = usize::try_from(args.repeats()).unwrap_or(usize::MAX);
    let several = repeats > 1 || commands.len() > 1;
    let mut code = 0;
    for round in 0..repeats {
        for index in stats::round_order(round, commands.len()) {
            if let Some(signal) = signals::stop_requested() {
                say(&format!(
                    "stopped by {} after {} run(s)",
                    child::signal_name(signal),
                    runs.iter().map(Vec::len).sum::<usize>()
                ));
                return (runs, code.max(interrupted_code()));
            }
            let record = match measurer.run(&commands[index]) {
                Ok(record) => record,
                Err(err) => {
                    say(&err.to_string());
                    return (runs, err.shell_code());
                }
            };
            code = record.exit.shell_code();
            if several {
                let which = (commands.len() > 1).then_some(index);
                eprint_text(&text::run_line(runs[index].len(), which, &record));
            }
            let failed = !record.exit.success();
            runs[index].push(record);
            if failed && several {
                say("the command failed: no further runs");
                return (runs, code);
            }
        }
    }
    (runs, code)
}

fn print_summary(report: &Report, args: &RunArgs) {
    let label = args.label.as_deref();
    match &report.commands[..] {
        [one] if one.runs.len() == 1 => {
            eprint_text(&text::run_summary(&one.runs[0], label, args.units));
        }
        [one] => eprint_text(&text::repeat_summary(&one.command, &one.summary)),
        many => {
            let commands: Vec<Vec<String>> = many.iter().map(|c| c.command.clone()).collect();
            let summaries: Vec<_> = many.iter().map(|c| c.summary.clone()).collect();
            eprint_text(&text::comparison(&commands, &summaries, &report.comparison));
        }
    }
}

/// Waits as `--when-green` asks; `None` if a signal ended the wait.
fn wait_for_green(settings: &Settings, args: &RunArgs) -> anyhow::Result<Option<GreenDecision>> {
    let policy = GreenPolicy {
        threshold_g_per_kwh: args.threshold,
        urgency: args.urgency,
        max_wait: args.max_wait,
        expected_duration: args.expected_duration,
    };
    let carbon = settings.config.carbon().context("carbon intensity")?;
    let mut resolver = CarbonResolver::new(carbon.clone())?;
    let mut clock = SystemClock;
    let mut log = |line: &str| {
        tracing::info!("when-green: {line}");
        say(&format!("--when-green: {line}"));
    };
    let series = match (&carbon.intensity_g_per_kwh, &carbon.series_path) {
        (None, Some(path)) => Some(Series::from_path(path)?),
        _ => None,
    };
    let live =
        carbon.intensity_g_per_kwh.is_none() && series.is_none() && carbon.provider.is_some();
    let result = if let Some(series) = &series {
        green::wait_for_green(Outlook::Forecast(series), &policy, &mut clock, &mut log)
    } else if live {
        let mut poll = |at: SystemTime| {
            let i = resolver.intensity_at(at);
            match i.source {
                IntensitySource::ElectricityMaps | IntensitySource::CarbonIntensityUk => {
                    Ok(i.g_per_kwh)
                }
                _ => Err(i.note.unwrap_or_else(|| "no value".to_string())),
            }
        };
        green::wait_for_green(Outlook::Live(&mut poll), &policy, &mut clock, &mut log)
    } else {
        let now = resolver.intensity_at(SystemTime::now()).g_per_kwh;
        green::wait_for_green(Outlook::Constant(now), &policy, &mut clock, &mut log)
    };
    Ok(result.ok())
}

/// The real clock; a stop signal ends a sleep.
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&mut self, span: Duration) -> bool {
        let end = Instant::now() + span;
        loop {
            if signals::stop_requested().is_some() {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

/// 128 + the stop signal received (130 if none was).
fn interrupted_code() -> u8 {
    let signal = signals::stop_requested().unwrap_or(libc::SIGINT);
    u8::try_from(128 + signal).unwrap_or(130)
}

/// One line on stderr, prefixed `greentop: `; never panics when stderr is gone.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "greentop: {line}");
}

fn eprint_text(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::configured_socket;
    use agent::config::Config;
    use std::path::{Path, PathBuf};

    #[test]
    fn the_socket_comes_from_the_users_config_then_the_system_one() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("config.toml");
        let own = Config::parse("[agent]\nsocket = \"/run/mine.sock\"\n").unwrap();
        let none = Config::parse("region = \"FR\"\n").unwrap();
        assert_eq!(configured_socket(&none, &system), None, "no system config");
        std::fs::write(&system, "[agent]\nsocket = \"/run/greentop/agent.sock\"\n").unwrap();
        assert_eq!(
            configured_socket(&own, &system),
            Some((PathBuf::from("/run/mine.sock"), "the config".to_string()))
        );
        assert_eq!(
            configured_socket(&none, &system),
            Some((
                PathBuf::from("/run/greentop/agent.sock"),
                system.display().to_string()
            ))
        );
        std::fs::write(&system, "[agent]\nsocket = 3\n").unwrap();
        assert_eq!(
            configured_socket(&none, &system),
            None,
            "a broken one is passed over"
        );
        assert_eq!(
            configured_socket(&none, Path::new("/nonexistent/c.toml")),
            None
        );
    }
}
