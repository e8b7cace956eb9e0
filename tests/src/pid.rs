//! A workload started at a pid of the test's choosing, for pid-reuse tests: clone3
//! with `set_tid` takes exactly that pid, without moving the kernel's pid cursor
//! (writing `ns_last_pid` would make every process on the machine, other sessions'
//! included, reuse the recently freed pids after it).
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use crate::{Oracle, gt_load, oracle_of};

/// `struct clone_args` up to `set_tid_size` (CLONE_ARGS_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
}

/// A child started by [`spawn_load_at`]; killed and reaped when dropped unless it
/// was waited for.
pub struct PidChild {
    pid: u32,
    reaped: bool,
}

impl PidChild {
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for it to exit, reads the kernel's account of it, and reaps it.
    pub fn wait_with_schedstat(&mut self) -> Oracle {
        let oracle = oracle_of(self.pid, || {
            let mut status = 0;
            // SAFETY: waitpid on our own child, writing into a local int.
            let rc = unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
            assert_eq!(rc, self.pid as i32, "waitpid({})", self.pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "gt-load at pid {} failed: status {status:#x}",
                self.pid
            );
        });
        self.reaped = true;
        oracle
    }
}

impl Drop for PidChild {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signalling and reaping our own child by pid.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGKILL);
                libc::waitpid(self.pid as i32, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Starts `gt-load ARGS` as pid `pid` (which must be free). Needs root
/// (CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN).
pub fn spawn_load_at(pid: u32, args: &[&str]) -> std::io::Result<PidChild> {
    let path = CString::new(gt_load().as_os_str().as_bytes()).expect("path without NUL");
    let mut argv: Vec<CString> = vec![path.clone()];
    argv.extend(
        args.iter()
            .map(|a| CString::new(*a).expect("arg without NUL")),
    );
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let set_tid = [pid as libc::pid_t];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: set_tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: a fork-like clone3 (no shared memory): the child only calls execv and
    // _exit, both async-signal-safe, on memory prepared before the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        0 => {
            // SAFETY: see above; execv only returns on failure.
            unsafe {
                libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
                libc::_exit(127)
            }
        }
        rc if rc < 0 => Err(std::io::Error::last_os_error()),
        rc => Ok(PidChild {
            pid: rc as u32,
            reaped: false,
        }),
    }
}
