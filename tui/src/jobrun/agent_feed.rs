//! The agent feed of `greentop run`: the Intervals a running greentop-agent sends
//! on its socket, so a member of the socket's group measures a job without loading
//! probes. Intervals come at the agent's cadence, not on demand: the run is the
//! agent's Intervals that end after the command started, up to the first one that
//! ends after it exited; the job's rows in them are found by the same process tree
//! as locally (the agent sees every process). A phase mark takes effect at the end
//! of the agent's interval in which greentop read it.
//!
//! The agent going away is never fatal: what it sent is kept, a note says what is
//! missing, and the command runs on to its end. Reads are bounded by a timeout, and
//! the wait for the last Interval by a few agent intervals.
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use agent::model::Interval;
use agent::sinks::socket::stream::{IntervalStream, StreamError};

use super::child::ExitStatus;
use super::measure::{self, Following, RunFeed, Wake};
use super::record::Recorder;

/// Longest wait for the rest of an Interval once its first byte arrived.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait for an Interval (the first, and the one that ends after the command
/// exited): this plus two of the agent's intervals.
const TAIL_SLACK: Duration = Duration::from_secs(10);
/// Longest wait for the agent's first Interval (an agent still loading its probes).
const STARTUP_WAIT: Duration = Duration::from_secs(30);
/// The agent's interval until one was seen (greentop-agent's default).
const DEFAULT_INTERVAL_S: f64 = 1.0;

/// A greentop-agent's socket as the feed of every run.
pub struct AgentFeed {
    path: PathBuf,
    /// This run's connection; `None` once the agent went away (or between runs).
    stream: Option<IntervalStream<UnixStream>>,
    /// The length of the agent's last interval, seconds.
    interval_s: f64,
    placement: Placement,
    /// Said in every run's notes (how the feed was chosen, an ignored --tick).
    notes: Vec<String>,
}

impl AgentFeed {
    /// Connects (the first run uses this connection). An error says why, with a hint
    /// (the socket's group, whether an agent runs there).
    pub fn open(path: &Path, notes: Vec<String>) -> anyhow::Result<AgentFeed> {
        Ok(AgentFeed {
            path: path.to_path_buf(),
            stream: Some(connect(path)?),
            interval_s: DEFAULT_INTERVAL_S,
            placement: Placement::new(SystemTime::now()),
            notes,
        })
    }

    /// Reads one Interval and places it; returns its end. The agent gone (or
    /// silent in the middle of an Interval) is noted and ends the stream.
    fn read_one(&mut self, run: &mut Following) -> Option<SystemTime> {
        let stream = self.stream.as_mut()?;
        let why = match stream.next_interval() {
            Ok(Some(interval)) => {
                self.interval_s = interval.interval_s;
                return self.placement.eat(&interval, &mut run.recorder);
            }
            Ok(None) => "it closed the connection".to_string(),
            Err(err) => format!("{:#}", anyhow::Error::new(err)),
        };
        self.stream = None;
        let at_s = run.start.elapsed().as_secs_f64();
        run.note(format!(
            "greentop-agent at {} went away {at_s:.1} s into the run ({why}): what it \
             sent until then is kept, the rest of the run is not measured",
            self.path.display()
        ));
        None
    }

    /// Waits for an Interval before the command starts: the agent sends its last
    /// one at once when it is ticking, but an agent still loading its probes has
    /// none, and would miss the command's first instructions.
    fn ticking(&mut self) -> Result<(), String> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let _ = stream.get_ref().set_read_timeout(Some(STARTUP_WAIT));
        let first = stream.next_interval();
        let _ = stream.get_ref().set_read_timeout(Some(READ_TIMEOUT));
        match first {
            Ok(Some(interval)) => {
                self.interval_s = interval.interval_s;
                Ok(())
            }
            Ok(None) => Err("closed the connection".to_string()),
            Err(StreamError::Io(err)) if err.kind() == ErrorKind::WouldBlock => Err(format!(
                "sent no interval within {} s",
                STARTUP_WAIT.as_secs()
            )),
            Err(err) => Err(format!("{:#}", anyhow::Error::new(err))),
        }
    }

    /// A note on the resolution of this run's figures.
    fn cadence_note(&self, marked: bool) -> String {
        let marks = match marked {
            true => "; a phase starts at the end of the agent's interval in which its mark arrived",
            false => "",
        };
        format!(
            "measured from greentop-agent's {:.2} s intervals{marks} (the first and last \
             interval reach beyond the command: the machine's energy counts them whole)",
            self.interval_s
        )
    }
}

impl RunFeed for AgentFeed {
    fn name(&self) -> String {
        format!("agent:{}", self.path.display())
    }

    fn begin(&mut self, notes: &mut Vec<String>) {
        notes.extend(self.notes.iter().cloned());
        if self.stream.is_none() {
            match connect(&self.path) {
                Ok(stream) => self.stream = Some(stream),
                Err(err) => notes.push(format!("{err:#}: this run is not measured")),
            }
        }
        if let Err(why) = self.ticking() {
            self.stream = None;
            notes.push(format!(
                "greentop-agent at {} {why}: this run is not measured",
                self.path.display()
            ));
        }
    }

