//! Measuring one run: a tick right before the command starts, then one every
//! `--tick` seconds, one at each phase mark, and one right after the command exits
//! so its last slices are in. Between ticks greentop sleeps in poll(2) on the
//! command's pidfd and the mark socket.
//!
//! The ticks go through the one `Driver` (tick and fan-out), but not its cadence
//! loop: they are due at events (a mark, the exit) as much as on a timer, so this
//! file waits for those itself.
//!
//! A mark ends an interval on the spot: the phase boundary is then an interval
//! boundary, where the ledger has charged every running slice and the energy
//! counters were read, so no energy has to be split by time inside an interval
//! (which would assume constant power).
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant, SystemTime};

use agent::driver::Driver;
use agent::pipeline::Pipeline;

use super::child::{self, Child, ExitStatus, SpawnError, User};
use super::marks::{MARK_ENV, MarkSocket};
use super::record::{Recorder, RunEnd, RunRecord};
use super::signals;
use super::tree::JobTree;

/// What a run needs besides the command.
pub struct Measurer<'a> {
    /// Ticks on demand: at the start, every `tick`, at each mark and at the exit.
    pub driver: &'a mut Driver<Pipeline>,
    pub marks: &'a MarkSocket,
    pub tick: Duration,
    pub user: Option<&'a User>,
    /// Whether the ledger's reduced fidelity (the /proc fallback) was said.
    pub warned: bool,
}

/// Why the loop woke.
enum Wake {
    Tick,
    Marks,
    Exited,
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
        self.tick_into(None, &mut notes); // starts the first interval
        let env = [(
            MARK_ENV.to_string(),
            self.marks.path().to_string_lossy().into_owned(),
        )];
        let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let start = Instant::now();
        signals::hold();
        let command = child::spawn(argv, &env, self.user)?;
        signals::forward_to(command.pid);
        let mut recorder = Recorder::new(JobTree::new(std::process::id(), since_ns));
        let exit = self.follow(&command, &mut recorder, start, &mut notes);
        let wall_s = start.elapsed().as_secs_f64();
        let ended_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        signals::forward_to(0);
        self.tick_into(Some(&mut recorder), &mut notes);
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
            notes,
        }))
    }

    /// Ticks until the command exits; returns its status, reaped.
    fn follow(
        &mut self,
        command: &Child,
        recorder: &mut Recorder,
        start: Instant,
        notes: &mut Vec<String>,
    ) -> ExitStatus {
        let mut next_tick = Instant::now() + self.tick;
        loop {
            match self.wait(command, next_tick) {
                Wake::Exited => return collect(command.pid),
                Wake::Marks => {
                    let marks = self.marks.drain();
                    self.tick_into(Some(recorder), notes);
                    let at_s = start.elapsed().as_secs_f64();
                    for name in &marks.names {
                        recorder.mark(name, at_s);
                    }
                    self.marks.acknowledge(&marks.reply_to);
                }
                Wake::Tick => {
                    // A late tick (a loaded machine) does not make the next ones hurry.
                    next_tick = (next_tick + self.tick).max(Instant::now());
                    self.tick_into(Some(recorder), notes);
                    if let Some(status) = child::reap(command.pid) {
                        return status;
                    }
                }
            }
        }
    }

    /// Sleeps until the next tick, a mark, or the command's exit.
    fn wait(&self, command: &Child, next_tick: Instant) -> Wake {
        let mut fds = [
            libc::pollfd {
                fd: command.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.marks.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        loop {
            let left = next_tick.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wake::Tick;
            }
            let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
            // SAFETY: `fds` is a live array of two pollfd structs.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
            if rc > 0 && fds[0].revents != 0 {
                return Wake::Exited;
            }
            if rc > 0 && fds[1].revents != 0 {
                return Wake::Marks;
            }
            // 0: timed out (re-checked above); < 0: EINTR from a forwarded signal.
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

/// The command's status once its pidfd says it exited (reaping orphans too).
fn collect(pid: i32) -> ExitStatus {
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
