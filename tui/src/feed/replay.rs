//! The feed from a log: its Intervals at the pace they were recorded (times
//! `speed`), with pause, speed and seeks. The log is indexed once at the start
//! (where each interval is, 24 bytes each) and every Interval is read back from
//! disk when it is due, so a day of log costs little memory.
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant, SystemTime};

use agent::cli::UsageError;
use agent::sinks::log::index::LogIndex;

use super::Deliver;
use crate::app::Msg;
use crate::state::feed::{FeedControl, FeedEvent, Seek};

/// The longest stretch of log time one step waits for: a log with a hole (the
/// agent was stopped) plays the hole as this.
const MAX_GAP: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    /// Segment files or log directories.
    pub inputs: Vec<PathBuf>,
    /// Log seconds per wall-clock second.
    pub speed: f64,
    /// Start at the first interval ending at or after this.
    pub from: Option<SystemTime>,
}

impl ReplayOptions {
    /// The log's name for the title bar: the file or directory given.
    pub fn name(&self) -> String {
        let first = self.inputs.first().map(|p| {
            p.file_name()
                .unwrap_or(p.as_os_str())
                .to_string_lossy()
                .into_owned()
        });
        match (first, self.inputs.len()) {
            (Some(name), 1) => name,
            (Some(name), n) => format!("{name} +{}", n - 1),
            (None, _) => "-".into(),
        }
    }
}

/// Indexes the log (its damage is said in the view), then plays it on a thread.
pub fn start(opts: ReplayOptions, deliver: Deliver) -> anyhow::Result<Sender<FeedControl>> {
    let (index, notices) = LogIndex::open(&opts.inputs)?;
    if index.is_empty() {
        let names: Vec<String> = opts
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        return Err(UsageError(format!("no intervals to replay in {}", names.join(", "))).into());
    }
    if let Some((path, notice)) = notices.first() {
        let more = match notices.len() {
            1 => String::new(),
            n => format!(" (and {} more: greentop report lists them)", n - 1),
        };
        deliver(Msg::CollectorError(format!(
            "{}: {notice}{more}",
            path.display()
        )));
    }
    let start = opts.from.map_or(0, |at| index.find(at));
    let (tx, rx) = channel();
    let mut player = Player {
        index,
        pos: start,
        speed: opts.speed,
        paused: false,
        due: Instant::now(),
    };
    std::thread::Builder::new()
        .name("feed-replay".into())
        .spawn(move || player.play(&rx, &deliver))
        .map_err(|e| anyhow::anyhow!("starting the replay: {e}"))?;
    Ok(tx)
}

struct Player {
    index: LogIndex,
    /// The next interval to deliver.
    pos: usize,
    speed: f64,
    paused: bool,
    /// When the next interval is due.
    due: Instant,
}

impl Player {
    /// Runs until the view is gone.
    fn play(&mut self, control: &Receiver<FeedControl>, deliver: &Deliver) {
        loop {
            let playing = !self.paused && self.pos < self.index.len();
            if playing && Instant::now() >= self.due && !self.step(deliver) {
                return;
            }
            let request = if !self.paused && self.pos < self.index.len() {
                match control.recv_timeout(self.due.saturating_duration_since(Instant::now())) {
                    Ok(request) => request,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match control.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                }
            };
            if !self.apply(request, deliver) {
                return;
            }
        }
    }

    /// Delivers the interval at `pos` and schedules the next; false: view gone.
    fn step(&mut self, deliver: &Deliver) -> bool {
        let msg = match self.index.interval(self.pos) {
            Ok(interval) => Msg::Interval(Box::new(interval)),
            Err(err) => Msg::CollectorError(err.to_string()),
        };
        if !deliver(msg) {
            return false;
        }
        self.pos += 1;
        if self.pos == self.index.len() {
            return deliver(Msg::Feed(FeedEvent::Ended));
        }
        let gap = match (self.index.end(self.pos - 1), self.index.end(self.pos)) {
            (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default().min(MAX_GAP),
            _ => Duration::ZERO,
        };
        self.due = Instant::now() + gap.div_f64(self.speed);
        true
    }

    fn apply(&mut self, request: FeedControl, deliver: &Deliver) -> bool {
        match request {
            FeedControl::Pause(paused) => {
                self.paused = paused;
                self.due = Instant::now();
            }
            FeedControl::Speed(speed) => {
                self.speed = speed;
                self.due = self.due.min(Instant::now());
            }
            FeedControl::Seek(seek) => return self.seek(seek, deliver),
            FeedControl::Refresh(_) => {}
        }
        true
    }

    /// Jumps and shows the interval there at once, paused or not.
    fn seek(&mut self, seek: Seek, deliver: &Deliver) -> bool {
        let last = self.index.len() - 1;
        let shown = self.pos.saturating_sub(1);
        let target = match seek {
            Seek::Start => 0,
            Seek::End => last,
            Seek::By(secs) => match self.index.end(shown) {
                Some(at) if secs >= 0 => self.index.find(at + Duration::from_secs(secs as u64)),
                Some(at) => at
                    .checked_sub(Duration::from_secs(secs.unsigned_abs()))
                    .map_or(0, |t| self.index.find(t)),
                None => shown,
            },
        };
        if !deliver(Msg::Feed(FeedEvent::Reset)) {
            return false;
        }
        self.pos = target;
        self.due = Instant::now();
        self.step(deliver)
    }
}
