//! greentop dies with its terminal (STYLE.md rule 19): closed by `tmux kill-session`,
//! by SIGTERM, SIGHUP or SIGINT, and when its parent ignores SIGHUP so that only the
//! dead terminal itself can tell it. Each case runs the built binary in tmux with the
//! eBPF ledger and checks that the process is gone within 2 s, used under 5 % of a
//! CPU over those 2 s (crossterm-rs/crossterm#793 made it spin at 100 %), and that
//! the kernel no longer has the BPF programs and links it held. Whatever happens, the
//! session's guard SIGKILLs a greentop that outlives its terminal.
use std::time::{Duration, Instant};

mod common;
use common::{Session, alive, send, wait_for};

/// How soon greentop must be gone.
const EXIT_LIMIT: Duration = Duration::from_secs(2);
/// CPU it may use over `EXIT_LIMIT` after being told to go: 5 %.
const CPU_LIMIT: Duration = Duration::from_millis(100);

fn greentop_command() -> String {
    format!(
        "{} --ledger ebpf --no-gpu -d 0.5",
        env!("CARGO_BIN_EXE_greentop")
    )
}

/// User + system CPU time of the whole process (exited threads included).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_s = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / per_s))
}

/// The greentop in the pane: the pane's process or a descendant of it.
fn greentop_pid(session: &Session) -> u32 {
    let mut pid = session.pane_pid();
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "greentop" {
            return pid;
        }
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        let first = children
            .ok()
            .and_then(|c| c.split_whitespace().next()?.parse().ok());
        pid = first.unwrap_or_else(|| panic!("no greentop under the pane: {}", session.text()));
    }
}

/// BPF program and link ids the process holds, from /proc/PID/fdinfo.
fn bpf_ids(pid: u32) -> (Vec<u32>, Vec<u32>) {
    let (mut progs, mut links) = (Vec::new(), Vec::new());
    let dir = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).expect("fdinfo");
    for entry in dir.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let mut kv = line.split(':').map(str::trim);
            let (key, value) = (kv.next(), kv.next().and_then(|v| v.parse().ok()));
            match (key, value) {
                (Some("prog_id"), Some(id)) => progs.push(id),
                (Some("link_id"), Some(id)) => links.push(id),
                _ => {}
            }
        }
    }
    progs.sort_unstable();
    progs.dedup();
    links.sort_unstable();
    links.dedup();
    (progs, links)
}

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;

/// Whether the kernel still has the BPF object `id` (asked by id, not our state).
fn bpf_exists(command: libc::c_long, id: u32) -> bool {
    // `union bpf_attr` for *_GET_FD_BY_ID: id, next_id, open_flags.
    let attr: [u32; 3] = [id, 0, 0];
    // SAFETY: the kernel reads `size_of_val(&attr)` bytes of `attr`, which lives for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd >= 0 {
        // SAFETY: closing the descriptor the kernel just gave us.
        unsafe { libc::close(fd as libc::c_int) };
        return true;
    }
    let err = std::io::Error::last_os_error();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ENOENT),
        "bpf({command}, {id}): {err}"
    );
    false
}

/// A running greentop in tmux, with the BPF objects it held.
struct Running {
    session: Session,
    pid: u32,
    progs: Vec<u32>,
    links: Vec<u32>,
}

impl Running {
    /// Waits for the live view on the eBPF ledger, then reads what the process holds.
    fn wait_ready(session: Session) -> Self {
        wait_for(&session.0, "the live view", Duration::from_secs(20), |t| {
            t.contains("?:help") && t.contains("ebpf-")
        });
        let pid = greentop_pid(&session);
        let (progs, links) = bpf_ids(pid);
        assert!(!progs.is_empty(), "greentop {pid} holds no BPF program");
        Running {
            session,
            pid,
            progs,
            links,
        }
    }

