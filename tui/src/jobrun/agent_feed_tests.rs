//! Placing the agent's Intervals and the run's marks, on synthetic Intervals.
use std::time::{Duration, SystemTime};

use agent::model::{Interval, ProcessEnergy};

use super::Placement;
use crate::jobrun::child::ExitStatus;
use crate::jobrun::record::{Recorder, RunEnd};
use crate::jobrun::tree::JobTree;

const GREENTOP: u32 = 100;

/// Seconds after a fixed start, as a wall-clock time.
fn at(seconds: f64) -> SystemTime {
    humantime::parse_rfc3339("2026-11-25T14:00:00Z").unwrap() + Duration::from_secs_f64(seconds)
}

/// An agent interval of 1 s ending `end_s` after the start, in which the command
/// (pid 200, greentop's child) burned `cpu_s` at 10 J per CPU second.
fn interval(end_s: f64, cpu_s: f64) -> Interval {
    let mut interval = Interval {
        ts: humantime::format_rfc3339_millis(at(end_s)).to_string(),
        interval_s: 1.0,
        ..Interval::default()
    };
    interval.system.cpu_joules = 40.0;
    interval.processes = vec![ProcessEnergy {
        pid: 200,
        ppid: GREENTOP,
        start_ns: 1,
        cpu_seconds: cpu_s,
        cpu_joules: 10.0 * cpu_s,
        joules: 10.0 * cpu_s,
        ..ProcessEnergy::default()
    }];
    interval
}

fn finish(recorder: Recorder, wall_s: f64) -> crate::jobrun::record::RunRecord {
    recorder.finish(RunEnd {
        command: vec!["job".into()],
        started_at: String::new(),
        ended_at: String::new(),
        wall_s,
        exit: ExitStatus::default(),
        rusage_cpu_seconds: 0.0,
        feed: "agent:/s".into(),
        notes: Vec::new(),
    })
}

#[test]
fn the_run_is_the_intervals_that_end_after_its_start() {
    let mut placement = Placement::new(at(0.3));
    let mut recorder = Recorder::new(JobTree::new(GREENTOP, 0));
    // Sent on connecting: ended before the command started, not the run's.
    assert_eq!(
        placement.eat(&interval(0.0, 0.5), &mut recorder),
        Some(at(0.0))
    );
    for end_s in [1.0, 2.0, 3.0] {
        assert_eq!(
            placement.eat(&interval(end_s, 0.25), &mut recorder),
            Some(at(end_s))
        );
    }
    let record = finish(recorder, 2.5);
    assert!(
        (record.energy.cpu_seconds - 0.75).abs() < 1e-12,
        "{record:?}"
    );
    assert!((record.energy.joules - 7.5).abs() < 1e-12);
    // The machine's energy counts the three intervals whole.
    assert!((record.machine.cpu_joules - 120.0).abs() < 1e-12);
    assert_eq!(record.feed, "agent:/s");
}

#[test]
fn a_mark_starts_its_phase_at_the_end_of_the_interval_it_fell_in() {
    let mut placement = Placement::new(at(0.0));
    let mut recorder = Recorder::new(JobTree::new(GREENTOP, 0));
    placement.eat(&interval(1.0, 0.5), &mut recorder);
    // Read at 1.4 s and 1.9 s, in the interval that ends at 2 s: at its end.
    placement.mark("load".into(), at(1.4));
    placement.mark("train".into(), at(1.9));
    placement.eat(&interval(2.0, 0.5), &mut recorder);
    placement.mark("eval".into(), at(2.1));
    placement.eat(&interval(3.0, 0.25), &mut recorder);
    // The command exited at 3.5 s; the agent's last interval ends at 4 s.
    placement.cap_s = 3.5;
    placement.mark("tail".into(), at(3.2));
    placement.eat(&interval(4.0, 0.125), &mut recorder);
    // Not covered by any interval (read after the last one): at the run's end.
    placement.mark("late".into(), at(4.2));
    placement.flush(&mut recorder);
    let record = finish(recorder, 3.5);
    let phases: Vec<(&str, f64, f64, f64)> = record
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.start_s, p.wall_s, p.energy.cpu_seconds))
        .collect();
    assert_eq!(
        phases,
        [
            ("(start)", 0.0, 2.0, 1.0),
            ("load", 2.0, 0.0, 0.0),
            ("train", 2.0, 1.0, 0.25),
            ("eval", 3.0, 0.5, 0.125),
            ("tail", 3.5, 0.0, 0.0),
            ("late", 3.5, 0.0, 0.0),
        ]
    );
}
