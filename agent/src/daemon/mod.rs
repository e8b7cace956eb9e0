//! greentop-agent's runtime. The driver ticks on a thread of its own (the pipeline
//! is synchronous and makes blocking system calls) and puts each Interval in one
//! bounded queue per output; the outputs — binary log, socket, stdout — are tokio
//! tasks, so a slow one never delays the tick or another output. Signals are
//! handled here: SIGTERM and SIGINT stop (the log's segment is synced and closed),
//! SIGHUP reads the config again and reopens the log. Everything: docs/agent.md.
mod log_task;
mod outputs;

use std::sync::Arc;
use std::sync::mpsc::Sender;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{oneshot, watch};

use crate::config::{AgentConfig, Config, Settings};
use crate::driver::{Cadence, Control, Driver, Ended, spawn_with};
use crate::pipeline::{Pipeline, PipelineOptions, open_ledger, open_sources};
use crate::sinks::json::JsonLines;
use crate::sinks::log::LogWriter;
use crate::sinks::notes::TrustNotes;
use crate::sinks::queue::QueueSink;
use crate::sinks::socket::{self, SocketFile, bind, group_id};
pub use outputs::{Outputs, Reloaded, sink_task};

/// Intervals each output may fall behind by before the newest are dropped.
pub const LOG_QUEUE: usize = 64;
pub const SOCKET_QUEUE: usize = 64;
pub const JSON_QUEUE: usize = 64;

/// What the daemon is asked to do, as plain values.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub pipeline: PipelineOptions,
    /// The agent's options given on the command line: they win over the config
    /// file's `[agent]` table, at start and at every reload.
    pub agent: AgentConfig,
    /// Stop after this many intervals.
    pub count: Option<u64>,
    /// `--threads`: per-thread rows (else the file's `threads`).
    pub threads: bool,
    /// JSON lines on stdout even when there is a log or a socket.
    pub json: bool,
}

/// The options merged with the config file.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub settings: Settings,
    pub agent: AgentConfig,
}

impl DaemonOptions {
    /// Reads the config file and merges the command line over it.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let overrides = &self.pipeline.overrides;
        let config = Config::load_or_default(overrides.config.as_deref())?;
        let mut agent = self
            .agent
            .or(config.agent.as_ref().unwrap_or(&AgentConfig::default()));
        if self.threads {
            agent.threads = Some(true);
        }
        agent.log_options()?;
        let settings = Settings::merge(config, overrides, self.pipeline.procfs_root());
        Ok(Resolved { settings, agent })
    }
}

/// Runs until SIGTERM/SIGINT, the count, or an output fails.
pub fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    let resolved = opts.resolve()?;
    // Before anything slow: a second agent on the same socket stops here.
    let socket = match &resolved.agent.socket {
        Some(path) => {
            let gid = resolved.agent.socket_group.as_deref().map(group_id);
            Some(bind(path, gid.transpose()?)?)
        }
        None => None,
    };
    let log = match resolved.agent.log_options()? {
        Some(log) => Some(LogWriter::open(log).context("opening the log")?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("greentop-agent")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(opts, resolved, socket, log))
}

async fn serve(
    opts: DaemonOptions,
    resolved: Resolved,
    socket: Option<(std::os::unix::net::UnixListener, SocketFile)>,
    log: Option<LogWriter>,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let (reload_tx, reload_rx) = watch::channel(Arc::new(resolved.agent.clone()));
    let mut outputs = Outputs::new(reload_rx);
    let json = opts.json || (log.is_none() && socket.is_none());
    // One line per output; a new one (metrics, …) is one more `outputs.spawn`.
    if let Some(writer) = log {
        outputs.spawn("log", LOG_QUEUE, |inbox, reload| {
            log_task::run(writer, inbox, reload)
        });
    }
    if let Some((listener, file)) = socket {
        outputs.spawn("socket", SOCKET_QUEUE, |inbox, _| {
            socket::serve(listener, file, inbox)
        });
    }
    if json {
        let stdout = JsonLines::new(std::io::stdout());
        outputs.spawn("json", JSON_QUEUE, |inbox, _| sink_task(stdout, inbox));
    }
    let (control, done) = start_driver(&opts, &resolved, outputs.take_sinks()).await?;
    let mut done = done;
    let mut current = resolved;
    let mut failed = None;
    let ended = loop {
        tokio::select! {
            _ = term.recv() => stop(&control, "SIGTERM"),
            _ = int.recv() => stop(&control, "SIGINT"),
            _ = hup.recv() => current = reload(&opts, current, &control, &reload_tx),
            Some(err) = outputs.failed() => {
                failed.get_or_insert(err);
                stop(&control, "an output failed");
            }
            result = &mut done => break result,
        }
    };
    drop(control);
    let closing = outputs.join().await;
    let ended = ended.map_err(|_| anyhow::anyhow!("the tick thread ended without a word"))?;
    ended.context("ticking")?;
    match failed {
        Some(err) => Err(err),
        None => closing,
    }
}

