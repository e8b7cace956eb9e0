//! Phase marks without a library: `GREENTOP_MARK` names a unix datagram socket, and
//! each line a program sends there starts a phase. A sender with an address of its
//! own (Python's `s.bind("")` autobinds one) is answered `ok` once greentop has
//! measured up to the mark, so its next instruction belongs to the new phase;
//! senders without an address are not answered and never wait.
//!
//! The socket lives in a private directory `greentop-run-PID-NANOS` under `$TMPDIR`,
//! removed when greentop exits. A greentop killed with SIGKILL cannot remove it, so
//! each `greentop run` first removes those nobody holds any more.
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable the command finds the socket in.
pub const MARK_ENV: &str = "GREENTOP_MARK";
/// Longest phase name kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// What an addressed sender gets back.
pub const ACK: &[u8] = b"ok\n";
/// Room for one datagram.
const DATAGRAM_BYTES: usize = 4096;

/// The socket, in a private directory removed with it.
pub struct MarkSocket {
    dir: PathBuf,
    path: PathBuf,
    socket: UnixDatagram,
}

/// The marks waiting on the socket.
#[derive(Debug, Default)]
pub struct Marks {
    /// Phase names, one per non-empty line, in arrival order.
    pub names: Vec<String>,
    /// Senders to answer once the boundary is measured.
    pub reply_to: Vec<SocketAddr>,
}

impl MarkSocket {
    /// Binds a fresh socket; `owner` (uid, gid) gets the directory and socket, so a
    /// command run as the invoking user can write to it.
    pub fn open(owner: Option<(u32, u32)>) -> io::Result<MarkSocket> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("{DIR_PREFIX}{}-{nanos}", std::process::id());
        let mut dir = std::env::temp_dir().join(&name);
        // sun_path holds 108 bytes; a long TMPDIR falls back to /tmp.
        if dir.as_os_str().len() > 90 {
            dir = Path::new("/tmp").join(&name);
        }
        // SAFETY: geteuid has no preconditions.
        let owners = [Some(unsafe { libc::geteuid() }), owner.map(|(uid, _)| uid)];
        let owners: Vec<u32> = owners.into_iter().flatten().collect();
        let mut parents = vec![std::env::temp_dir(), PathBuf::from("/tmp")];
        parents.dedup();
        for parent in parents {
            remove_stale(&parent, &owners);
        }
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("mark");
        let socket = match UnixDatagram::bind(&path) {
            Ok(socket) => socket,
            Err(err) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(err);
            }
        };
        let marks = MarkSocket { dir, path, socket };
        marks.socket.set_nonblocking(true)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&marks.dir, Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&marks.path, Some(uid), Some(gid))?;
        }
        Ok(marks)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every datagram waiting, without blocking.
    pub fn drain(&self) -> Marks {
        let mut marks = Marks::default();
        let mut buf = [0u8; DATAGRAM_BYTES];
        while let Ok((len, from)) = self.socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]);
            marks.names.extend(phase_names(&text));
            if !from.is_unnamed() {
                marks.reply_to.push(from);
            }
        }
        marks
    }

    /// Tells waiting senders their mark is in; a sender already gone is skipped.
    pub fn acknowledge(&self, to: &[SocketAddr]) {
        for addr in to {
            let _ = self.socket.send_to_addr(ACK, addr);
        }
    }
}

impl AsFd for MarkSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Drop for MarkSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// What the private directories' names start with.
const DIR_PREFIX: &str = "greentop-run-";

