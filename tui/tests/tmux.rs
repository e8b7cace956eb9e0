//! The live view in a real terminal: tmux runs the built `greentop` at 120×40 beside
//! a busy shell loop, the test reads the pane and sends keys. Needs tmux (the
//! project's setup installs it); fails, rather than skips, without it.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kills the tmux session however the test ends.
struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// Kills the busy loop however the test ends.
struct Busy(Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pane(name: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", name])
}

/// Polls the pane until `ok` holds, or fails with what the pane shows.
fn wait_for(name: &str, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = pane(name);
        if ok(&text) {
            return text;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out waiting for {what}; the pane shows:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
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

fn send(name: &str, keys: &[&str]) {
    let mut args = vec!["send-keys", "-t", name];
    args.extend_from_slice(keys);
    tmux(&args);
}

#[test]
fn live_view_in_tmux() {
    let found = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "tmux is not installed: the project's setup installs it (apt-get install tmux)"
    );
    let busy = Busy(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn busy loop"),
    );
    let busy_pid = busy.0.id();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let session = Session(format!("greentop-test-{}-{nanos}", std::process::id()));
    let name = session.0.clone();
    let command = format!("{} --no-gpu -d 0.5", env!("CARGO_BIN_EXE_greentop"));
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "40",
            &command,
        ])
        .status()
        .expect("start tmux");
    assert!(started.success());
    let greentop_pid: u32 = tmux(&["list-panes", "-t", &name, "-F", "#{pane_pid}"])
        .trim()
        .parse()
        .expect("pane pid");

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
            pane(&name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let gone = Command::new("tmux")
        .args(["has-session", "-t", &name])
        .stderr(Stdio::null())
        .status();
    assert!(
        !gone.is_ok_and(|s| s.success()),
        "the session ends with greentop"
    );
    drop(busy);
}

#[test]
fn sigterm_restores_the_terminal() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("gt-term-{}-{nanos}", std::process::id());
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "100",
            "-y",
            "30",
            "sh",
        ])
        .status()
        .expect("tmux is not installed: the project's setup installs it");
    assert!(status.success());
    let _session = Session(name.clone());
    let command = format!(
        "{} -d 0.5 --no-gpu; echo EXITED=$?",
        env!("CARGO_BIN_EXE_greentop")
    );
    send(&name, &[&command, "Enter"]);
    wait_for(&name, "the live view", Duration::from_secs(15), |t| {
        t.contains("?:help")
    });
    let pid = tmux(&["list-panes", "-t", &name, "-F", "#{pane_pid}"]);
    let shell: u32 = pid.trim().parse().expect("pane pid");
    let children =
        std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap_or_default();
    let greentop: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("greentop runs under the shell");
    // SAFETY: plain kill(2) of the greentop child this test started.
    assert_eq!(unsafe { libc::kill(greentop, libc::SIGTERM) }, 0);
    let text = wait_for(&name, "greentop to exit", Duration::from_secs(10), |t| {
        t.contains("EXITED=")
    });
    assert!(
        !text.contains("?:help"),
        "the alternate screen is gone:\n{text}"
    );
    let mode = Command::new("tmux")
        .args([
            "display-message",
            "-p",
            "-t",
            &name,
            "#{alternate_on} #{mouse_any_flag}",
        ])
        .output()
        .expect("tmux display-message");
    assert_eq!(
        String::from_utf8_lossy(&mode.stdout).trim(),
        "0 0",
        "alternate screen and mouse reporting off"
    );
}