type Done = oneshot::Receiver<Result<Ended, crate::driver::DriverError>>;

/// Opens the pipeline and starts ticking on a thread of its own.
async fn start_driver(
    opts: &DaemonOptions,
    resolved: &Resolved,
    sinks: Vec<QueueSink>,
) -> anyhow::Result<(Sender<Control<Pipeline>>, Done)> {
    let (control_tx, control_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let (pipeline_opts, settings) = (opts.pipeline.clone(), resolved.settings.clone());
    let threads = resolved.agent.threads.unwrap_or(false);
    let cadence = Cadence::every(resolved.agent.interval())
        .count(opts.count)
        .control(control_rx);
    let body = move |pipeline| {
        let mut driver = Driver::new(pipeline)
            .threads(threads)
            .keep_going()
            .sink(TrustNotes::new("greentop-agent"));
        for sink in sinks {
            driver.push(Box::new(sink), true);
        }
        let result = driver.run(cadence);
        let closed = driver.finish();
        let _ = done_tx.send(result.and_then(|ended| closed.map(|()| ended)));
    };
    // Opening loads the probes (a second or two): not on an async worker.
    tokio::task::spawn_blocking(move || {
        spawn_with("tick", move || open(&pipeline_opts, settings), body)
    })
    .await??;
    Ok((control_tx, done_rx))
}

/// The pipeline, with what it says about itself at start on stderr.
fn open(opts: &PipelineOptions, settings: Settings) -> anyhow::Result<Pipeline> {
    let sources = open_sources(&opts.sources)?;
    let pipeline = Pipeline::new(open_ledger(opts)?, sources, settings)?;
    if let Some(note) = pipeline.ledger().fidelity().note() {
        tracing::warn!("{note}");
    }
    for line in pipeline.sources().startup_lines() {
        tracing::info!("{line}");
    }
    Ok(pipeline)
}

fn stop(control: &Sender<Control<Pipeline>>, why: &str) {
    tracing::info!("{why}: stopping");
    let _ = control.send(Control::Stop);
}

/// SIGHUP: the config file again, over which the command line still wins; the
/// pipeline's settings and the interval change between ticks, the log reopens.
/// A config that cannot be used keeps the running one.
fn reload(
    opts: &DaemonOptions,
    current: Resolved,
    control: &Sender<Control<Pipeline>>,
    reload_tx: &watch::Sender<Reloaded>,
) -> Resolved {
    let next = match opts.resolve() {
        Ok(next) => next,
        Err(err) => {
            tracing::error!("SIGHUP: {err:#}; keeping the running configuration");
            return current;
        }
    };
    let settings = next.settings.clone();
    let _ = control.send(Control::Apply(Box::new(move |pipeline: &mut Pipeline| {
        if let Err(err) = pipeline.reconfigure(settings) {
            tracing::error!("SIGHUP: {err:#}; keeping the running carbon settings");
        }
    })));
    if next.agent.interval() != current.agent.interval() {
        let _ = control.send(Control::Period(next.agent.interval()));
    }
    let fixed = (
        &next.agent.socket,
        &next.agent.socket_group,
        next.agent.threads,
    );
    if fixed
        != (
            &current.agent.socket,
            &current.agent.socket_group,
            current.agent.threads,
        )
    {
        tracing::warn!("SIGHUP: the socket, its group and threads change only with a restart");
    }
    reload_tx.send_replace(Arc::new(next.agent.clone()));
    tracing::info!("SIGHUP: configuration read again, log reopened");
    next
}
