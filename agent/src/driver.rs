//! The one loop: a cadence says when, the source ticks, and the Interval goes to
//! every sink in order. Batch output, the live view's in-process feed, the daemon
//! and `greentop run` all tick through a `Driver`; nobody writes a second loop.
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::model::{Interval, SinkHealthJson};
use crate::pipeline::Pipeline;
use crate::probes::LedgerError;
use crate::sinks::{Sink, SinkError};

/// What produces Intervals on demand.
pub trait Source {
    /// Ends the current interval and returns it; `threads` adds per-thread rows.
    fn tick(&mut self, threads: bool) -> Result<Interval, LedgerError>;
}

impl Source for Pipeline {
    fn tick(&mut self, threads: bool) -> Result<Interval, LedgerError> {
        Pipeline::tick(self, threads)
    }
}

/// Any closure is a source (tests, synthetic feeds).
impl<F: FnMut(bool) -> Result<Interval, LedgerError>> Source for F {
    fn tick(&mut self, threads: bool) -> Result<Interval, LedgerError> {
        self(threads)
    }
}

/// A request to a running driver, handled between ticks.
pub enum Control<S> {
    /// Tick every this long from the last tick on.
    Period(Duration),
    /// Change the source (new settings after a reload).
    Apply(Box<dyn FnOnce(&mut S) + Send>),
    /// Return from `run` without another tick.
    Stop,
}

/// When to tick: every `period`, the first one period after `run` starts, at most
/// `count` times, with requests from `control` handled while waiting (its sender
/// gone means stop).
pub struct Cadence<S> {
    pub period: Duration,
    pub count: Option<u64>,
    pub control: Option<Receiver<Control<S>>>,
}

impl<S> Cadence<S> {
    pub fn every(period: Duration) -> Self {
        Cadence {
            period,
            count: None,
            control: None,
        }
    }

    pub fn count(mut self, count: Option<u64>) -> Self {
        self.count = count;
        self
    }

    pub fn control(mut self, control: Receiver<Control<S>>) -> Self {
        self.control = Some(control);
        self
    }

    /// Sleeps until `at`, or until a request comes.
    fn wait(&self, at: Instant) -> Option<Control<S>> {
        let left = at.saturating_duration_since(Instant::now());
        match &self.control {
            None => {
                std::thread::sleep(left);
                None
            }
            Some(control) => match control.recv_timeout(left) {
                Ok(request) => Some(request),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Control::Stop),
            },
        }
    }
}

/// Why `run` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The cadence's count of ticks was done.
    Count,
    /// `Control::Stop`, or the control channel closed.
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("tick failed")]
    Tick(#[source] LedgerError),
    #[error("sink {name}")]
    Sink {
        name: String,
        #[source]
        source: SinkError,
    },
}

struct Slot {
    sink: Box<dyn Sink + Send>,
    /// A failure of a required sink ends `run`; others are warned about and counted.
    required: bool,
    failed: u64,
    last_error: Option<String>,
}

/// A source and the sinks its Intervals go to.
pub struct Driver<S> {
    source: S,
    threads: bool,
    stop_on_tick_error: bool,
    slots: Vec<Slot>,
}

impl<S: Source> Driver<S> {
    /// A driver that stops at the first failed tick; see `keep_going`.
    pub fn new(source: S) -> Self {
        Driver {
            source,
            threads: false,
            stop_on_tick_error: true,
            slots: Vec::new(),
        }
    }

    /// Per-thread rows in every Interval.
    pub fn threads(mut self, threads: bool) -> Self {
        self.threads = threads;
        self
    }

    /// A failed tick is passed to the sinks (`Sink::missed`) and the loop goes on.
    pub fn keep_going(mut self) -> Self {
        self.stop_on_tick_error = false;
        self
    }

    /// A sink whose failure ends the loop (stdout in batch mode: a closed pipe ends it).
    pub fn sink(mut self, sink: impl Sink + Send + 'static) -> Self {
        self.push(Box::new(sink), true);
        self
    }

    /// A sink whose failure is warned about, counted in the next Interval's
    /// `system.sinks` and retried on the next tick.
    pub fn optional_sink(mut self, sink: impl Sink + Send + 'static) -> Self {
        self.push(Box::new(sink), false);
        self
    }

