//! Which feed the view is on — the in-process pipeline, an agent's socket or a log
//! being replayed — and how it is doing: what the title bar says (STYLE 17), and
//! the requests the view can make of it.

/// Where the Intervals come from.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedSource {
    /// The pipeline in this process.
    Local,
    /// A running greentop-agent's socket.
    Agent { path: String },
    /// A log, replayed.
    Replay { name: String },
}

/// How the feed is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedStatus {
    /// Delivering (local, connected, replay playing).
    Live,
    /// An agent's socket is not connected now; the feed keeps trying.
    Disconnected,
    /// A replay reached the end of its log.
    Ended,
}

/// What a feed tells the view, besides Intervals.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedEvent {
    /// Connected to an agent, whose pid is given (for its own CPU use).
    Connected { agent_pid: Option<u32> },
    /// The agent went away (why); the feed tries again.
    Lost(String),
    /// The replay jumped: what was shown before no longer leads up to what comes.
    Reset,
    /// The replay reached the end of its log.
    Ended,
}

/// A replay jump.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Seek {
    /// Seconds forward (negative: back) from the interval shown.
    By(i64),
    Start,
    End,
}

/// What the view asks of its feed.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedControl {
    /// Seconds between intervals (the in-process pipeline).
    Refresh(f64),
    /// Replay: stop or go on.
    Pause(bool),
    Seek(Seek),
    /// Replay: log time per wall-clock time.
    Speed(f64),
}

/// Replay speeds `+` and `-` step through (× log time).
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = (1.0 / 64.0)..=4096.0;

#[derive(Clone, Debug, PartialEq)]
pub struct FeedState {
    pub source: FeedSource,
    pub status: FeedStatus,
    /// Replay speed.
    pub speed: f64,
}

impl Default for FeedState {
    fn default() -> Self {
        FeedState {
            source: FeedSource::Local,
            status: FeedStatus::Live,
            speed: 1.0,
        }
    }
}

impl FeedState {
    pub fn is_replay(&self) -> bool {
        matches!(self.source, FeedSource::Replay { .. })
    }

    /// The title bar's words for the feed; `None` for the in-process pipeline,
    /// which shows its refresh interval instead.
    pub fn label(&self) -> Option<String> {
        match (&self.source, &self.status) {
            (FeedSource::Local, _) => None,
            (FeedSource::Agent { path }, FeedStatus::Disconnected) => {
                Some(format!("agent {path} DISCONNECTED, retrying"))
            }
            (FeedSource::Agent { path }, _) => Some(format!("agent {path} connected")),
            (FeedSource::Replay { name }, status) => {
                let end = if *status == FeedStatus::Ended {
                    " [END]"
                } else {
                    ""
                };
                Some(format!("replay {name} ×{}{end}", format_speed(self.speed)))
            }
        }
    }

    /// The speed after `+` (step 1) or `-` (step -1).
    pub fn speed_step(&self, step: isize) -> f64 {
        let next = if step > 0 {
            self.speed * 2.0
        } else {
            self.speed / 2.0
        };
        next.clamp(*SPEED_RANGE.start(), *SPEED_RANGE.end())
    }
}

/// `1`, `2`, `0.5`, `0.125`: short and exact for the powers of two `+`/`-` make.
pub fn format_speed(speed: f64) -> String {
    let text = format!("{speed:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_say_the_feed_and_whether_it_is_connected() {
        let mut feed = FeedState::default();
        assert_eq!(feed.label(), None);
        feed.source = FeedSource::Agent {
            path: "/run/greentop.sock".into(),
        };
        assert_eq!(feed.label().unwrap(), "agent /run/greentop.sock connected");
        feed.status = FeedStatus::Disconnected;
        assert_eq!(
            feed.label().unwrap(),
            "agent /run/greentop.sock DISCONNECTED, retrying"
        );
        feed.source = FeedSource::Replay { name: "log".into() };
        feed.status = FeedStatus::Live;
        feed.speed = feed.speed_step(-1);
        assert_eq!(feed.label().unwrap(), "replay log ×0.5");
        feed.status = FeedStatus::Ended;
        feed.speed = 4.0;
        assert_eq!(feed.label().unwrap(), "replay log ×4 [END]");
        feed.speed = 4096.0;
        assert_eq!(feed.speed_step(1), 4096.0, "clamped");
    }
}
