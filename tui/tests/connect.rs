//! `greentop --connect` in a real terminal, as an unprivileged user: tmux runs
//! greentop under setpriv as nobody with only the socket's group, beside a
//! greentop-agent serving that socket and a busy loop; the view shows the loop
//! live, says it is connected, says so when the agent goes, and reconnects when
//! it is back. Without the group, greentop refuses with a clear error. Needs root
//! (setpriv), tmux, and greentop-agent built beside greentop (`cargo build`).
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::{Session, wait_for};

const NOBODY: u32 = 65534;

/// Killed and reaped when dropped, pass or fail.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_greentop")).with_file_name("greentop-agent");
    assert!(
        path.exists(),
        "{} is not built: run `cargo build` (cargo xtask test builds it)",
        path.display()
    );
    path
}

fn agent(sock: &Path) -> Kill {
    let child = Command::new(agent_binary())
        .args(["--ledger", "procfs", "--source", "estimate", "--no-gpu"])
        .args(["--interval", "0.5", "--socket-group", "nogroup", "--socket"])
        .arg(sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn greentop-agent");
    Kill(child)
}

fn as_nobody(gid: u32, args: &str) -> String {
    format!(
        "setpriv --reuid={NOBODY} --regid={gid} --clear-groups {} {args}",
        env!("CARGO_BIN_EXE_greentop")
    )
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn connect_shows_live_data_to_a_member_of_the_socket_group_without_root() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "setpriv needs root");
    let gid = agent::sinks::socket::group_id("nogroup").expect("the nogroup group");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let sock = dir.path().join("agent.sock");
    let mut running = Some(agent(&sock));
    let busy = Kill(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    );
    let busy_pid = busy.0.id().to_string();
    let wait = Duration::from_secs(60);
    let deadline = std::time::Instant::now() + wait;
    while !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent made no socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let command = as_nobody(gid, &format!("--connect {}", sock.display()));
    let session = Session::start("greentop-connect", 120, 40, &command);
    let connected = format!("agent {} connected", sock.display());
    wait_for(&session.0, "live data from the agent", wait, |t| {
        t.contains(&connected) && t.lines().any(|l| l.trim_start().starts_with(&busy_pid))
    });
    assert_eq!(
        uid_of(session.pane_pid()),
        Some(NOBODY),
        "greentop runs as nobody"
    );

    drop(running.take());
    wait_for(&session.0, "the agent gone", wait, |t| {
        t.contains("DISCONNECTED, retrying")
    });
    running = Some(agent(&sock));
    wait_for(&session.0, "connected again", wait, |t| {
        t.contains(&connected)
    });
    common::send(&session.0, &["q"]);
    drop(session);

    // Not in the group: a clear refusal, exit status 2.
    let shell = format!(
        "{}; echo EXIT=$?; sleep 60",
        as_nobody(1, &format!("--connect {}", sock.display()))
    );
    let outsider = Session::start("greentop-connect-refused", 120, 10, &shell);
    let text = wait_for(&outsider.0, "the refusal", wait, |t| t.contains("EXIT="));
    assert!(
        text.contains("Permission denied") && text.contains("EXIT=2"),
        "{text}"
    );
    assert!(text.contains("--socket-group"), "{text}");
    drop(running);
}
