//! Measuring one run: the command started, its Intervals followed from a feed
//! until it exits, its phase marks placed, its orphans settled. Between Intervals
//! greentop sleeps in poll(2) on the command's pidfd, the mark socket and, with the
//! agent feed, the agent's socket.
//!
//! Two feeds (`RunFeed`): the local pipeline, ticked right before the command
//! starts, every `--tick` seconds, at each phase mark and right after the command
//! exits (`LocalFeed`, here); or a greentop-agent's socket at the agent's own
//! cadence (`agent_feed.rs`).
//!
//! Locally a mark ends an interval on the spot: the phase boundary is then an
//! interval boundary, where the ledger has charged every running slice and the
//! energy counters were read, so no energy has to be split by time inside an
//! interval (which would assume constant power).
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime};

use agent::driver::Driver;
use agent::pipeline::Pipeline;

use super::child::{self, Child, ExitStatus, SpawnError, User};
use super::marks::{MARK_ENV, MarkSocket};
use super::record::{Recorder, RunEnd, RunRecord};
use super::signals;
use super::tree::JobTree;

/// Where a run's Intervals come from.
pub trait RunFeed {
    /// `local`, or `agent:PATH`: said in the report.
    fn name(&self) -> String;
    /// Right before the command starts.
    fn begin(&mut self, notes: &mut Vec<String>);
    /// Until the command exits: Intervals to the recorder, marks to phases.
    /// Returns the command's status, reaped.
    fn follow(&mut self, run: &mut Following) -> ExitStatus;
    /// Right after the command exited (at `exited_at`, `wall_s` after its start):
    /// the Intervals that hold its last slices.
    fn end(&mut self, run: &mut Following, exited_at: SystemTime, wall_s: f64);
}

/// One run in progress, as a feed sees it.
pub struct Following<'a> {
    pub command: &'a Child,
    pub marks: &'a MarkSocket,
    pub recorder: Recorder,
    /// When the command started, on both clocks.
    pub start: Instant,
    pub started: SystemTime,
    pub notes: Vec<String>,
}

impl Following<'_> {
    /// Adds a note once.
    pub fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

/// What a run needs besides the command.
pub struct Measurer<'a> {
    pub feed: &'a mut dyn RunFeed,
    pub marks: &'a MarkSocket,
    pub user: Option<&'a User>,
}

/// Why the wait ended.
pub enum Wake {
    /// The deadline passed.
    Timeout,
    Marks,
    Exited,
    /// The feed's descriptor is readable (or closed).
    Feed,
}

impl Measurer<'_> {
    /// Runs `argv` once and measures it. `Err` only when it could not start.
    pub fn run(&mut self, argv: &[String]) -> Result<RunRecord, SpawnError> {
        let mut notes = Vec::new();
        // Left over from an earlier run's orphans: not this run's phases, but a
        // sender waiting for its answer gets it.
        let stale = self.marks.drain();
        self.marks.acknowledge(&stale.reply_to);
        let since_ns = child::boottime_floor_ns();
        let rusage_before = child::children_cpu_s();
        self.feed.begin(&mut notes);
        let env = [(
            MARK_ENV.to_string(),
            self.marks.path().to_string_lossy().into_owned(),
        )];
        let started = SystemTime::now();
        let started_at = humantime::format_rfc3339_millis(started).to_string();
        let start = Instant::now();
        signals::hold();
        let command = child::spawn(argv, &env, self.user)?;
        signals::forward_to(command.pid);
        let mut run = Following {
            command: &command,
            marks: self.marks,
            recorder: Recorder::new(JobTree::new(std::process::id(), since_ns)),
            start,
            started,
            notes,
        };
        let exit = self.feed.follow(&mut run);
        let wall_s = start.elapsed().as_secs_f64();
        let exited_at = SystemTime::now();
        let ended_at = humantime::format_rfc3339_millis(exited_at).to_string();
        signals::forward_to(0);
        self.feed.end(&mut run, exited_at, wall_s);
        let Following {
            mut recorder,
            mut notes,
            ..
        } = run;
        settle(&recorder);
        let late = self.marks.drain();
        for name in &late.names {
            recorder.mark(name, wall_s);
        }
        self.marks.acknowledge(&late.reply_to);
        notes.extend(still_running(&recorder));
        Ok(recorder.finish(RunEnd {
            command: argv.to_vec(),
            started_at,
            ended_at,
            wall_s,
            exit,
            rusage_cpu_seconds: child::children_cpu_s() - rusage_before,
            feed: self.feed.name(),
            notes,
        }))
    }
}

/// The pipeline in this process, ticked on demand.
pub struct LocalFeed {
    pub driver: Driver<Pipeline>,
    pub tick: Duration,
    /// Said in every run's notes (why a configured agent was not used).
    pub note: Option<String>,
    /// Whether the ledger's reduced fidelity (the /proc fallback) was said.
    warned: bool,
}

impl LocalFeed {
    pub fn new(driver: Driver<Pipeline>, tick: Duration, note: Option<String>) -> LocalFeed {
        LocalFeed {
            driver,
            tick,
            note,
            warned: false,
        }
    }

