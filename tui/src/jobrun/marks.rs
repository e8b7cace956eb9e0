//! Phase marks without a library: `GREENTOP_MARK` names a unix datagram socket, and
//! each line a program sends there starts a phase. A sender with an address of its
//! own (Python's `s.bind("")` autobinds one) is answered `ok` once greentop has
//! measured up to the mark, so its next instruction belongs to the new phase;
//! senders without an address are not answered and never wait.
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::DirBuilderExt;
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
        let name = format!("greentop-run-{}-{nanos}", std::process::id());
        let mut dir = std::env::temp_dir().join(&name);
        // sun_path holds 108 bytes; a long TMPDIR falls back to /tmp.
        if dir.as_os_str().len() > 90 {
            dir = Path::new("/tmp").join(&name);
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
}
