//! tmux helpers shared by the tests that run `greentop` in a real terminal.
#![allow(dead_code)] // each test file uses its own subset
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kills the tmux session however the test ends, and then every process the session
/// started that outlived it (a greentop that did not die with its terminal).
pub struct Session(pub String);

/// Marks the session's processes: tmux gives it to the pane's environment, and every
/// process started there inherits it.
const MARKER: &str = "GREENTOP_TEST_SESSION";

impl Session {
    /// A new detached session of `width`×`height` running `command`; fails without tmux.
    pub fn start(prefix: &str, width: u16, height: u16, command: &str) -> Session {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}-{}-{nanos}", std::process::id());
        let (w, h) = (width.to_string(), height.to_string());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", &w, "-y", &h])
            .args(["-e", &format!("{MARKER}={name}"), command])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "tmux new-session failed: tmux is installed by the project's setup (apt-get install tmux)"
        );
        Session(name)
    }

    /// The pid of the pane's first process.
    pub fn pane_pid(&self) -> u32 {
        tmux(&["list-panes", "-t", &self.0, "-F", "#{pane_pid}"])
            .trim()
            .parse()
            .expect("pane pid")
    }

    pub fn text(&self) -> String {
        pane(&self.0)
    }

    pub fn is_alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .stderr(Stdio::null())
            .status();
        let marker = format!("{MARKER}={}", self.0);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = marked_processes(&marker);
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                // SAFETY: kill(2) of a process this session started (it carries the
                // session's own marker).
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Live (not zombie) processes whose environment holds `marker` (`NAME=value`).
pub fn marked_processes(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == marker.as_bytes()))
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        !matches!(state, Some("Z" | "X") | None)
    })
}

pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn pane(name: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", name])
}

/// Polls the pane until `ok` holds, or fails with what the pane shows.
pub fn wait_for(name: &str, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
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

pub fn send(name: &str, keys: &[&str]) {
    let mut args = vec!["send-keys", "-t", name];
    args.extend_from_slice(keys);
    tmux(&args);
}

/// Compares `actual` with tests/snapshots/`file`; `UPDATE_SNAPSHOTS=1` rewrites it.
pub fn snapshot_text(file: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(file);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_SNAPSHOTS=1", path.display()));
    assert_eq!(
        actual, expected,
        "{file} changed: rerun with UPDATE_SNAPSHOTS=1 and review the diff"
    );
}
