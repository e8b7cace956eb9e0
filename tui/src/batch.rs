//! Batch mode: one interval per line, as JSON or as a top-like table.
use std::io::Write;
use std::time::Duration;

use agent::driver::{Cadence, Driver};
use agent::model::Interval;
use agent::pipeline::{open_pipeline, open_sources};
use agent::sinks::json::JsonLines;
use agent::sinks::notes::TrustNotes;
use agent::sinks::{Sink, SinkError};

use crate::cli::Cli;

/// Rows of the human-readable table.
const TABLE_ROWS: usize = 25;

pub fn run(cli: &Cli) -> anyhow::Result<()> {
    if cli.list_sources {
        print!("{}", open_sources(&cli.common.source_options())?.report());
        return Ok(());
    }
    let pipeline = open_pipeline(&cli.common.pipeline_options())?;
    if let Some(note) = pipeline.ledger().fidelity().note() {
        eprintln!("greentop: {note}");
    }
    for line in pipeline.sources().startup_lines() {
        eprintln!("greentop: {line}");
    }
    let driver = Driver::new(pipeline)
        .threads(cli.threads)
        .sink(TrustNotes::new("greentop"));
    let mut driver = match cli.json {
        true => driver.sink(JsonLines::new(std::io::stdout()).flushing_each_line()),
        false => driver.sink(Table {
            threads: cli.threads,
        }),
    };
    let cadence = Cadence::every(Duration::from_secs_f64(cli.delay_s)).count(cli.iterations);
    driver.run(cadence)?;
    driver.finish()?;
    Ok(())
}

/// The top-like table on stdout.
struct Table {
    threads: bool,
}

impl Sink for Table {
    fn name(&self) -> &str {
        "table"
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        write!(out, "{}", render_table(interval, self.threads))
            .and_then(|()| out.flush())
            .map_err(|source| SinkError::Stream {
                what: "the table",
                source,
            })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The human-readable form of one interval.
pub fn render_table(interval: &Interval, threads: bool) -> String {
    let sys = &interval.system;
    let wall = interval.interval_s.max(f64::MIN_POSITIVE);
    let mut out = format!(
        "greentop {}  interval {:.2} s  ledger {}  CPU busy {:.2} s idle {:.2} s on {} CPUs\n",
        interval.ts, interval.interval_s, sys.ledger, sys.cpu_seconds, sys.idle_seconds, sys.cpus
    );
    let platform = match sys.platform_source.as_str() {
        "none" | "" => String::new(),
        source => format!("  platform {:.2} W ({source})", sys.platform_joules / wall),
    };
    out.push_str(&format!(
        "energy  CPU {:.2} W ({})  DRAM {:.2} W ({})  GPU {:.2} W ({}){platform}  idle {:.2} W ({})  residual {:.1e} J\n",
        sys.cpu_joules / wall,
        sys.cpu_source,
        sys.dram_joules / wall,
        sys.dram_source,
        sys.gpu_joules / wall,
        sys.gpu_source,
        sys.idle_joules / wall,
        sys.idle_policy,
        sys.balance.residual_joules,
    ));
    out.push_str(&format!(
        "carbon  {:.0} gCO2/kWh {} ({})  {:.3} gCO2/h\n",
        sys.intensity_g_per_kwh,
        sys.region,
        sys.intensity_source,
        sys.gco2 * 3600.0 / wall
    ));
    for note in sys.notes() {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(&format!(
        "{:>8} {:<10} {:>6} {:>8} {:>10} {:>10}  {:<22} {}\n",
        "PID", "USER", "CPU%", "W", "J", "mgCO2", "JOB", "COMMAND"
    ));
    for p in interval.processes.iter().take(TABLE_ROWS) {
        out.push_str(&format!(
            "{:>8} {:<10} {:>6.1} {:>8.3} {:>10.3} {:>10.3}  {:<22} {}{}\n",
            p.pid,
            truncate(&p.user, 10),
            100.0 * p.cpu_seconds / wall,
            p.joules / wall,
            p.joules,
            p.gco2 * 1e3,
            truncate(p.job.as_deref().unwrap_or("-"), 22),
            p.comm,
            if p.exited { " (exited)" } else { "" }
        ));
        for t in p.threads.iter().flatten().filter(|_| threads) {
            out.push_str(&format!(
                "{:>8} {:<10} {:>6.1} {:>8.3} {:>10.3} {:>10.3}  {:<22}   └ {}\n",
                t.tid,
                "",
                100.0 * t.cpu_seconds / wall,
                t.joules / wall,
                t.joules,
                t.gco2 * 1e3,
                "",
                t.comm
            ));
        }
    }
    out.push('\n');
    out
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}
