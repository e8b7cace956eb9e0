//! greentop-agent with its log on a full file system (a 2 MiB tmpfs this test
//! mounts, 256 KiB of it left for the log; needs root): one clear error naming the
//! segment, the loss counted in `system.sinks`, the socket serving on, no segment
//! left damaged, and writing resumed once space is freed — every acknowledged
//! interval reads back.
use std::os::unix::net::UnixStream;
use std::sync::mpsc::channel;

use agent::sinks::log::read_intervals;
use agent::sinks::socket::stream::IntervalStream;
use serde_json::Value;

mod support;
use support::{Agent, PATIENCE, Tmpfs, wait_until};

/// The `log` entry of a JSON line's `system.sinks`.
fn log_health(line: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(line).ok()?;
    let sinks = value["system"]["sinks"].as_array()?;
    sinks.iter().find(|s| s["name"] == "log").cloned()
}

#[test]
fn a_full_disk_is_one_clear_error_the_socket_serves_on_and_writing_resumes() {
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _fs = Tmpfs::mount(&mnt, "2m");
    let filler = mnt.join("filler");
    // Freeing it makes room for many Intervals however many processes a busy
    // machine runs (an Interval with --threads can take tens of KiB).
    std::fs::write(&filler, vec![1u8; 1792 << 10]).unwrap();
    let (log, sock) = (mnt.join("log"), base.path().join("agent.sock"));
    let args = [
        "--log-dir",
        log.to_str().unwrap(),
        "--socket",
        sock.to_str().unwrap(),
        "--json",
        "--threads",
        "--interval",
        "0.05",
        "--rotate-size",
        "64KiB",
        "--fsync",
        "always",
    ];
    let mut agent = Agent::start(&args, Some("warn,agent=info,greentop::log=debug"));
    wait_until("the socket", || UnixStream::connect(&sock).is_ok());
    let (tx, received) = channel();
    let stream = UnixStream::connect(&sock).unwrap();
    std::thread::spawn(move || {
        for interval in IntervalStream::open(stream).unwrap() {
            if interval.is_err() || tx.send(()).is_err() {
                return;
            }
        }
    });

    let mut acked = 0usize;
    let error = agent.stderr.until("the disk-full error", |l| {
        acked += usize::from(l.contains("interval written"));
        l.contains("ERROR")
    });
    assert!(
        error.contains("no space left on the device") && error.contains(log.to_str().unwrap()),
        "{error}"
    );
    assert!(
        acked > 0,
        "some intervals were written before the disk filled"
    );
    let mut stdout = agent.stdout.take().unwrap();
    let counted = stdout.until("the loss in system.sinks", |l| {
        log_health(l).is_some_and(|h| h["dropped"].as_u64() > Some(0))
    });
    let health = log_health(&counted).unwrap();
    assert!(
        health["error"].as_str().unwrap().contains("no space left"),
        "{health}"
    );
    // The socket serves on while the log cannot write.
    while received.try_recv().is_ok() {}
    for _ in 0..10 {
        received
            .recv_timeout(PATIENCE)
            .expect("the socket still serves");
    }

    std::fs::remove_file(&filler).unwrap();
    agent.stderr.until("writing resumed", |l| {
        acked += usize::from(l.contains("interval written"));
        l.contains("writing resumed")
    });
    let mut after = 0;
    while after < 5 {
        let line = agent
            .stderr
            .until("an acknowledged write", |l| l.contains("interval written"));
        assert!(line.contains("interval written"));
        after += 1;
    }
    acked += after;
    assert!(agent.stop().success(), "{}", agent.stderr.seen());
    while let Some(line) = agent.stderr.next() {
        acked += usize::from(line.contains("interval written"));
    }
    let mut back = 0usize;
    let notices = read_intervals(&[log], &mut |_| back += 1).unwrap();
    assert!(
        notices.is_empty(),
        "a segment was left damaged: {notices:?}"
    );
    assert_eq!(back, acked, "every acknowledged interval, nothing else");
}
