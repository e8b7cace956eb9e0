//! The socket server in-process: clients read exactly the Intervals sent (a late
//! one too, with its own metadata), and a client that never reads is dropped and
//! counted while the others keep receiving. Writes are paced by the readers'
//! progress, never by the clock, so a loaded machine cannot change the outcome.
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use super::stream::IntervalStream;
use super::*;
use crate::sinks::Sink;
use crate::sinks::log::synth::{Synth, Workload};
use crate::sinks::queue::queue;

/// Reads every Interval of a connection on a thread, passing each on.
fn reader(path: &std::path::Path) -> Receiver<Interval> {
    let stream = UnixStream::connect(path).unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let stream = IntervalStream::open(stream).unwrap();
        assert_eq!(stream.header().map(|h| h.writer_pid), None, "not read yet");
        for interval in stream {
            if tx.send(interval.unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

/// The synthetic Interval as the pipeline emits it: per-interval numbers only
/// (the synth adds the totals a JSON consumer keeps).
fn next(synth: &mut Synth) -> Interval {
    let mut interval = synth.next_interval();
    for p in &mut interval.processes {
        (p.joules_total, p.gco2_total) = (0.0, 0.0);
    }
    interval
}

fn wait(rx: &Receiver<Interval>) -> Interval {
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the client got the interval")
}

#[test]
fn clients_get_every_interval_and_a_slow_one_is_dropped() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.sock");
    let (listener, file) = bind(&path, None).unwrap();
    let (mut sink, inbox) = queue("socket", 64);
    let server = runtime.spawn(serve(listener, file, inbox));
    let mut synth = Synth::new(Workload::new(200));

    let fast = reader(&path);
    let _slow = UnixStream::connect(&path).unwrap(); // connected, never reads
    // Wait until the server has both (the health entry counts clients).
    while sink.health().unwrap().clients != Some(2) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut sent = Vec::new();
    let mut got = Vec::new();
    let mut dropped = 0;
    while dropped == 0 {
        assert!(sent.len() < 20_000, "the slow client was never dropped");
        let interval = next(&mut synth);
        sink.write(&interval).unwrap();
        sent.push(interval);
        got.push(wait(&fast));
        let health = sink.health().unwrap();
        dropped += health.clients_dropped;
        assert_eq!(health.dropped, 0, "the server's own queue never fills");
    }
    assert_eq!(dropped, 1);
    assert_eq!(sink.health().unwrap().clients, Some(1));
    // A late client starts with the last Interval, its metadata sent afresh.
    let late = reader(&path);
    let first_late = wait(&late);
    assert_eq!(&first_late, sent.last().unwrap());
    for _ in 0..5 {
        let interval = next(&mut synth);
        sink.write(&interval).unwrap();
        got.push(wait(&fast));
        assert_eq!(wait(&late), interval);
        sent.push(interval);
    }
    assert_eq!(got, sent, "the fast client got everything, exactly");
    drop(sink);
    runtime.block_on(server).unwrap().unwrap();
    assert!(!path.exists(), "the socket is removed when the server ends");
    assert!(fast.recv_timeout(Duration::from_secs(60)).is_err(), "ended");
}
