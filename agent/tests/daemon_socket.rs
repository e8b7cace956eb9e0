//! greentop-agent's socket, run for real: created 0660 with the configured group; a
//! second agent on the same path refuses to start and leaves the first alone; a
//! stale socket (its agent SIGKILLed) is replaced. A client that never reads is
//! dropped and counted while a reading client gets every Interval — the same
//! Intervals, bit for bit, that the log recorded, so a replay shows what the live
//! view showed.
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};

use agent::model::Interval;
use agent::sinks::log::index::LogIndex;
use agent::sinks::socket::group_id;
use agent::sinks::socket::stream::IntervalStream;
use serde_json::Value;

mod support;
use support::{Agent, PATIENCE, wait_until};

/// A group other than root's, with its id.
fn other_group() -> (&'static str, u32) {
    ["nogroup", "nobody"]
        .into_iter()
        .find_map(|name| group_id(name).ok().map(|gid| (name, gid)))
        .expect("a nogroup or nobody group (Debian has nogroup)")
}

fn connectable(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// Reads a connection's Intervals on a thread; the header's pid comes first.
fn client(path: &Path) -> Receiver<(u32, Interval)> {
    let stream = UnixStream::connect(path).unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut intervals = IntervalStream::open(stream).unwrap();
        while let Ok(Some(interval)) = intervals.next_interval() {
            let pid = intervals.header().map_or(0, |h| h.writer_pid);
            if tx.send((pid, interval)).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn socket_is_0660_with_its_group_and_a_second_agent_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let sock_arg = sock.to_str().unwrap();
    let (group, gid) = other_group();
    let args = ["--socket", sock_arg, "--socket-group", group];
    let mut first = Agent::start(&args, None);
    wait_until("the socket", || connectable(&sock));
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid, "owned by {group}");

    let mut second = Agent::start(&args, None);
    assert_eq!(second.wait().code(), Some(1), "{}", second.stderr.seen());
    let said = second
        .stderr
        .until("the refusal", |l| l.contains("another"));
    assert!(
        said.contains(sock_arg) && said.contains("another greentop-agent is serving this socket"),
        "{said}"
    );
    let first_pid = first.pid() as u32;
    let (pid, _) = client(&sock).recv_timeout(PATIENCE).unwrap();
    assert_eq!(pid, first_pid, "the first agent still serves");

    // SIGKILL leaves the socket file behind: the next agent replaces it.
    first.signal(libc::SIGKILL);
    first.wait();
    assert!(sock.exists() && !connectable(&sock), "a stale socket");
    let mut third = Agent::start(&args, None);
    let third_pid = third.pid() as u32;
    wait_until("the new socket", || connectable(&sock));
    let (pid, _) = client(&sock).recv_timeout(PATIENCE).unwrap();
    assert_eq!(pid, third_pid);
    assert!(third.stop().success(), "{}", third.stderr.seen());
    assert!(!sock.exists(), "removed on the way out");
}

/// The `socket` entry of a JSON line's `system.sinks`.
fn socket_health(line: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(line).ok()?;
    let sinks = value["system"]["sinks"].as_array()?;
    sinks.iter().find(|s| s["name"] == "socket").cloned()
}

#[test]
fn a_slow_client_is_dropped_and_counted_while_a_reader_gets_what_the_log_got() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, log) = (dir.path().join("agent.sock"), dir.path().join("log"));
    let args = [
        "--socket",
        sock.to_str().unwrap(),
        "--log-dir",
        log.to_str().unwrap(),
        "--json",
        "--threads",
        "--interval",
        "0.1",
    ];
    let mut agent = Agent::start(&args, None);
    wait_until("the socket", || connectable(&sock));
    let fast = client(&sock);
    let mut slow = UnixStream::connect(&sock).unwrap(); // never reads until dropped
    let mut stdout = agent.stdout.take().unwrap();
    let dropped_at = stdout.until("a dropped client in system.sinks", |l| {
        socket_health(l).is_some_and(|s| s["clients_dropped"] == 1)
    });
    let health = socket_health(&dropped_at).unwrap();
    assert_eq!(
        health["clients"], 1,
        "the reader is still connected: {health}"
    );
    agent.stderr.until("the warning", |l| {
        l.contains("a client fell 8 intervals behind")
    });
    // The dropped client finds its connection closed (after what was buffered).
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    match slow.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // The reader keeps receiving.
    let ts: String = serde_json::from_str::<Value>(&dropped_at).unwrap()["ts"]
        .as_str()
        .unwrap()
        .into();
    let mut got: Vec<Interval> = Vec::new();
    while got.iter().filter(|i| i.ts > ts).count() < 10 {
        got.push(
            fast.recv_timeout(PATIENCE)
                .expect("the reader still gets Intervals")
                .1,
        );
    }
    assert!(agent.stop().success(), "{}", agent.stderr.seen());
    got.extend(fast.iter().map(|(_, i)| i));

    // Every Interval the reader got is the log's, in order, none missing.
    let (index, notices) = LogIndex::open(&[log]).unwrap();
    assert!(notices.is_empty(), "{notices:?}");
    let logged: Vec<Interval> = (0..index.len())
        .map(|i| index.interval(i).unwrap())
        .collect();
    let first = logged
        .iter()
        .position(|i| i.ts == got[0].ts)
        .expect("the reader's first Interval is in the log");
    let n = got.len().min(logged.len() - first);
    assert!(n + 1 >= got.len(), "the log has the reader's Intervals");
    for (a, b) in got[..n].iter().zip(&logged[first..first + n]) {
        assert_eq!(a.ts, b.ts);
        // The log does not keep system.sinks (the agent's own health).
        let mut a = a.clone();
        a.system.sinks.clear();
        assert_eq!(&a, b, "Interval {} as streamed and as logged", a.ts);
    }
}
