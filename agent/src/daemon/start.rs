//! Start-up on the way to dropping capabilities: the tick's thread opens the
//! pipeline (probes, counters) and drops its own before it reports ready, and the
//! usual stop/reload signals wait, held, until their handlers are in place.
use std::sync::mpsc::{Receiver, Sender};

use anyhow::Context;
use tokio::sync::oneshot;

use super::{DaemonOptions, Resolved};
use crate::config::Settings;
use crate::driver::{Cadence, Control, Driver, DriverError, Ended, spawn_with};
use crate::pipeline::{Pipeline, PipelineOptions, open_ledger, open_sources};
use crate::privilege;
use crate::sinks::metrics::{HealthSink, Metrics, Timed};
use crate::sinks::notes::TrustNotes;
use crate::sinks::queue::QueueSink;

/// What the driver ticks: the pipeline, timed for the metrics.
pub type Tick = Timed<Pipeline>;

/// A tick thread with its pipeline open, waiting for its outputs' queues.
pub struct Ticking {
    pub control: Sender<Control<Tick>>,
    pub done: oneshot::Receiver<Result<Ended, DriverError>>,
    /// The queues go here once the outputs run; the first tick follows.
    pub sinks: Sender<Vec<QueueSink>>,
}

/// Opens the pipeline on a thread of its own, which then drops its capabilities to
/// `opts.keep_capabilities`; returns once both are done (or with why not).
pub fn start_driver(
    opts: &DaemonOptions,
    resolved: &Resolved,
    metrics: Option<&Metrics>,
) -> anyhow::Result<Ticking> {
    let (control_tx, control_rx) = std::sync::mpsc::channel();
    let (sinks_tx, sinks_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let (pipeline_opts, settings) = (opts.pipeline.clone(), resolved.settings.clone());
    let keep = opts.keep_capabilities;
    let threads = resolved.agent.threads.unwrap_or(false);
    let cadence = Cadence::every(resolved.agent.interval())
        .count(opts.count)
        .control(control_rx);
    let metrics = metrics.cloned();
    let body = move |pipeline: Pipeline| {
        let sinks: Receiver<Vec<QueueSink>> = sinks_rx;
        let Ok(sinks) = sinks.recv() else { return };
        let mut driver = Driver::new(Timed::new(pipeline, metrics.clone()))
            .threads(threads)
            .keep_going()
            .sink(TrustNotes::new("greentop-agent"));
        if let Some(metrics) = metrics {
            for sink in &sinks {
                metrics.register_sink(crate::sinks::Sink::name(sink));
            }
            driver = driver.optional_sink(HealthSink::new(metrics));
        }
        for sink in sinks {
            driver.push(Box::new(sink), true);
        }
        let result = driver.run(cadence);
        let closed = driver.finish();
        let _ = done_tx.send(result.and_then(|ended| closed.map(|()| ended)));
    };
    let open = move || {
        let pipeline = open(&pipeline_opts, settings)?;
        privilege::drop_this_thread(keep).context("dropping the tick thread's capabilities")?;
        Ok(pipeline)
    };
    spawn_with("tick", open, body)?;
    Ok(Ticking {
        control: control_tx,
        done: done_rx,
        sinks: sinks_tx,
    })
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

/// SIGTERM, SIGINT and SIGHUP blocked in this thread and every thread it starts,
/// until [`SignalsHeld::release`] (after the handlers exist) unblocks them here: one
/// that came meanwhile is then handled, not fatal.
pub struct SignalsHeld(libc::sigset_t);

impl SignalsHeld {
    pub fn hold() -> anyhow::Result<SignalsHeld> {
        // SAFETY: sigemptyset/sigaddset fill a sigset_t we own; pthread_sigmask
        // reads it and changes only the calling thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, signal);
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(std::io::Error::from_raw_os_error(rc))
                    .context("blocking signals during start-up");
            }
            Ok(SignalsHeld(set))
        }
    }

    /// Unblocks them in the calling thread (the one that called `hold`), which
    /// then takes every one sent to the agent.
    pub fn release(self) {
        // SAFETY: as in `hold`.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &self.0, std::ptr::null_mut()) };
        if rc != 0 {
            tracing::warn!(
                "unblocking signals: {}",
                std::io::Error::from_raw_os_error(rc)
            );
        }
    }
}