    fn follow(&mut self, run: &mut Following) -> ExitStatus {
        self.placement = Placement::new(run.started);
        loop {
            let feed = self.stream.as_ref().map(|s| s.get_ref().as_fd());
            match measure::wait(run.command, run.marks, feed, None) {
                Wake::Exited => return measure::collect(run.command.pid),
                Wake::Marks => {
                    let marks = run.marks.drain();
                    let at = SystemTime::now();
                    for name in marks.names {
                        self.placement.mark(name, at);
                    }
                    // At once: the mark's place is decided; the program need not wait.
                    run.marks.acknowledge(&marks.reply_to);
                }
                Wake::Feed => {
                    self.read_one(run);
                }
                Wake::Timeout => {}
            }
        }
    }

    fn end(&mut self, run: &mut Following, exited_at: SystemTime, wall_s: f64) {
        self.placement.cap_s = wall_s;
        let limit = tail_wait(self.interval_s);
        let deadline = Instant::now() + limit;
        while let Some(stream) = &self.stream {
            let fd = stream.get_ref().as_fd();
            if !readable(fd, deadline) {
                run.note(format!(
                    "greentop-agent at {} sent no interval ending after the command exited \
                     within {:.1} s: the end of the run is missing",
                    self.path.display(),
                    limit.as_secs_f64()
                ));
                break;
            }
            let Some(end) = self.read_one(run) else {
                continue;
            };
            // The Interval's time is taken after its ledger sample: it may end after
            // the exit and still lack the last slices, which the next one then holds.
            // The command seen to exit (or never seen: too short for /proc sampling)
            // says they are in.
            let pid = u32::try_from(run.command.pid).unwrap_or_default();
            if end > exited_at && run.recorder.seen_exit(pid) != Some(false) {
                break;
            }
        }
        let marked = self.placement.marked;
        self.placement.flush(&mut run.recorder);
        run.note(self.cadence_note(marked));
        // The next run connects afresh: a connection left unread would overflow the
        // agent's queue for this client.
        self.stream = None;
    }
}

/// The longest wait for the agent's next Interval.
fn tail_wait(interval_s: f64) -> Duration {
    TAIL_SLACK + Duration::from_secs_f64(2.0 * interval_s.clamp(0.0, 3600.0))
}

/// Connects and reads the stream's preamble, within `READ_TIMEOUT`.
fn connect(path: &Path) -> anyhow::Result<IntervalStream<UnixStream>> {
    let stream = UnixStream::connect(path).map_err(|e| crate::feed::refused(path, &e))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    IntervalStream::open(stream).map_err(|err| {
        anyhow::anyhow!(
            "greentop-agent at {}: {:#}",
            path.display(),
            anyhow::Error::new(err)
        )
    })
}

/// Whether `fd` is readable (or closed) before `deadline`.
fn readable(fd: std::os::fd::BorrowedFd, deadline: Instant) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one live pollfd struct.
        if unsafe { libc::poll(&mut pfd, 1, ms) } > 0 && pfd.revents != 0 {
            return true;
        }
    }
}

/// The agent's Intervals of one run, placed against the run's clock: pure, so the
/// placing of Intervals and marks is tested on synthetic ones.
pub struct Placement {
    /// When the command started.
    started: SystemTime,
    /// Marks read and not yet placed, with when greentop read them.
    pending: Vec<(String, SystemTime)>,
    /// A mark is never placed after this (the run's wall time, once known).
    cap_s: f64,
    /// Whether the run had marks.
    marked: bool,
}

impl Placement {
    pub fn new(started: SystemTime) -> Placement {
        Placement {
            started,
            pending: Vec::new(),
            cap_s: f64::INFINITY,
            marked: false,
        }
    }

    /// A mark greentop read at `at`.
    pub fn mark(&mut self, name: String, at: SystemTime) {
        self.pending.push((name, at));
        self.marked = true;
    }

    /// Adds an Interval that ends after the command started to the run, then starts
    /// the phases of the marks read before its end, at its end. Returns its end
    /// (`None` if its timestamp cannot be read: it is then not counted).
    pub fn eat(&mut self, interval: &Interval, recorder: &mut Recorder) -> Option<SystemTime> {
        let Ok(end) = humantime::parse_rfc3339_weak(&interval.ts) else {
            tracing::warn!("an agent interval with a bad timestamp {:?}", interval.ts);
            return None;
        };
        if end <= self.started {
            return Some(end); // before the run
        }
        recorder.eat(interval);
        let at_s = end
            .duration_since(self.started)
            .map_or(0.0, |d| d.as_secs_f64())
            .min(self.cap_s);
        let (due, later): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(_, t)| *t < end);
        self.pending = later;
        for (name, _) in due {
            recorder.mark(&name, at_s);
        }
        Some(end)
    }

    /// Marks no Interval covered (the agent's tail is missing): at the run's end.
    pub fn flush(&mut self, recorder: &mut Recorder) {
        let at_s = if self.cap_s.is_finite() {
            self.cap_s
        } else {
            0.0
        };
        for (name, _) in self.pending.drain(..) {
            recorder.mark(&name, at_s);
        }
    }
}

#[cfg(test)]
#[path = "agent_feed_tests.rs"]
mod tests;
