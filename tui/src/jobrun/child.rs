//! Starting the job's command and collecting it: as the invoking user when greentop
//! runs through sudo, with stdin, stdout and stderr passed through; its exit status
//! as a shell reports it; greentop as the subreaper of the job's orphans.
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// How the command ended: an exit code, or the signal that killed it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// From a wait(2) status word.
    pub fn from_wait(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus {
                code: None,
                signal: Some(libc::WTERMSIG(status)),
            }
        } else {
            ExitStatus {
                code: Some(libc::WEXITSTATUS(status)),
                signal: None,
            }
        }
    }

    /// What a shell would report: the code, or 128 + the signal.
    pub fn shell_code(self) -> u8 {
        let code = match (self.code, self.signal) {
            (_, Some(signal)) => 128 + signal,
            (Some(code), None) => code,
            (None, None) => 1,
        };
        u8::try_from(code & 0xff).unwrap_or(1)
    }

    pub fn success(self) -> bool {
        self.code == Some(0)
    }

    /// `exit status 3`, `killed by SIGTERM`.
    pub fn describe(self) -> String {
        match (self.code, self.signal) {
            (_, Some(signal)) => format!("killed by {}", signal_name(signal)),
            (Some(code), None) => format!("exit status {code}"),
            (None, None) => "did not run".to_string(),
        }
    }
}

/// `SIGTERM`, or `signal 42`.
pub fn signal_name(signal: i32) -> String {
    match signal_hook::low_level::signal_name(signal) {
        Some(name) => name.to_string(),
        None => format!("signal {signal}"),
    }
}

/// The user to run the command as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: String,
    /// Supplementary groups, as initgroups(3) would set them.
    pub groups: Vec<libc::gid_t>,
}

/// The user who ran `sudo greentop run …` (`SUDO_UID`, `SUDO_GID`), when greentop is
/// root; `None` when there is nobody to drop back to.
pub fn invoking_user() -> io::Result<Option<User>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let (Some(uid), Some(gid)) = (number("SUDO_UID"), number("SUDO_GID")) else {
        return Ok(None);
    };
    if uid == 0 {
        return Ok(None);
    }
    let (name, home) = passwd_entry(uid)?;
    let groups = group_list(&name, gid)?;
    Ok(Some(User {
        uid,
        gid,
        name,
        home,
        groups,
    }))
}

/// (name, home) of `uid` from the passwd database.
fn passwd_entry(uid: u32) -> io::Result<(String, String)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero is a valid passwd to be overwritten.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the reads below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() {
        return Err(io::Error::other(format!(
            "SUDO_UID {uid} has no passwd entry"
        )));
    }
    // SAFETY: getpwuid_r succeeded, so pw_name and pw_dir point into `buf`.
    let (name, home) = unsafe {
        (
            CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned(),
            CStr::from_ptr(entry.pw_dir).to_string_lossy().into_owned(),
        )
    };
    Ok((name, home))
}

/// The supplementary groups of `user` with primary group `gid` (getgrouplist(3)).
fn group_list(user: &str, gid: u32) -> io::Result<Vec<libc::gid_t>> {
    let name = CString::new(user).map_err(io::Error::other)?;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `groups` has room for `count` entries; getgrouplist updates count.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        let count = usize::try_from(count).unwrap_or(0);
        if rc >= 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        if count <= groups.len() || count > 65_536 {
            return Err(io::Error::other(format!("group list of {user}")));
        }
        groups.resize(count, 0);
    }
}

/// A started command: its pid and a pidfd that turns readable when it exits.
pub struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// Why the command could not start, and the exit status a shell would give.
#[derive(Debug, thiserror::Error)]
#[error("cannot run {program:?}: {source}")]
pub struct SpawnError {
    pub program: String,
    #[source]
    pub source: io::Error,
}

impl SpawnError {
    /// 127 when not found, 126 otherwise, as shells do.
    pub fn shell_code(&self) -> u8 {
        if self.source.kind() == io::ErrorKind::NotFound {
            127
        } else {
            126
        }
    }
}