    /// Does `action`, then waits for the process to go; asserts the time, the CPU it
    /// used meanwhile and that its BPF objects are gone from the kernel.
    fn assert_ends_after(self, what: &str, action: impl FnOnce(&Session, u32)) -> Session {
        let cpu_before = cpu_time(self.pid).expect("greentop is running");
        let mut cpu_last = cpu_before;
        let start = Instant::now();
        action(&self.session, self.pid);
        while alive(self.pid) {
            cpu_last = cpu_time(self.pid).unwrap_or(cpu_last);
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what}: greentop {} still running after 10 s, {:?} CPU",
                self.pid,
                cpu_last - cpu_before
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let (after, cpu) = (start.elapsed(), cpu_last.saturating_sub(cpu_before));
        eprintln!("{what}: gone after {after:?}, {cpu:?} CPU");
        assert!(after < EXIT_LIMIT, "{what}: gone only after {after:?}");
        assert!(cpu < CPU_LIMIT, "{what}: used {cpu:?} CPU while exiting");
        let deadline = Instant::now() + Duration::from_secs(2);
        let left = |command, ids: &[u32]| -> Vec<u32> {
            ids.iter()
                .copied()
                .filter(|&id| bpf_exists(command, id))
                .collect()
        };
        while !left(BPF_PROG_GET_FD_BY_ID, &self.progs).is_empty()
            || !left(BPF_LINK_GET_FD_BY_ID, &self.links).is_empty()
        {
            assert!(
                Instant::now() < deadline,
                "{what}: BPF programs {:?} / links {:?} still loaded 2 s after exit",
                left(BPF_PROG_GET_FD_BY_ID, &self.progs),
                left(BPF_LINK_GET_FD_BY_ID, &self.links)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (progs, links) = (self.progs.len(), self.links.len());
        let after_exit =
            Duration::from_secs(2) - deadline.saturating_duration_since(Instant::now());
        eprintln!(
            "{what}: its {progs} BPF programs and {links} links gone {after_exit:?} after it"
        );
        self.session
    }
}

#[test]
fn kill_session_ends_greentop() {
    let session = Session::start("gt-exit-kill", 100, 30, &greentop_command());
    let running = Running::wait_ready(session);
    running.assert_ends_after("tmux kill-session", |session, _| {
        common::tmux(&["kill-session", "-t", &session.0]);
    });
}

/// greentop under a shell that goes on after it: the signal ends it, the terminal
/// is restored, the exit status is 128 + the signal.
fn assert_signal_ends_greentop(signal: libc::c_int, name: &str) {
    let session = Session::start(&format!("gt-exit-{name}"), 100, 30, "sh");
    send(
        &session.0,
        &[&format!("{}; echo EXITED=$?", greentop_command()), "Enter"],
    );
    let running = Running::wait_ready(session);
    let session = running.assert_ends_after(name, |_, pid| {
        let pid = i32::try_from(pid).expect("pid");
        // SAFETY: kill(2) of the greentop this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    });
    let status = format!("EXITED={}", 128 + signal);
    let text = wait_for(&session.0, &status, Duration::from_secs(5), |t| {
        t.contains(&status)
    });
    assert!(
        !text.contains("?:help"),
        "the alternate screen is gone:\n{text}"
    );
    let mode = common::tmux(&[
        "display-message",
        "-p",
        "-t",
        &session.0,
        "#{alternate_on} #{mouse_any_flag}",
    ]);
    assert_eq!(
        mode.trim(),
        "0 0",
        "alternate screen and mouse reporting off"
    );
}

#[test]
fn sigterm_ends_greentop_and_restores_the_terminal() {
    assert_signal_ends_greentop(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_ends_greentop_and_restores_the_terminal() {
    assert_signal_ends_greentop(libc::SIGHUP, "SIGHUP");
}

#[test]
fn sigint_ends_greentop_and_restores_the_terminal() {
    assert_signal_ends_greentop(libc::SIGINT, "SIGINT");
}

/// Bit of `signal` in a /proc/PID/status signal mask.
fn in_mask(pid: u32, mask: &str, signal: libc::c_int) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with(mask)).expect(mask);
    let bits = u64::from_str_radix(line[mask.len()..].trim(), 16).expect("hex mask");
    bits & (1 << (signal - 1)) != 0
}

/// The parent shell ignores SIGHUP, so greentop inherits the ignored SIGHUP and no
/// signal arrives when the terminal closes: only the dead terminal can end it.
#[test]
fn a_parent_ignoring_hup_does_not_keep_greentop_alive() {
    let command = format!("sh -c \"trap '' HUP; {}; sleep 30\"", greentop_command());
    let session = Session::start("gt-exit-trap-hup", 100, 30, &command);
    let running = Running::wait_ready(session);
    assert!(
        in_mask(running.pid, "SigIgn:", libc::SIGHUP),
        "greentop keeps SIGHUP ignored as its parent asked"
    );
    running.assert_ends_after("kill-session, SIGHUP ignored", |session, _| {
        common::tmux(&["kill-session", "-t", &session.0]);
    });
}
