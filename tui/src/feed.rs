//! Where the live view's Intervals come from: the in-process pipeline, a running
//! agent's socket, or a log. Each feed runs on a thread of its own and sends
//! `Msg`s into the channel the UI reads; the UI steers it with `FeedControl`.
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use agent::driver::{Cadence, Control, Driver, spawn_with};
use agent::model::Interval;
use agent::pipeline::{Pipeline, PipelineOptions, open_pipeline};
use agent::sinks::{Sink, SinkError};

use crate::app::Msg;

/// Which feed, with what it needs to start.
#[derive(Clone, Debug)]
pub enum FeedKind {
    /// The pipeline in this process (needs the privileges to load the probes).
    Local(PipelineOptions),
}

/// What the UI asks of its feed.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedControl {
    /// Seconds between intervals (the in-process pipeline only).
    Refresh(f64),
}

/// Delivers a message to the UI; false once the UI is gone.
pub type Deliver = Box<dyn Fn(Msg) -> bool + Send>;

/// A running feed: requests go to its thread.
pub struct Feed {
    control: Option<Sender<Control<Pipeline>>>,
}

impl Feed {
    /// Starts the feed's thread. Fails when the feed cannot start at all (the
    /// pipeline does not open); later trouble arrives as messages.
    pub fn start(kind: FeedKind, refresh_s: f64, deliver: Deliver) -> anyhow::Result<Feed> {
        match kind {
            FeedKind::Local(opts) => local(opts, refresh_s, deliver),
        }
    }

    /// Passes a request on; a feed that cannot do it ignores it.
    pub fn control(&self, request: FeedControl) {
        match request {
            FeedControl::Refresh(secs) => {
                if let Some(control) = &self.control {
                    let _ = control.send(Control::Period(Duration::from_secs_f64(secs)));
                }
            }
        }
    }
}

/// The in-process pipeline, ticked by the driver on the feed's thread.
fn local(opts: PipelineOptions, refresh_s: f64, deliver: Deliver) -> anyhow::Result<Feed> {
    let (control_tx, control_rx) = channel();
    let open = move || open_pipeline(&opts);
    spawn_with("collector", open, move |pipeline| {
        // Threads always: `H` and the details pane can show them at any time.
        let mut driver = Driver::new(pipeline)
            .threads(true)
            .keep_going()
            .sink(ToUi(deliver));
        let cadence = Cadence::every(Duration::from_secs_f64(refresh_s)).control(control_rx);
        // Ends when the UI hangs up (the control sender or the channel is gone).
        let _ = driver.run(cadence);
    })?;
    Ok(Feed {
        control: Some(control_tx),
    })
}

/// The sink that hands each Interval to the UI.
struct ToUi(Deliver);

impl Sink for ToUi {
    fn name(&self) -> &str {
        "live view"
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        match (self.0)(Msg::Interval(Box::new(interval.clone()))) {
            true => Ok(()),
            false => Err(ui_gone()),
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn missed(&mut self, error: &str) -> Result<(), SinkError> {
        match (self.0)(Msg::CollectorError(error.to_string())) {
            true => Ok(()),
            false => Err(ui_gone()),
        }
    }
}

fn ui_gone() -> SinkError {
    SinkError::Stream {
        what: "to the live view",
        source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
    }
}