    pub fn push(&mut self, sink: Box<dyn Sink + Send>, required: bool) {
        self.slots.push(Slot {
            sink,
            required,
            failed: 0,
            last_error: None,
        });
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Ticks until the cadence's count is done or it is told to stop.
    pub fn run(&mut self, mut cadence: Cadence<S>) -> Result<Ended, DriverError> {
        let mut next = Instant::now() + cadence.period;
        let mut done = 0u64;
        loop {
            if cadence.count.is_some_and(|n| done >= n) {
                return Ok(Ended::Count);
            }
            match cadence.wait(next) {
                None => {}
                Some(Control::Stop) => return Ok(Ended::Stopped),
                Some(Control::Period(period)) => {
                    next = next - cadence.period + period;
                    cadence.period = period;
                    continue;
                }
                Some(Control::Apply(change)) => {
                    change(&mut self.source);
                    continue;
                }
            }
            // A late tick (a loaded machine) does not make the next ones hurry.
            next += cadence.period;
            let now = Instant::now();
            if next <= now {
                next = now + cadence.period;
            }
            self.tick()?;
            done += 1;
        }
    }

    /// One tick: the Interval goes to every sink, then is returned. A failed tick
    /// is an error, or, with `keep_going`, is passed to the sinks and `Ok(None)`.
    pub fn tick(&mut self) -> Result<Option<Interval>, DriverError> {
        let mut interval = match self.source.tick(self.threads) {
            Ok(interval) => interval,
            Err(err) if self.stop_on_tick_error => return Err(DriverError::Tick(err)),
            Err(err) => {
                let text = format!("tick failed: {err}");
                self.each(|sink| sink.missed(&text))?;
                return Ok(None);
            }
        };
        interval.system.sinks = self.health();
        self.each(|sink| sink.write(&interval))?;
        Ok(Some(interval))
    }

    /// Closes every sink; the first required sink's error is returned.
    pub fn finish(mut self) -> Result<(), DriverError> {
        self.each(|sink| sink.close())
    }

    fn each(
        &mut self,
        mut call: impl FnMut(&mut dyn Sink) -> Result<(), SinkError>,
    ) -> Result<(), DriverError> {
        let mut first = None;
        for slot in &mut self.slots {
            let Err(err) = call(slot.sink.as_mut()) else {
                continue;
            };
            if slot.required {
                first.get_or_insert(DriverError::Sink {
                    name: slot.sink.name().to_string(),
                    source: err,
                });
            } else {
                tracing::warn!("sink {}: {err}", slot.sink.name());
                slot.failed += 1;
                slot.last_error = Some(err.to_string());
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// What each sink lost since the previous interval, where it says or failed.
    fn health(&mut self) -> Vec<SinkHealthJson> {
        let mut out = Vec::new();
        for slot in &mut self.slots {
            let own = slot.sink.health();
            if own.is_none() && slot.failed == 0 {
                continue;
            }
            let mut entry = own.unwrap_or_else(|| SinkHealthJson {
                name: slot.sink.name().to_string(),
                ..SinkHealthJson::default()
            });
            entry.dropped += std::mem::take(&mut slot.failed);
            if let Some(error) = slot.last_error.take() {
                entry.error = Some(error);
            }
            out.push(entry);
        }
        out
    }
}

/// Opens a source on a thread of its own (a pipeline need not be `Send`) and runs
/// `body` with it there. Returns once the source is open, or with the error that
/// kept it from opening.
pub fn spawn_with<S, O, B>(name: &str, open: O, body: B) -> anyhow::Result<()>
where
    O: FnOnce() -> anyhow::Result<S> + Send + 'static,
    B: FnOnce(S) + Send + 'static,
{
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || match open() {
            Ok(source) => {
                let _ = ready_tx.send(Ok(()));
                body(source);
            }
            Err(err) => {
                let _ = ready_tx.send(Err(err));
            }
        })
        .map_err(|e| anyhow::anyhow!("starting the {name} thread: {e}"))?;
    ready_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the {name} thread ended before it started"))?
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