/// Removes, in `parent`, the mark directories of greentops that are gone: those whose
/// socket nobody holds (connecting is refused), or that have no socket and whose
/// greentop's pid is not running. Only directories owned by one of `owners` are
/// touched (never through a link), and only their socket and the directory itself.
/// Returns how many went.
fn remove_stale(parent: &Path, owners: &[u32]) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let path = entry.path();
        // O_NOFOLLOW: a link named like ours is not a directory of ours.
        let Ok(dir) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&path)
        else {
            continue;
        };
        if !dir.metadata().is_ok_and(|m| owners.contains(&m.uid())) {
            continue;
        }
        // The socket through the opened directory, whatever the name points to now.
        let socket = PathBuf::from(format!("/proc/self/fd/{}/mark", dir.as_raw_fd()));
        let stale = match std::fs::symlink_metadata(&socket) {
            Ok(_) => UnixDatagram::unbound().is_ok_and(|probe| {
                probe
                    .connect(&socket)
                    .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
            }),
            Err(_) => !Path::new(&format!("/proc/{pid}")).exists(),
        };
        if stale {
            let _ = std::fs::remove_file(&socket);
            if std::fs::remove_dir(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// The pid in a mark directory's name `greentop-run-PID-NANOS`.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, nanos) = name.strip_prefix(DIR_PREFIX)?.split_once('-')?;
    nanos.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// One name per non-empty line, trimmed and cut to `MAX_NAME_CHARS`.
pub fn phase_names(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| line.chars().take(MAX_NAME_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_non_empty_lines() {
        let long = "x".repeat(300);
        let text = format!(" epoch 1 \n\n\teval\r\n{long}");
        let names: Vec<String> = phase_names(&text).collect();
        assert_eq!(names[..2], ["epoch 1", "eval"]);
        assert_eq!(names[2].chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn addressed_senders_are_answered_and_the_socket_goes_with_it() {
        let marks = MarkSocket::open(None).unwrap();
        let path = marks.path().to_path_buf();
        let anonymous = UnixDatagram::unbound().unwrap();
        anonymous.send_to(b"load\n", &path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let named = UnixDatagram::bind(dir.path().join("me")).unwrap();
        named.send_to(b"train\neval", &path).unwrap();
        let got = marks.drain();
        assert_eq!(got.names, ["load", "train", "eval"]);
        assert_eq!(got.reply_to.len(), 1);
        marks.acknowledge(&got.reply_to);
        let mut buf = [0u8; 8];
        let n = named.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], ACK);
        assert!(marks.drain().names.is_empty());
        drop(marks);
        assert!(!path.exists() && !path.parent().unwrap().exists());
    }

    /// Makes `parent/name`, with a socket `mark` bound and then closed (as a
    /// SIGKILLed greentop leaves it) when `dead_socket`.
    fn leftover(parent: &Path, name: &str, dead_socket: bool) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).unwrap();
        if dead_socket {
            drop(UnixDatagram::bind(dir.join("mark")).unwrap());
        }
        dir
    }

    #[test]
    fn directories_of_greentops_that_are_gone_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        // A dead pid: a child that has been reaped.
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let _ = { dead }.wait();
        // Its socket is held by no one: gone, whoever has pid 1 now.
        let refused = leftover(p, "greentop-run-1-5", true);
        // No socket, and its greentop is gone.
        let unbound = leftover(p, &format!("greentop-run-{dead_pid}-6"), false);
        // Held: a live greentop's (whatever its pid now runs).
        let held = leftover(p, "greentop-run-2-7", false);
        let _holder = UnixDatagram::bind(held.join("mark")).unwrap();
        // Not ours to judge: no socket yet and its pid runs; another name; a link.
        let starting = leftover(p, "greentop-run-1-8", false);
        let other = leftover(p, "greentop-run-job-0123abcd", true);
        let target = leftover(p, "target", true);
        std::os::unix::fs::symlink(&target, p.join("greentop-run-3-9")).unwrap();
        // SAFETY: geteuid has no preconditions.
        let owners = [unsafe { libc::geteuid() }];
        assert_eq!(remove_stale(p, &owners), 2);
        assert!(!refused.exists() && !unbound.exists());
        assert!(held.join("mark").exists() && starting.exists());
        assert!(other.join("mark").exists() && target.join("mark").exists());
        let refused = leftover(p, "greentop-run-1-10", true);
        assert_eq!(remove_stale(p, &[owners[0] + 1]), 0, "not the owner's");
        assert!(refused.join("mark").exists());
    }
}
