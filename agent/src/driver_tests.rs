//! The driver with a counting source and recording sinks: the count, fan-out in
//! order, failures of required and optional sinks, control requests, tick errors.
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// Interval `n` (from 1) says its number in `interval_s`.
fn counting() -> impl FnMut(bool) -> Result<Interval, LedgerError> {
    let mut n = 0.0;
    move |_| {
        n += 1.0;
        Ok(Interval {
            interval_s: n,
            ..Interval::default()
        })
    }
}

/// Records what it is given into a shared log; fails when told to.
#[derive(Clone, Default)]
struct Recorder {
    name: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
    fail: Arc<Mutex<bool>>,
}

impl Sink for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        let sinks: Vec<_> = interval.system.sinks.iter().map(|s| s.dropped).collect();
        let entry = format!("{} {} {sinks:?}", self.name, interval.interval_s);
        self.seen.lock().unwrap().push(entry);
        if *self.fail.lock().unwrap() {
            return Err(SinkError::Encode("told to fail".into()));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn missed(&mut self, error: &str) -> Result<(), SinkError> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} missed {error}", self.name));
        Ok(())
    }
}

fn pair() -> (Recorder, Recorder) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let a = Recorder {
        name: "a",
        seen: seen.clone(),
        ..Recorder::default()
    };
    let b = Recorder {
        name: "b",
        seen,
        ..Recorder::default()
    };
    (a, b)
}

#[test]
fn ticks_count_times_and_fans_out_in_order() {
    let (a, b) = pair();
    let seen = a.seen.clone();
    let mut driver = Driver::new(counting()).sink(a).sink(b);
    let cadence = Cadence::every(Duration::from_millis(1)).count(Some(2));
    assert_eq!(driver.run(cadence).unwrap(), Ended::Count);
    assert_eq!(
        *seen.lock().unwrap(),
        ["a 1 []", "b 1 []", "a 2 []", "b 2 []"]
    );
}

#[test]
fn a_failing_optional_sink_is_counted_in_the_next_interval_and_others_go_on() {
    let (a, b) = pair();
    let (seen, fail) = (a.seen.clone(), a.fail.clone());
    let mut driver = Driver::new(counting()).optional_sink(a).sink(b);
    *fail.lock().unwrap() = true;
    driver.tick().unwrap();
    *fail.lock().unwrap() = false;
    let second = driver.tick().unwrap().unwrap();
    assert_eq!(second.system.sinks.len(), 1);
    assert_eq!(second.system.sinks[0].name, "a");
    assert_eq!(second.system.sinks[0].dropped, 1);
    assert!(
        second.system.sinks[0]
            .error
            .as_deref()
            .unwrap()
            .contains("told to fail")
    );
    driver.tick().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["a 1 []", "b 1 []", "a 2 [1]", "b 2 [1]", "a 3 []", "b 3 []"]
    );
}

#[test]
fn a_failing_required_sink_ends_the_loop_after_the_others_had_it() {
    let (a, b) = pair();
    let (seen, fail) = (a.seen.clone(), a.fail.clone());
    *fail.lock().unwrap() = true;
    let mut driver = Driver::new(counting()).sink(a).sink(b);
    let err = driver
        .run(Cadence::every(Duration::from_millis(1)))
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Sink { ref name, .. } if name == "a"),
        "{err}"
    );
    assert_eq!(*seen.lock().unwrap(), ["a 1 []", "b 1 []"]);
}

#[test]
fn tick_errors_stop_or_reach_the_sinks() {
    let failing = |_| -> Result<Interval, LedgerError> {
        Err(LedgerError::Io {
            path: "/proc/stat".into(),
            source: std::io::Error::other("gone"),
        })
    };
    let (a, _) = pair();
    let seen = a.seen.clone();
    let mut strict = Driver::new(failing).sink(a.clone());
    assert!(matches!(strict.tick(), Err(DriverError::Tick(_))));
    let mut lenient = Driver::new(failing).keep_going().sink(a);
    assert!(lenient.tick().unwrap().is_none());
    assert_eq!(
        *seen.lock().unwrap(),
        ["a missed tick failed: reading /proc/stat: gone"]
    );
}

#[test]
fn control_changes_the_period_and_the_source_and_stops() {
    let (tx, rx) = channel();
    let (a, _) = pair();
    let seen = a.seen.clone();
    let mut driver = Driver::new(counting()).sink(a);
    tx.send(Control::Apply(Box::new(|source: &mut _| {
        // Skip interval 1: the change is seen by the next tick.
        let _ = Source::tick(source, false);
    })))
    .unwrap();
    tx.send(Control::Period(Duration::from_millis(1))).unwrap();
    let cadence = Cadence::every(Duration::from_secs(3600))
        .count(Some(2))
        .control(rx);
    let start = Instant::now();
    assert_eq!(driver.run(cadence).unwrap(), Ended::Count);
    assert!(
        start.elapsed() < Duration::from_secs(600),
        "the period changed"
    );
    assert_eq!(*seen.lock().unwrap(), ["a 2 []", "a 3 []"]);
    let (tx, rx) = channel();
    tx.send(Control::Stop).unwrap();
    let cadence = Cadence::every(Duration::from_secs(3600)).control(rx);
    assert_eq!(driver.run(cadence).unwrap(), Ended::Stopped);
    drop(tx);
    let (tx, rx) = channel::<Control<_>>();
    drop(tx);
    let cadence = Cadence::every(Duration::from_secs(3600)).control(rx);
    assert_eq!(driver.run(cadence).unwrap(), Ended::Stopped, "sender gone");
}