/// Starts `argv` with greentop's stdin, stdout, stderr and environment plus `env`,
/// as `user` if given (supplementary groups, gid, uid, then HOME, USER, LOGNAME).
pub fn spawn(
    argv: &[String],
    env: &[(String, String)],
    user: Option<&User>,
) -> Result<Child, SpawnError> {
    let error = |source| SpawnError {
        program: argv.first().cloned().unwrap_or_default(),
        source,
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| error(io::Error::other("empty command")))?;
    let mut command = Command::new(program);
    command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(user) = user {
        command
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
        let (uid, gid, groups) = (user.uid, user.gid, user.groups.clone());
        // SAFETY: the closure runs between fork and exec and only makes the
        // async-signal-safe system calls setgroups, setgid and setuid.
        unsafe {
            command.pre_exec(move || drop_privileges(uid, gid, &groups));
        }
    }
    let child = command.spawn().map_err(error)?;
    let pid = i32::try_from(child.id()).map_err(|e| error(io::Error::other(e)))?;
    // The std handle is dropped: the pid is reaped with waitpid by `reap`.
    drop(child);
    let pidfd = pidfd_open(pid).map_err(error)?;
    Ok(Child { pid, pidfd })
}

fn drop_privileges(uid: u32, gid: u32, groups: &[libc::gid_t]) -> io::Result<()> {
    let check = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: `groups` is a live slice of gid_t.
    check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
    // SAFETY: plain system calls.
    check(unsafe { libc::setgid(gid) })?;
    // SAFETY: plain system call.
    check(unsafe { libc::setuid(uid) })
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reaps every exited child (the command and orphans reparented to greentop);
/// returns the command's status if it was among them.
pub fn reap(command_pid: i32) -> Option<ExitStatus> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid, writable int.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == command_pid {
            found = Some(ExitStatus::from_wait(status));
        }
    }
}

/// Makes greentop the subreaper of its descendants: orphans of the job are
/// reparented to it instead of init, so they stay in the job's tree.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// CPU seconds (user + system) of every reaped descendant, getrusage(RUSAGE_CHILDREN).
pub fn children_cpu_s() -> f64 {
    // SAFETY: all-zero is a valid rusage; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let s = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    s(usage.ru_utime) + s(usage.ru_stime)
}

/// Now on CLOCK_BOOTTIME rounded down to whole clock ticks: no process started
/// after this reports an earlier start time in /proc or in the ledger.
pub fn boottime_floor_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is valid and writable.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    let ns = u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(now.tv_nsec).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    let tick = 1_000_000_000 / hz.max(1);
    ns / tick * tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_read_as_a_shell_reads_them() {
        // (wait status, code, signal, shell code, description)
        let cases = [
            (0, Some(0), None, 0, "exit status 0"),
            (3 << 8, Some(3), None, 3, "exit status 3"),
            (libc::SIGTERM, None, Some(15), 143, "killed by SIGTERM"),
            (libc::SIGINT, None, Some(2), 130, "killed by SIGINT"),
        ];
        for (raw, code, signal, shell, text) in cases {
            let status = ExitStatus::from_wait(raw);
            assert_eq!((status.code, status.signal), (code, signal), "{raw}");
            assert_eq!(status.shell_code(), shell, "{raw}");
            assert_eq!(status.describe(), text);
        }
    }

    #[test]
    fn a_missing_program_is_127() {
        let err = spawn(&["/nonexistent/greentop-test".to_string()], &[], None)
            .err()
            .unwrap();
        assert_eq!(err.shell_code(), 127);
        assert!(
            err.to_string().contains("/nonexistent/greentop-test"),
            "{err}"
        );
        let err = spawn(&["/etc/hostname".to_string()], &[], None)
            .err()
            .unwrap();
        assert_eq!(err.shell_code(), 126);
    }
}
