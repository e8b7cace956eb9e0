//! The benchmarks' shared pure parts: medians, the machine's description, the load
//! average, and (`table`) the blocks of results and their Markdown.
use std::time::{Duration, Instant};

pub mod table;

/// The median of the values that are numbers (NaN dropped); NaN if none is. An even
/// count gives the mean of the two middle values.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The 1, 5 and 15 minute load averages of a `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_ascii_whitespace().map(str::parse::<f64>);
    let mut next = || fields.next().and_then(Result::ok);
    Some([next()?, next()?, next()?])
}

/// The load averages now (NaN when unreadable).
pub fn load_average() -> [f64; 3] {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| parse_loadavg(&text))
        .unwrap_or([f64::NAN; 3])
}

/// Waits until the 1-minute load average is below `max`, at most `patience`; returns
/// the load averages when it stopped waiting.
pub fn wait_for_quiet(max: f64, patience: Duration) -> [f64; 3] {
    let start = Instant::now();
    loop {
        let load = load_average();
        if load[0].is_nan() || load[0] < max || start.elapsed() >= patience {
            return load;
        }
        eprintln!(
            "gt-bench: load average {:.2} ≥ {max}; waiting ({:.0} s of {:.0})",
            load[0],
            start.elapsed().as_secs_f64(),
            patience.as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(15));
    }
}

/// The precise CPU time of any process, ns (all its threads, live and exited): its
/// CPU-time clock, which glibc's `clock_getcpuclockid` computes as
/// `(~pid << 3) | CPUCLOCK_SCHED`. /proc's utime + stime count in 10 ms ticks.
pub fn process_cpu_ns(pid: u32) -> std::io::Result<u64> {
    // A pid that large (beyond the kernel's 2^22 limit) would shift out of the id.
    if pid > (libc::clockid_t::MAX >> 3) as u32 {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    let clock = (!(pid as libc::clockid_t) << 3) | 2;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// What the results were measured on.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub vcpus: usize,
    pub kernel: String,
    pub memory_gib: f64,
    pub virtualized: bool,
}

impl Machine {
    /// Reads /proc/cpuinfo, /proc/meminfo and uname.
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_default();
        machine_from(&cpuinfo, &meminfo, kernel)
    }

    /// One line, e.g. `AMD EPYC, 2 vCPUs (KVM guest), 23.4 GiB, Linux 6.18.44`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {} vCPU{}{}, {:.1} GiB, Linux {}",
            self.cpu_model,
            self.vcpus,
            if self.vcpus == 1 { "" } else { "s" },
            if self.virtualized {
                " (virtual machine)"
            } else {
                ""
            },
            self.memory_gib,
            self.kernel
        )
    }
}

/// The machine described by `/proc/cpuinfo` and `/proc/meminfo` texts.
pub fn machine_from(cpuinfo: &str, meminfo: &str, kernel: String) -> Machine {
    let field = |line: &str, key: &str| {
        line.strip_prefix(key)
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .map(|value| value.trim().to_owned())
    };
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| field(l, "model name"))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let vcpus = cpuinfo
        .lines()
        .filter(|l| field(l, "processor").is_some())
        .count();
    let virtualized = cpuinfo
        .lines()
        .find_map(|l| field(l, "flags"))
        .is_some_and(|flags| flags.split_whitespace().any(|f| f == "hypervisor"));
    let memory_kib: f64 = meminfo
        .lines()
        .find_map(|l| field(l, "MemTotal"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cpu_model,
        vcpus,
        kernel,
        memory_gib: memory_kib / (1024.0 * 1024.0),
        virtualized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0, f64::NAN, 1.0, 3.0]), 3.0);
        assert!(median(&[]).is_nan());
        assert!(median(&[f64::NAN]).is_nan());
    }

    #[test]
    fn the_cpu_clock_of_a_process_counts_what_it_ran() {
        let thread_ns = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: ts is a valid, writable timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
        };
        let me = process_cpu_ns(std::process::id()).unwrap();
        // Spin for 30 ms of this thread's own CPU time, however busy the machine is.
        let start = thread_ns();
        let mut x = 0u64;
        while thread_ns() - start < 30_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = process_cpu_ns(std::process::id()).unwrap();
        assert!(after - me >= 30_000_000, "{me} → {after}");
        // No such process: one past the kernel's PID_MAX_LIMIT (2^22), and one whose
        // clock id would overflow.
        assert!(process_cpu_ns((1 << 22) + 1).is_err());
        assert!(process_cpu_ns(u32::MAX >> 2).is_err());
    }

    #[test]
    fn loadavg_is_parsed() {
        assert_eq!(
            parse_loadavg("0.52 1.40 3.05 2/345 12345\n"),
            Some([0.52, 1.40, 3.05])
        );
        assert_eq!(parse_loadavg("x"), None);
    }

    #[test]
    fn the_machine_from_cpuinfo_and_meminfo() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu hypervisor sse\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu hypervisor sse\n";
        let meminfo = "MemTotal:       24523780 kB\nMemFree:  1 kB\n";
        let machine = machine_from(cpuinfo, meminfo, "6.18.44".into());
        assert_eq!(
            machine.describe(),
            "AMD EPYC, 2 vCPUs (virtual machine), 23.4 GiB, Linux 6.18.44"
        );
        let bare = machine_from("", "", "6.1".into());
        assert_eq!(bare.describe(), "unknown CPU, 0 vCPUs, 0.0 GiB, Linux 6.1");
    }
}
