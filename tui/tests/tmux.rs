//! The live view in a real terminal: tmux runs the built `greentop` at 120×40 beside
//! a busy shell loop, the test reads the pane and sends keys. Needs tmux (the
//! project's setup installs it); fails, rather than skips, without it. The loop runs
//! under a name no other process has, so what the test asserts is about processes it
//! started, whatever else runs on the machine.
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::{Session, send, wait_for};

/// A shell busy loop whose command name is unique to this test run (a link to `sh`
/// named after the test's pid, in letters: a filter for it matches no pid). Killed
/// however the test ends.
struct Busy {
    child: Child,
    name: String,
    _dir: tempfile::TempDir,
}

impl Busy {
    fn start() -> Busy {
        let letters: String = std::process::id()
            .to_string()
            .bytes()
            .map(|d| char::from(b'a' + (d - b'0')))
            .collect();
        let name = format!("gtbusy{letters}");
        let dir = tempfile::tempdir().expect("tempdir");
        let sh = dir.path().join(&name);
        std::os::unix::fs::symlink("/bin/sh", &sh).expect("link sh");
        let child = Command::new(&sh)
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn busy loop");
        Busy {
            child,
            name,
            _dir: dir,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The table's rows: the lines after the column header, up to the footer.
fn table_rows(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| !l.trim_start().starts_with("PID "))
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("F1Help") && !l.starts_with("Filter:"))
        .collect()
}

fn row_pid(line: &str) -> Option<u32> {
    line.split_whitespace().next()?.parse().ok()
}

#[test]
fn live_view_in_tmux() {
    let busy = Busy::start();
    let busy_pid = busy.child.id();
    let command = format!("{} --no-gpu -d 0.5", env!("CARGO_BIN_EXE_greentop"));
    let session = Session::start("greentop-test", 120, 40, &command);
    let name = session.0.clone();
    let greentop_pid = session.pane_pid();

    let text = wait_for(
        &name,
        "the header and the busy loop near the top by W",
        Duration::from_secs(15),
        |t| {
            t.contains(" greentop ")
                && t.contains("sort W▼")
                && table_rows(t)
                    .iter()
                    .take(5)
                    .any(|l| row_pid(l) == Some(busy_pid))
        },
    );
    assert!(
        text.contains("[estimated]") || text.contains("[measured]"),
        "{text}"
    );

    send(&name, &["P"]);
    wait_for(&name, "sort by CPU", Duration::from_secs(5), |t| {
        t.contains("sort CPU%▼") && t.contains("CPU%▼ ")
    });

    send(&name, &["/"]);
    send(&name, &["-l", &busy.name]);
    let filter = format!("[filter: {}]", busy.name);
    wait_for(
        &name,
        "only the busy loop's row",
        Duration::from_secs(5),
        |t| {
            let rows = table_rows(t);
            t.contains(&filter)
                && rows.len() == 1
                && row_pid(rows[0]) == Some(busy_pid)
                && rows[0].contains(&busy.name)
        },
    );

    send(&name, &["Escape"]);
    wait_for(&name, "the filter cleared", Duration::from_secs(5), |t| {
        !t.contains("[filter:") && t.contains("F1Help")
    });

    send(&name, &["t"]);
    wait_for(&name, "the tree view", Duration::from_secs(5), |t| {
        t.contains("[tree]")
    });

    send(&name, &["?"]);
    wait_for(&name, "the help overlay", Duration::from_secs(5), |t| {
        t.contains("greentop keys") && t.contains("send a signal to the selected process")
    });
    send(&name, &["Escape"]);
    wait_for(&name, "the help closed", Duration::from_secs(5), |t| {
        !t.contains("greentop keys")
    });

    send(&name, &["q"]);
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{greentop_pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "greentop still running after q:\n{}",
            session.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!session.is_alive(), "the session ends with greentop");
    drop(busy);
}

/// The session's guard: a process that ignores the hang-up and outlives its terminal
/// (as a spinning greentop once did) is gone when the session is dropped.
#[test]
fn the_session_guard_kills_what_outlives_the_terminal() {
    let session = Session::start("gt-guard", 80, 24, "sh -c \"trap '' HUP; exec sleep 600\"");
    let pid = session.pane_pid();
    wait_for(&session.0, "the pane", Duration::from_secs(5), |_| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    common::tmux(&["kill-session", "-t", &session.0]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(common::alive(pid), "sleep ignores the hang-up");
    drop(session);
    assert!(!common::alive(pid), "the guard killed it");
}
