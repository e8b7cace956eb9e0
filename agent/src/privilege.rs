//! Least privilege: once the probes are loaded, the counters opened and the metrics
//! port bound, the agent keeps only the capabilities it still uses and drops the
//! rest from every set (effective, permitted, inheritable, ambient, bounding), then
//! sets no_new_privs. What is kept and why: docs/deploy/README.md#capabilities.
//!
//! Capabilities belong to threads: each thread that exists at the drop drops its own
//! ([`drop_this_thread`]), and the last one calls [`drop_to`], which refuses while
//! any other thread still holds more than is kept. Threads started afterwards (the
//! tokio runtime's) inherit the dropped sets.
use std::fmt;
use std::io;

/// Capability numbers (linux/capability.h) the agent talks about.
pub mod cap {
    pub const DAC_READ_SEARCH: u32 = 2;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const SYS_PTRACE: u32 = 19;
    pub const SYS_ADMIN: u32 = 21;
    pub const SYS_RESOURCE: u32 = 24;
    pub const PERFMON: u32 = 38;
    pub const BPF: u32 = 39;
}

/// Names of capabilities 0..=40, as `capsh` prints them.
const NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// A set of capabilities, bit N for capability N.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn of(caps: &[u32]) -> CapSet {
        CapSet(caps.iter().fold(0, |bits, c| bits | 1 << c))
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// The capability called `name` (`cap_bpf`, `bpf`, `CAP_BPF`), if known.
    pub fn parse_name(name: &str) -> Option<u32> {
        let lower = name.to_ascii_lowercase();
        let full = if lower.starts_with("cap_") {
            lower
        } else {
            format!("cap_{lower}")
        };
        NAMES.iter().position(|n| *n == full).map(|i| i as u32)
    }

    /// `0x…` as in /proc/PID/status (`CapEff: 000000c000000000`).
    pub fn from_status_hex(text: &str) -> Option<CapSet> {
        u64::from_str_radix(text.trim(), 16).ok().map(CapSet)
    }
}

impl fmt::Display for CapSet {
    /// `cap_perfmon,cap_bpf`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<String> = (0..64)
            .filter(|&c| self.contains(c))
            .map(|c| {
                NAMES
                    .get(c as usize)
                    .map_or(format!("cap_{c}"), |n| n.to_string())
            })
            .collect();
        f.write_str(&names.join(","))
    }
}

/// A capability named on the command line: `sys_admin`, `cap_sys_admin`, `CAP_SYS_ADMIN`.
pub fn parse_capability(text: &str) -> Result<u32, String> {
    CapSet::parse_name(text)
        .ok_or_else(|| format!("'{text}' is not a capability name (see capabilities(7))"))
}

/// Why capabilities could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "cannot drop capabilities: thread {tid} still holds {holds}, and capabilities \
         belong to each thread (every thread started before the drop must drop its own)"
    )]
    OtherThread { tid: u32, holds: CapSet },
    #[error("{what} failed")]
    Syscall {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What [`drop_to`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Permitted before.
    pub before: CapSet,
    /// Permitted (and effective) now.
    pub kept: CapSet,
    /// Whether the bounding set was cut down too (needs CAP_SETPCAP).
    pub bounding: bool,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dropped = CapSet(self.before.0 & !self.kept.0);
        write!(
            f,
            "capabilities: kept {}; dropped {} ({})",
            self.kept,
            dropped.len(),
            if dropped.len() > 8 {
                "all others".to_string()
            } else {
                dropped.to_string()
            }
        )?;
        if !self.bounding {
            f.write_str("; bounding set unchanged (no cap_setpcap)")?;
        }
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two `CapData`, 64 capabilities.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// (effective, permitted, inheritable) of the calling thread.
pub fn current() -> Result<(CapSet, CapSet, CapSet), PrivilegeError> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: valid header and a two-element array, as version 3 requires.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    check(rc, "capget")?;
    let join =
        |f: fn(&CapData) -> u32| CapSet(u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32);
    Ok((
        join(|d| d.effective),
        join(|d| d.permitted),
        join(|d| d.inheritable),
    ))
}

/// Keeps `keep` (as far as the process has them) and drops every other capability
/// from every set of the calling thread, then sets no_new_privs. Refused while
/// another thread of the process holds a capability not in `keep`.
pub fn drop_to(keep: CapSet) -> Result<Dropped, PrivilegeError> {
    if let Some((tid, holds)) = other_thread_holding(keep) {
        return Err(PrivilegeError::OtherThread { tid, holds });
    }
    drop_this_thread(keep)
}

/// [`drop_to`] for the calling thread only, whatever the others hold: for a thread
/// that drops its own before the last one calls [`drop_to`].
pub fn drop_this_thread(keep: CapSet) -> Result<Dropped, PrivilegeError> {
    let (effective, permitted, _) = current()?;
    let kept = CapSet(keep.0 & permitted.0);
    let bounding = effective.contains(cap::SETPCAP);
    if bounding {
        for c in 0..=last_cap() {
            if !kept.contains(c) {
                // SAFETY: prctl with integer arguments only.
                let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
                check(rc.into(), "prctl(PR_CAPBSET_DROP)")?;
            }
        }
    }
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong;
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_CAP_AMBIENT, clear, 0, 0, 0) };
    check(rc.into(), "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")?;
    let low = |set: CapSet| set.0 as u32;
    let high = |set: CapSet| (set.0 >> 32) as u32;
    let data = [
        CapData {
            effective: low(kept),
            permitted: low(kept),
            inheritable: 0,
        },
        CapData {
            effective: high(kept),
            permitted: high(kept),
            inheritable: 0,
        },
    ];
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: valid header and a two-element array, as version 3 requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(rc, "capset")?;
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check(rc.into(), "prctl(PR_SET_NO_NEW_PRIVS)")?;
    Ok(Dropped {
        before: permitted,
        kept,
        bounding,
    })
}

