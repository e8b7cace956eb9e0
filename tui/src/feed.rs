//! Where the live view's Intervals come from: the in-process pipeline, a running
//! agent's socket (`connect.rs`), or a log (`replay.rs`). Each feed runs on a thread
//! of its own and sends `Msg`s into the channel the UI reads; the UI steers it
//! with `FeedControl`.
mod connect;
mod replay;

use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use agent::driver::{Cadence, Control, Driver, spawn_with};
use agent::model::Interval;
use agent::pipeline::{Pipeline, PipelineOptions, open_pipeline};
use agent::sinks::{Sink, SinkError};

use crate::app::Msg;
use crate::state::feed::{FeedControl, FeedSource, FeedState};
pub use replay::ReplayOptions;

/// Which feed, with what it needs to start.
#[derive(Clone, Debug)]
pub enum FeedKind {
    /// The pipeline in this process (needs the privileges to load the probes).
    Local(Box<PipelineOptions>),
    /// A running greentop-agent's socket.
    Connect(PathBuf),
    /// A log, replayed.
    Replay(ReplayOptions),
}

impl FeedKind {
    /// What the view shows about the feed before anything arrives.
    pub fn state(&self) -> FeedState {
        let source = match self {
            FeedKind::Local(_) => FeedSource::Local,
            FeedKind::Connect(path) => FeedSource::Agent {
                path: path.display().to_string(),
            },
            FeedKind::Replay(opts) => FeedSource::Replay { name: opts.name() },
        };
        let speed = match self {
            FeedKind::Replay(opts) => opts.speed,
            _ => 1.0,
        };
        FeedState {
            source,
            speed,
            ..FeedState::default()
        }
    }
}

/// Delivers a message to the UI; false once the UI is gone.
pub type Deliver = Box<dyn Fn(Msg) -> bool + Send>;

/// A running feed: requests go to its thread.
pub struct Feed {
    local: Option<Sender<Control<Pipeline>>>,
    replay: Option<Sender<FeedControl>>,
}

impl Feed {
    /// Starts the feed's thread. Fails when the feed cannot start at all (the
    /// pipeline does not open, the socket refuses, the log is unreadable); later
    /// trouble arrives as messages.
    pub fn start(kind: FeedKind, refresh_s: f64, deliver: Deliver) -> anyhow::Result<Feed> {
        let mut feed = Feed {
            local: None,
            replay: None,
        };
        match kind {
            FeedKind::Local(opts) => feed.local = Some(local(*opts, refresh_s, deliver)?),
            FeedKind::Connect(path) => connect::start(path, deliver)?,
            FeedKind::Replay(opts) => feed.replay = Some(replay::start(opts, deliver)?),
        }
        Ok(feed)
    }

    /// Passes a request on; a feed that cannot do it ignores it.
    pub fn control(&self, request: FeedControl) {
        match (request, &self.local, &self.replay) {
            (FeedControl::Refresh(secs), Some(local), _) => {
                let _ = local.send(Control::Period(Duration::from_secs_f64(secs)));
            }
            (request, _, Some(replay)) => {
                let _ = replay.send(request);
            }
            _ => {}
        }
    }
}

/// The in-process pipeline, ticked by the driver on the feed's thread.
fn local(
    opts: PipelineOptions,
    refresh_s: f64,
    deliver: Deliver,
) -> anyhow::Result<Sender<Control<Pipeline>>> {
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
    Ok(control_tx)
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