    /// Ends an interval; `None` only starts the next one.
    fn tick_into(&mut self, recorder: Option<&mut Recorder>, notes: &mut Vec<String>) {
        match self.driver.tick() {
            Ok(Some(interval)) => {
                if let Some(note) = interval
                    .system
                    .ledger_note
                    .as_ref()
                    .filter(|_| !self.warned)
                {
                    // The usual warning, up front (the summary repeats it).
                    let _ = writeln!(std::io::stderr(), "greentop: {note}");
                    self.warned = true;
                }
                if let Some(recorder) = recorder {
                    recorder.eat(&interval);
                }
            }
            // Not kept going: a failed tick is an error.
            Ok(None) => {}
            Err(err) => {
                let err = anyhow::Error::new(err);
                let note = format!("a measurement failed ({err:#}); its interval is missing");
                tracing::warn!("{note}");
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
    }
}

impl RunFeed for LocalFeed {
    fn name(&self) -> String {
        "local".to_string()
    }

    fn begin(&mut self, notes: &mut Vec<String>) {
        notes.extend(self.note.clone());
        self.tick_into(None, notes); // starts the first interval
    }

    fn follow(&mut self, run: &mut Following) -> ExitStatus {
        let mut next_tick = Instant::now() + self.tick;
        loop {
            match wait(run.command, run.marks, None, Some(next_tick)) {
                Wake::Exited => return collect(run.command.pid),
                Wake::Marks => {
                    let marks = run.marks.drain();
                    self.tick_into(Some(&mut run.recorder), &mut run.notes);
                    let at_s = run.start.elapsed().as_secs_f64();
                    for name in &marks.names {
                        run.recorder.mark(name, at_s);
                    }
                    run.marks.acknowledge(&marks.reply_to);
                }
                Wake::Timeout | Wake::Feed => {
                    // A late tick (a loaded machine) does not make the next ones hurry.
                    next_tick = (next_tick + self.tick).max(Instant::now());
                    self.tick_into(Some(&mut run.recorder), &mut run.notes);
                    if let Some(status) = child::reap(run.command.pid) {
                        return status;
                    }
                }
            }
        }
    }

    fn end(&mut self, run: &mut Following, _exited_at: SystemTime, _wall_s: f64) {
        self.tick_into(Some(&mut run.recorder), &mut run.notes);
    }
}

/// Sleeps until `until` (forever if `None`), a mark, the command's exit, or data
/// (or the end) on the feed's descriptor.
pub fn wait(
    command: &Child,
    marks: &MarkSocket,
    feed: Option<BorrowedFd>,
    until: Option<Instant>,
) -> Wake {
    let mut fds = [command.pidfd.as_fd(), marks.as_fd()]
        .into_iter()
        .chain(feed)
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect::<Vec<_>>();
    loop {
        let ms = match until {
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Wake::Timeout;
                }
                libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX)
            }
            None => -1,
        };
        let count = libc::nfds_t::try_from(fds.len()).unwrap_or(2);
        // SAFETY: `fds` is a live array of `count` pollfd structs.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, ms) };
        if rc > 0 {
            // The exit first, then marks before the feed: a mark read before an
            // Interval is placed against it.
            if fds[0].revents != 0 {
                return Wake::Exited;
            }
            if fds[1].revents != 0 {
                return Wake::Marks;
            }
            if fds.get(2).is_some_and(|fd| fd.revents != 0) {
                return Wake::Feed;
            }
        }
        // 0: timed out (re-checked above); < 0: EINTR from a forwarded signal.
    }
}

/// The command's status once its pidfd says it exited (reaping orphans too).
pub fn collect(pid: i32) -> ExitStatus {
    if let Some(status) = child::reap(pid) {
        return status;
    }
    let mut status = 0;
    // SAFETY: `status` is valid and writable; the pid is our child.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    if rc == pid {
        ExitStatus::from_wait(status)
    } else {
        ExitStatus::default()
    }
}

/// Longest wait for one exiting process of the job.
const SETTLE: Duration = Duration::from_millis(500);

/// Reaps processes of the job that the ledger saw exit but that were still
/// finishing their exit when the command's was collected (an orphan that closed
/// the command's pipe on its way out): the kernel's rusage of the tree then holds
/// them. Bounded by `SETTLE` per process, for a pid reused meanwhile.
fn settle(recorder: &Recorder) {
    let me = std::process::id();
    for pid in recorder.exited_pids() {
        if parent_of(pid) != Some(me) {
            continue;
        }
        let Ok(pid) = i32::try_from(pid) else {
            continue;
        };
        let deadline = Instant::now() + SETTLE;
        loop {
            let mut status = 0;
            // SAFETY: `status` is valid and writable; WNOHANG never blocks.
            let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if rc != 0 || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The parent pid in `/proc/PID/stat`, if the process is still there.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// A note for processes of the job still running when the command exited.
fn still_running(recorder: &Recorder) -> Option<String> {
    let pids: Vec<String> = recorder
        .unfinished()
        .into_iter()
        .filter(|(pid, _)| std::path::Path::new(&format!("/proc/{pid}")).exists())
        .map(|(pid, _)| pid.to_string())
        .collect();
    if pids.is_empty() {
        return None;
    }
    let shown = pids.len().min(10);
    let more = match pids.len() - shown {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "{} process(es) of the job still running after the command exited (pid {}{more}); \
         measured until then",
        pids.len(),
        pids[..shown].join(", ")
    ))
}