fn check(rc: libc::c_long, what: &'static str) -> Result<(), PrivilegeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PrivilegeError::Syscall {
            what,
            source: io::Error::last_os_error(),
        })
    }
}

/// The highest capability this kernel knows (40 where it cannot be read).
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Another thread of this process and what it holds (permitted) beyond `keep`.
fn other_thread_holding(keep: CapSet) -> Option<(u32, CapSet)> {
    // SAFETY: gettid has no arguments and cannot fail.
    let me = unsafe { libc::gettid() } as u32;
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    tasks.flatten().find_map(|task| {
        let tid: u32 = task.file_name().to_str()?.parse().ok()?;
        let status = std::fs::read_to_string(task.path().join("status")).ok()?;
        let permitted = status_sets(&status)
            .into_iter()
            .find_map(|(set, caps)| (set == "CapPrm").then_some(caps))?;
        let holds = CapSet(permitted.0 & !keep.0);
        (tid != me && !holds.is_empty()).then_some((tid, holds))
    })
}

/// The capability sets of process `pid` from `/proc/PID/status`: `CapInh`,
/// `CapPrm`, `CapEff`, `CapBnd`, `CapAmb`, by name.
pub fn status_sets(status: &str) -> Vec<(String, CapSet)> {
    status
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.starts_with("Cap"))
        .filter_map(|(key, value)| Some((key.to_string(), CapSet::from_status_hex(value)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_print_and_parse_like_capsh() {
        let set = CapSet::of(&[cap::PERFMON, cap::BPF]);
        assert_eq!(set.to_string(), "cap_perfmon,cap_bpf");
        assert_eq!(CapSet::from_status_hex("000000c000000000"), Some(set));
        assert_eq!(CapSet::default().to_string(), "none");
        for (name, want) in [
            ("cap_bpf", Some(39)),
            ("BPF", Some(39)),
            ("sys_ptrace", Some(19)),
            ("nope", None),
        ] {
            assert_eq!(CapSet::parse_name(name), want, "{name}");
        }
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000000c000000000\n";
        let sets = status_sets(status);
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[1], ("CapEff".to_string(), set));
    }

    /// CapPrm of thread `tid` of this process.
    fn permitted(tid: u32) -> CapSet {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        status_sets(&status)
            .into_iter()
            .find_map(|(set, caps)| (set == "CapPrm").then_some(caps))
            .unwrap()
    }

    #[test]
    fn each_thread_drops_its_own_and_drop_to_waits_for_the_others() {
        let main = std::process::id();
        let before = permitted(main);
        // A thread of its own drops everything but cap_bpf: only it changes.
        let keep = CapSet::of(&[cap::BPF]);
        let (dropped, after) = std::thread::spawn(move || {
            let dropped = drop_this_thread(keep).unwrap();
            // SAFETY: gettid has no arguments and cannot fail.
            (dropped, permitted(unsafe { libc::gettid() } as u32))
        })
        .join()
        .unwrap();
        assert_eq!(dropped.kept, CapSet(keep.0 & before.0));
        assert_eq!(after, dropped.kept);
        assert_eq!(permitted(main), before, "the other threads keep theirs");
        // From this (test) thread, drop_to sees the main thread's sets.
        let extra = CapSet(before.0 & !keep.0);
        match drop_to(keep) {
            Err(PrivilegeError::OtherThread { tid, holds }) => {
                assert_eq!((tid, holds), (main, extra));
            }
            Ok(done) => assert!(extra.is_empty(), "dropped beside {extra}: {done}"),
            Err(err) => panic!("{err}"),
        }
        assert_eq!(parse_capability("CAP_BPF"), Ok(cap::BPF));
        assert!(
            parse_capability("cap_nope")
                .unwrap_err()
                .contains("capabilities(7)")
        );
    }

    #[test]
    fn the_report_names_what_was_kept() {
        let dropped = Dropped {
            before: CapSet((1 << 41) - 1),
            kept: CapSet::of(&[cap::PERFMON, cap::BPF]),
            bounding: true,
        };
        assert_eq!(
            dropped.to_string(),
            "capabilities: kept cap_perfmon,cap_bpf; dropped 39 (all others)"
        );
    }
}
