//! Opening the agent's socket: refuse when another agent serves the path (connect
//! to it: a live listener answers, a file left by a crash refuses), replace a
//! stale file, create the socket with mode 0660 and the configured group, and
//! remove it on the way out only while it is still ours.
use std::ffi::CString;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::cli::UsageError;

/// Mode of the socket file: the owner and the group may connect.
pub const SOCKET_MODE: u32 = 0o660;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(
        "{}: another greentop-agent is serving this socket; stop it first or choose another --socket",
        path.display()
    )]
    InUse { path: PathBuf },
    #[error("{}: exists and is not a socket; refusing to replace it", path.display())]
    NotSocket { path: PathBuf },
    #[error("{what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The group id of a group name (or number), as `--socket-group` takes it.
pub fn group_id(name: &str) -> Result<u32, UsageError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || UsageError(format!("unknown group '{name}' (--socket-group)"));
    let c_name = CString::new(name).map_err(|_| unknown())?;
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    // SAFETY: an all-zero `group` is a valid value for getgrnam_r to fill.
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives it.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(unknown());
    }
    Ok(group.gr_gid)
}

/// The socket file this process created; removed on drop if it still is.
#[derive(Debug)]
pub struct SocketFile {
    pub path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == (self.dev, self.ino));
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds `path` as described above; `gid` owns the socket when given.
pub fn bind(path: &Path, gid: Option<u32>) -> Result<(UnixListener, SocketFile), SocketError> {
    let io = |what, source| SocketError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    }
    remove_if_stale(path)?;
    // The file is created by bind(2) with the process's umask: make it 0660 from
    // the start, so it is never more open than that, then set it exactly.
    // SAFETY: umask(2) only swaps the process's file-creation mask.
    let old_mask = unsafe { libc::umask(0o117) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old_mask) };
    let listener = bound.map_err(|e| match e.kind() {
        ErrorKind::AddrInUse => SocketError::InUse {
            path: path.to_path_buf(),
        },
        _ => io("binding", e),
    })?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| io("reading", e))?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| io("setting the mode of", e))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| io("setting the group of", e))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| io("configuring", e))?;
    Ok((listener, file))
}

/// Errors if `path` is a live socket or not a socket; removes a dead one.
fn remove_if_stale(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SocketError::Io {
                what: "reading",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotSocket {
            path: path.to_path_buf(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(
                "{}: removing a stale socket (no agent listens)",
                path.display()
            );
            std::fs::remove_file(path).map_err(|source| SocketError::Io {
                what: "removing the stale socket",
                path: path.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(SocketError::Io {
            what: "checking for an agent on",
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_socket_is_refused_a_stale_one_replaced_and_removed_when_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/agent.sock");
        let (listener, file) = bind(&path, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, SOCKET_MODE);
        let err = bind(&path, None).unwrap_err();
        assert!(matches!(err, SocketError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("another greentop-agent"), "{err}");
        assert!(
            path.exists(),
            "the refused second bind left the socket alone"
        );
        // A crash: the listener is gone, the file stays.
        drop(listener);
        std::mem::forget(file);
        let (_listener, file) = bind(&path, None).unwrap();
        drop(file);
        assert!(!path.exists(), "removed on the way out");
        std::fs::write(&path, "data").unwrap();
        let err = bind(&path, None).unwrap_err();
        assert!(matches!(err, SocketError::NotSocket { .. }), "{err}");
    }

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(group_id("0").unwrap(), 0);
        assert_eq!(group_id("root").unwrap(), 0);
        let err = group_id("no-such-group-here").unwrap_err().to_string();
        assert_eq!(err, "unknown group 'no-such-group-here' (--socket-group)");
    }
}
