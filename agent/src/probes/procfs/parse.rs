//! Parsers of the `/proc` files the fallback ledger and the process table read.
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Cumulative USER_HZ ticks of one CPU from `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CpuTicks {
    pub busy: u64,
    pub idle: u64,
}

/// The fields of `/proc/PID/stat` or `/proc/PID/task/TID/stat` that greentop uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStat {
    pub comm: String,
    pub ppid: u32,
    /// Start time in ns since boot (CLOCK_BOOTTIME), at clock-tick resolution.
    pub start_ns: u64,
    /// CPU the task last ran on.
    pub processor: u32,
}

/// Reads `<root>/TGID/stat`, or `<root>/TGID/task/TID/stat` when `tid` is given.
pub fn read_stat(procfs_root: &Path, tgid: u32, tid: Option<u32>) -> io::Result<TaskStat> {
    let path = match tid {
        Some(tid) => procfs_root.join(format!("{tgid}/task/{tid}/stat")),
        None => procfs_root.join(format!("{tgid}/stat")),
    };
    let mut buf = Vec::new();
    read_into(&path, &mut buf)?;
    let stat = parse_stat(&buf).ok_or_else(garbage)?;
    Ok(TaskStat {
        comm: String::from_utf8_lossy(stat.comm).into_owned(),
        ppid: stat.ppid,
        start_ns: stat.start_ticks.saturating_mul(ns_per_clock_tick()),
        processor: stat.processor,
    })
}

/// The real uid of process `tgid`, from `<root>/TGID/status`.
pub fn read_uid(procfs_root: &Path, tgid: u32) -> io::Result<u32> {
    let mut buf = Vec::new();
    read_into(&procfs_root.join(format!("{tgid}/status")), &mut buf)?;
    parse_uid(&buf).ok_or_else(garbage)
}

/// The cgroup path of process `tgid`: the unified hierarchy's, else systemd's, else
/// the first listed.
pub fn read_cgroup(procfs_root: &Path, tgid: u32) -> io::Result<String> {
    let mut buf = Vec::new();
    read_into(&procfs_root.join(format!("{tgid}/cgroup")), &mut buf)?;
    parse_cgroup(&buf).map(str::to_string).ok_or_else(garbage)
}

/// A parsed stat line borrowing its comm from the read buffer.
pub(super) struct StatView<'a> {
    pub comm: &'a [u8],
    pub ppid: u32,
    pub start_ticks: u64,
    pub processor: u32,
}

/// Parses a stat line. The comm may hold spaces and parentheses, so the fields
/// start after the *last* `)`; field N (1-based, as in proc(5)) is then N - 3.
pub(super) fn parse_stat(bytes: &[u8]) -> Option<StatView<'_>> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    let comm = bytes.get(open + 1..close)?;
    let rest = std::str::from_utf8(bytes.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let ppid = fields.nth(4 - 3)?.parse().ok()?;
    let start_ticks = fields.nth(22 - 4 - 1)?.parse().ok()?;
    let processor = fields.nth(39 - 22 - 1)?.parse().ok()?;
    Some(StatView {
        comm,
        ppid,
        start_ticks,
        processor,
    })
}

/// First field of `schedstat`: ns on CPU.
pub(super) fn parse_schedstat(bytes: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.split_ascii_whitespace().next()?.parse().ok()
}

pub(super) fn parse_uid(bytes: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(bytes).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_ascii_whitespace().next()?.parse().ok()
}

/// Picks the cgroup path from `/proc/PID/cgroup` lines `id:controllers:path`.
pub(super) fn parse_cgroup(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let entries = || {
        text.lines().filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            Some((parts.next()?, parts.next()?, parts.next()?))
        })
    };
    let unified = entries().find(|(id, controllers, _)| *id == "0" && controllers.is_empty());
    let systemd = || entries().find(|(_, controllers, _)| *controllers == "name=systemd");
    let (_, _, path) = unified.or_else(systemd).or_else(|| entries().next())?;
    Some(path)
}

/// Parses a `cpuN user nice system idle iowait irq softirq steal …` line of
/// `/proc/stat` (missing trailing fields count as zero; guest time is in user).
pub(super) fn parse_cpu_line(line: &[u8]) -> Option<(usize, CpuTicks)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split_ascii_whitespace();
    let cpu = fields.next()?.strip_prefix("cpu")?.parse().ok()?;
    let mut ticks = [0u64; 8];
    for (slot, field) in ticks.iter_mut().zip(fields) {
        *slot = field.parse().ok()?;
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = ticks;
    let busy = [user, nice, system, irq, softirq, steal];
    Some((
        cpu,
        CpuTicks {
            busy: busy.iter().fold(0u64, |sum, t| sum.saturating_add(*t)),
            idle: idle.saturating_add(iowait),
        },
    ))
}

/// Lists the numeric entries of `dir`, sorted, into `out`.
pub(super) fn list_numeric(dir: &Path, out: &mut Vec<u32>) -> io::Result<()> {
    out.clear();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            out.push(id);
        }
    }
    out.sort_unstable();
    Ok(())
}

pub(super) fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf).map(drop)
}

/// Reads `dir/file` into `buf`, leaving `dir` as it was: no path allocation per read.
pub(super) fn read_child(dir: &mut PathBuf, file: &str, buf: &mut Vec<u8>) -> io::Result<()> {
    dir.push(file);
    let read = read_into(dir, buf);
    dir.pop();
    read
}

/// The process or thread went away while being read: normal, not worth a log line.
pub(super) fn vanished(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH)
}

pub(super) fn garbage() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "unparsable /proc file")
}

/// Nanoseconds per USER_HZ clock tick (the unit of `/proc` stat times).
pub fn ns_per_clock_tick() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    match u64::try_from(hz) {
        Ok(hz) if hz > 0 => 1_000_000_000 / hz,
        _ => 10_000_000,
    }
}

/// Now on CLOCK_BOOTTIME, the clock of `/proc` start times; 0 if unavailable.
pub(super) fn boottime_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat line with `comm`, ppid 7, start 1234 ticks and processor 3.
    fn stat_line(comm: &str) -> String {
        let mut fields = vec!["0"; 50];
        (fields[0], fields[1], fields[19], fields[36]) = ("S", "7", "1234", "3");
        format!("42 ({comm}) {}\n", fields.join(" "))
    }

    #[test]
    fn stat_comm_may_hold_spaces_and_parentheses() {
        let cases = ["bash", "my (weird) name", "a) b", ") (", "", "x)) S 9 9"];
        for comm in cases {
            let line = stat_line(comm);
            let stat = parse_stat(line.as_bytes()).unwrap();
            let got = (stat.comm, stat.ppid, stat.start_ticks, stat.processor);
            assert_eq!(got, (comm.as_bytes(), 7, 1234, 3), "{line}");
        }
    }

    #[test]
    fn garbage_stat_lines_are_none() {
        let short = "42 (x) S 1 2 3\n".to_string();
        let cases = [
            String::new(),
            "42 x S 1".into(),
            short,
            stat_line("ok").replace("1234", "-1"),
        ];
        for line in cases {
            assert!(parse_stat(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn schedstat_uid_and_cgroup() {
        let schedstat = [("123 456 7\n", Some(123)), ("", None), ("x 1 2", None)];
        for (text, want) in schedstat {
            assert_eq!(parse_schedstat(text.as_bytes()), want, "{text:?}");
        }
        let status = [
            ("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t5\n", Some(1000)),
            ("Name:\tx\n", None),
            ("Uid:\tnope\n", None),
        ];
        for (text, want) in status {
            assert_eq!(parse_uid(text.as_bytes()), want, "{text:?}");
        }
        let cgroup = [
            ("0::/user.slice/a.scope\n", Some("/user.slice/a.scope")),
            (
                "3:cpu:/v1\n1:name=systemd:/sd\n0::/unified\n",
                Some("/unified"),
            ),
            (
                "3:cpu:/v1\n1:name=systemd:/sd:with:colons\n",
                Some("/sd:with:colons"),
            ),
            ("3:cpu,cpuacct:/first\n2:memory:/second\n", Some("/first")),
            ("", None),
            ("garbage", None),
        ];
        for (text, want) in cgroup {
            assert_eq!(parse_cgroup(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn cpu_lines() {
        let ticks = |busy, idle| Some(CpuTicks { busy, idle });
        let cases = [
            (
                "cpu0 1 2 3 4 5 6 7 8 9 10",
                Some(0),
                ticks(1 + 2 + 3 + 6 + 7 + 8, 4 + 5),
            ),
            ("cpu17 1 0 0 10", Some(17), ticks(1, 10)),
            ("cpu 1 2 3 4 5 6 7 8", None, None),
            ("intr 1 2 3", None, None),
            ("cpu1 x", None, None),
        ];
        for (line, cpu, want) in cases {
            let got = parse_cpu_line(line.as_bytes());
            assert_eq!(got.map(|(c, _)| c), cpu, "{line}");
            assert_eq!(got.map(|(_, t)| t), want, "{line}");
        }
    }

    #[test]
    fn clocks_are_sane() {
        assert!(ns_per_clock_tick() >= 1_000_000, "USER_HZ above 1000?");
        let boot_ns = boottime_ns();
        assert!(boot_ns > 0 && boottime_ns() >= boot_ns);
    }
}
