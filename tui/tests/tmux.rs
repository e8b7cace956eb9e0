//! The live view in a real terminal: tmux runs the built `greentop` at 120×40 beside
//! a busy shell loop, the test reads the pane and sends keys. Needs tmux (the
//! project's setup installs it); fails, rather than skips, without it.
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::{Session, send, wait_for};

/// Kills the busy loop however the test ends.
struct Busy(Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let busy = Busy(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn busy loop"),
    );
    let busy_pid = busy.0.id();
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
    send(&name, &["-l", "sh"]);
    wait_for(
        &name,
        "only rows matching sh",
        Duration::from_secs(5),
        |t| {
            let rows = table_rows(t);
            t.contains("[filter: sh]")
                && rows.iter().any(|l| row_pid(l) == Some(busy_pid))
                && rows.iter().all(|l| l.to_lowercase().contains("sh"))
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
