//! greentop-agent's runtime. The driver ticks on a thread of its own (the pipeline
//! is synchronous and makes blocking system calls) and puts each Interval in one
//! bounded queue per output; the outputs — binary log, socket, stdout, Prometheus
//! metrics — are tokio tasks, so a slow one never delays the tick or another
//! output. Everything is opened (log, socket, metrics port, probes, counters)
//! before the capabilities are dropped and the runtime starts. Signals are handled
//! here: SIGTERM and SIGINT stop (the log's segment is synced and closed), SIGHUP
//! reads the config again and reopens the log. Everything: docs/agent.md.
mod log_task;
mod metrics_task;
mod outputs;
mod start;

use std::sync::Arc;
use std::sync::mpsc::Sender;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{AgentConfig, Config, Settings};
use crate::driver::Control;
use crate::pipeline::PipelineOptions;
use crate::privilege::{self, CapSet};
use crate::sinks::json::JsonLines;
use crate::sinks::log::LogWriter;
use crate::sinks::socket::{self, SocketFile, bind, group_id};
use metrics_task::MetricsOutput;
pub use outputs::{Outputs, Reloaded, sink_task};
use start::{Tick, Ticking, start_driver};

/// Intervals each output may fall behind by before the newest are dropped.
pub const LOG_QUEUE: usize = 64;
pub const SOCKET_QUEUE: usize = 64;
pub const JSON_QUEUE: usize = 64;
pub const METRICS_QUEUE: usize = 64;

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
    /// Capabilities kept once everything is open (`--keep-capability`).
    pub keep_capabilities: CapSet,
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
        let mut agent = self.agent.or(&config.agent_options());
        if self.threads {
            agent.threads = Some(true);
        }
        agent.log_options()?;
        agent.metrics.addr()?;
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
    let metrics = match resolved.agent.metrics.addr()? {
        Some(addr) => Some(MetricsOutput::bind(addr, resolved.agent.metrics.options())?),
        None => None,
    };
    // A signal during start-up waits for its handler instead of killing the agent.
    let signals = start::SignalsHeld::hold()?;
    let keep = opts.keep_capabilities;
    let ticking = start_driver(&opts, &resolved, metrics.as_ref().map(|m| &m.metrics))?;
    // The tick's thread has dropped its own; this is the last thread that holds any,
    // and the runtime's threads, started next, inherit what it keeps.
    let dropped = privilege::drop_to(keep).context("dropping capabilities")?;
    tracing::info!("{dropped}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("greentop-agent")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let opened = Opened {
        socket,
        log,
        metrics,
        signals,
    };
    runtime.block_on(serve(opts, resolved, opened, ticking))
}

/// What `run` opened before the capabilities were dropped.
struct Opened {
    socket: Option<(std::os::unix::net::UnixListener, SocketFile)>,
    log: Option<LogWriter>,
    metrics: Option<MetricsOutput>,
    signals: start::SignalsHeld,
}

async fn serve(
    opts: DaemonOptions,
    resolved: Resolved,
    opened: Opened,
    ticking: Ticking,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    opened.signals.release();
    let (reload_tx, reload_rx) = watch::channel(Arc::new(resolved.agent.clone()));
    let mut outputs = Outputs::new(reload_rx);
    let Opened {
        socket,
        log,
        metrics,
        ..
    } = opened;
    let json = opts.json || (log.is_none() && socket.is_none());
    // One line per output; a new one is one more `outputs.spawn`.
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
    if let Some(MetricsOutput { metrics, listener }) = metrics {
        outputs.spawn("metrics", METRICS_QUEUE, |inbox, _| {
            metrics_task::run(listener, metrics, inbox)
        });
    }
    // The tick starts writing to the queues now.
    let Ticking {
        control,
        mut done,
        sinks,
    } = ticking;
    if sinks.send(outputs.take_sinks()).is_err() {
        anyhow::bail!("the tick thread ended before it started");
    }
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

fn stop(control: &Sender<Control<Tick>>, why: &str) {
    tracing::info!("{why}: stopping");
    let _ = control.send(Control::Stop);
}

/// SIGHUP: the config file again, over which the command line still wins; the
/// pipeline's settings and the interval change between ticks, the log reopens.
/// A config that cannot be used keeps the running one.
fn reload(
    opts: &DaemonOptions,
    current: Resolved,
    control: &Sender<Control<Tick>>,
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
    let _ = control.send(Control::Apply(Box::new(move |tick: &mut Tick| {
        if let Err(err) = tick.source.reconfigure(settings) {
            tracing::error!("SIGHUP: {err:#}; keeping the running carbon settings");
        }
    })));
    if next.agent.interval() != current.agent.interval() {
        let _ = control.send(Control::Period(next.agent.interval()));
    }
    let fixed = |agent: &AgentConfig| {
        let AgentConfig {
            socket,
            socket_group,
            threads,
            metrics,
            ..
        } = agent.clone();
        (socket, socket_group, threads, metrics)
    };
    if fixed(&next.agent) != fixed(&current.agent) {
        tracing::warn!(
            "SIGHUP: the socket, its group, threads and the metrics change only with a restart"
        );
    }
    reload_tx.send_replace(Arc::new(next.agent.clone()));
    tracing::info!("SIGHUP: configuration read again, log reopened");
    next
}
