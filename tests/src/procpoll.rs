//! The `/proc`-polling power collector of the benchmarks (`gt-procpoll`): Kepler
//! 0.10's method, re-implemented in Rust so its cost and its attribution can be set
//! beside greentop's in one run.
//!
//! Every interval, as Kepler's resource informer and power monitor do:
//! 1. list `/proc` and read `/proc/PID/stat` of every process: utime + stime, in
//!    clock ticks at USER_HZ = 100, is the process's CPU time (all its threads);
//!    the delta since the last scan is its CPU time in the interval (a process seen
//!    for the first time is charged all it has used so far);
//! 2. for a new process, or one that used CPU since the last scan, read
//!    `/proc/PID/comm` and the `/proc/PID/exe` link; for a new process (or a changed
//!    comm) classify it: container ids in `/proc/PID/cgroup` (then `environ` for its
//!    name), a qemu/kvm `/proc/PID/cmdline` for a VM;
//! 3. read `/proc/stat`: the node's usage ratio, active over total ticks;
//! 4. read every powercap zone's `energy_uj`, the delta wrapping at
//!    `max_energy_range_uj`;
//! 5. per zone, active energy = delta × usage ratio; per process, active energy ×
//!    its CPU delta / the sum of all processes' CPU deltas.
//!
//! Processes that exit between two scans keep nothing of what they ran since the
//! last one: Kepler's terminated list carries only their last snapshot.
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Kepler's (and procfs's) hard-coded clock ticks per second.
pub const USER_HZ: f64 = 100.0;

/// The fields of `/proc/PID/stat` the collector uses.
#[derive(Debug, PartialEq)]
pub struct PidStat<'a> {
    pub comm: &'a str,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
}

/// Parses `/proc/PID/stat`: the comm sits between the first `(` and the last `)` (it
/// may hold spaces and parentheses); utime and stime are fields 14 and 15.
pub fn parse_pid_stat(text: &str) -> Option<PidStat<'_>> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?;
    // Fields after the comm start at field 3 (state).
    let mut rest = text.get(close + 1..)?.split_ascii_whitespace();
    let utime: u64 = rest.nth(11)?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some(PidStat {
        comm,
        cpu_ticks: utime + stime,
    })
}

/// The `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuStat {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

/// Parses the first (`cpu `) line of `/proc/stat`.
pub fn parse_proc_stat(text: &str) -> Option<CpuStat> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let mut fields = line.split_ascii_whitespace().skip(1).map(str::parse::<u64>);
    let mut next = || fields.next().and_then(Result::ok);
    Some(CpuStat {
        user: next()?,
        nice: next()?,
        system: next()?,
        idle: next()?,
        iowait: next()?,
        irq: next()?,
        softirq: next()?,
        steal: next()?,
    })
}

/// Kepler's `CPUUsageRatio`: (total − idle − iowait) / total over the interval,
/// total being user + nice + system + idle + iowait + irq + softirq + steal.
pub fn usage_ratio(prev: &CpuStat, cur: &CpuStat) -> f64 {
    let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
    let idle = d(cur.idle, prev.idle) + d(cur.iowait, prev.iowait);
    let total = d(cur.user, prev.user)
        + d(cur.nice, prev.nice)
        + d(cur.system, prev.system)
        + idle
        + d(cur.irq, prev.irq)
        + d(cur.softirq, prev.softirq)
        + d(cur.steal, prev.steal);
    if total == 0.0 {
        0.0
    } else {
        (total - idle) / total
    }
}

/// Kepler's `calculateEnergyDelta`: a counter below the previous reading wrapped
/// once at `max_uj`; without a maximum the interval is lost (0).
pub fn energy_delta_uj(current: u64, previous: u64, max_uj: u64) -> u64 {
    if current >= previous {
        current - previous
    } else if max_uj > 0 {
        (max_uj - previous) + current
    } else {
        0
    }
}

/// The container id in a `/proc/PID/cgroup` text, as Kepler's patterns find it: 64
/// hex digits after `docker`, `containerd`, `cri-containerd`, `crio-`, `libpod-` or a
/// kubepods pod path.
pub fn container_id(cgroup: &str) -> Option<&str> {
    const MARKERS: [&str; 7] = [
        "/docker-",
        "/docker/",
        "/containerd-",
        "/containerd/",
        "cri-containerd-",
        "/crio-",
        "libpod-",
    ];
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or(line);
        for marker in MARKERS {
            if let Some(at) = path.find(marker)
                && let Some(id) = hex_id(&path[at + marker.len()..])
            {
                return Some(id);
            }
        }
        if path.contains("/kubepods/")
            && let Some(id) = path.rsplit('/').next().and_then(hex_id)
        {
            return Some(id);
        }
    }
    None
}

fn hex_id(text: &str) -> Option<&str> {
    let id = text.get(..64)?;
    id.bytes().all(|b| b.is_ascii_hexdigit()).then_some(id)
}

/// Whether a NUL-separated `/proc/PID/cmdline` is a qemu/kvm virtual machine.
pub fn is_vm_cmdline(cmdline: &[u8]) -> bool {
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let name = argv0.rsplit(|&b| b == b'/').next().unwrap_or_default();
    name.starts_with(b"qemu") || name.starts_with(b"kvm")
}

/// What the collector keeps per process between scans.
#[derive(Debug, Default)]
struct Proc {
    cpu_ticks: u64,
    comm: String,
    exe: PathBuf,
    container: Option<String>,
    vm: bool,
}

/// One process's share of one interval.
#[derive(Debug, PartialEq)]
pub struct ProcessShare {
    pub pid: u32,
    pub cpu_seconds: f64,
    pub joules: f64,
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Energy of all zones over the interval (µJ → J).
    pub node_joules: f64,
    /// `node_joules` × usage ratio.
    pub active_joules: f64,
    pub usage_ratio: f64,
    /// Every running process (Kepler keeps one record per running process).
    pub processes: Vec<ProcessShare>,
    pub terminated: usize,
}

/// One powercap zone's counter.
struct Zone {
    energy: PathBuf,
    max_uj: u64,
    last_uj: Option<u64>,
}

/// The collector's state between scans.
pub struct Poller {
    procfs: PathBuf,
    zones: Vec<Zone>,
    procs: HashMap<u32, Proc>,
    prev_cpu: Option<CpuStat>,
    buf: String,
}

impl Poller {
    /// Finds the top-level `intel-rapl:N` zones under `<sysfs>/class/powercap` (Kepler
    /// reads the package zones and their sub-zones; the benchmark's fixture has one).
    pub fn new(procfs: &Path, sysfs: &Path) -> Self {
        let mut zones = Vec::new();
        let powercap = sysfs.join("class/powercap");
        if let Ok(entries) = std::fs::read_dir(&powercap) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("intel-rapl:") && name.matches(':').count() == 1 {
                    let dir = entry.path();
                    let max_uj = read_u64(&dir.join("max_energy_range_uj")).unwrap_or(0);
                    zones.push(Zone {
                        energy: dir.join("energy_uj"),
                        max_uj,
                        last_uj: None,
                    });
                }
            }
        }
        Poller {
            procfs: procfs.to_path_buf(),
            zones,
            procs: HashMap::new(),
            prev_cpu: None,
            buf: String::new(),
        }
    }

    pub fn zone_count(&self) -> usize {
        self.zones.len()
    }

    /// One interval: scan processes, the node's CPU and the zones, then attribute.
    pub fn scan(&mut self) -> Scan {
        let (mut deltas, terminated) = self.scan_processes();
        let usage_ratio = self.node_usage();
        let node_uj: u64 = self.zones.iter_mut().map(read_zone).sum();
        let node_joules = node_uj as f64 / 1e6;
        let active_joules = node_joules * usage_ratio;
        let total_ticks: u64 = deltas.iter().map(|(_, ticks)| ticks).sum();
        let processes = deltas
            .drain(..)
            .map(|(pid, ticks)| ProcessShare {
                pid,
                cpu_seconds: ticks as f64 / USER_HZ,
                joules: if total_ticks == 0 {
                    0.0
                } else {
                    active_joules * ticks as f64 / total_ticks as f64
                },
            })
            .collect();
        Scan {
            node_joules,
            active_joules,
            usage_ratio,
            processes,
            terminated,
        }
    }

    /// (pid, CPU ticks in the interval) of every running process, and how many of
    /// the last scan's are gone.
    fn scan_processes(&mut self) -> (Vec<(u32, u64)>, usize) {
        let mut running = Vec::with_capacity(self.procs.len() + 16);
        let Ok(entries) = std::fs::read_dir(&self.procfs) else {
            return (running, 0);
        };
        let mut alive = HashSet::with_capacity(self.procs.len() + 16);
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(delta) = self.update_process(pid) {
                running.push((pid, delta));
                alive.insert(pid);
            }
        }
        let before = self.procs.len();
        self.procs.retain(|pid, _| alive.contains(pid));
        (running, before - self.procs.len())
    }

    /// Kepler's `populateProcessFields`; None when the process is gone.
    fn update_process(&mut self, pid: u32) -> Option<u64> {
        let dir = self.procfs.join(pid.to_string());
        read_into(&dir.join("stat"), &mut self.buf)?;
        let stat = parse_pid_stat(&self.buf)?;
        let (ticks, comm) = (stat.cpu_ticks, stat.comm.to_owned());
        let proc = self.procs.entry(pid).or_default();
        let new = proc.comm.is_empty();
        let delta = ticks.saturating_sub(proc.cpu_ticks);
        proc.cpu_ticks = ticks;
        if !new && delta == 0 {
            return Some(0);
        }
        // Kepler reads comm from its own file, though stat just gave it.
        let comm = std::fs::read_to_string(dir.join("comm"))
            .map(|c| c.trim_end().to_owned())
            .unwrap_or(comm);
        let changed = comm != proc.comm;
        proc.comm = comm;
        proc.exe = std::fs::read_link(dir.join("exe")).unwrap_or_default();
        if new || changed {
            classify(&dir, proc);
        }
        Some(delta)
    }

    fn node_usage(&mut self) -> f64 {
        if read_into(&self.procfs.join("stat"), &mut self.buf).is_none() {
            return 0.0;
        }
        let Some(cur) = parse_proc_stat(&self.buf) else {
            return 0.0;
        };
        let ratio = self.prev_cpu.map_or(0.0, |prev| usage_ratio(&prev, &cur));
        self.prev_cpu = Some(cur);
        ratio
    }
}

/// Container (cgroup, then environ for its name) and VM (cmdline) detection.
fn classify(dir: &Path, proc: &mut Proc) {
    let cgroup = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
    proc.container = container_id(&cgroup).map(str::to_owned);
    if proc.container.is_some() {
        let _ = std::fs::read(dir.join("environ"));
    }
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    proc.vm = is_vm_cmdline(&cmdline);
}

/// µJ since the zone's last reading (0 on the first).
fn read_zone(zone: &mut Zone) -> u64 {
    let Some(now) = read_u64(&zone.energy) else {
        return 0;
    };
    let delta = zone
        .last_uj
        .map_or(0, |last| energy_delta_uj(now, last, zone.max_uj));
    zone.last_uj = Some(now);
    delta
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_into(path: &Path, buf: &mut String) -> Option<()> {
    buf.clear();
    std::fs::File::open(path).ok()?.read_to_string(buf).ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_stat_fields_after_a_comm_with_spaces_and_parentheses() {
        let text = "4242 (tmux: (server) x) S 1 4242 4242 0 -1 4194560 1279 0 0 0 \
                    137 58 0 0 20 0 1 0 6969 11063296 1083 18446744073709551615";
        assert_eq!(
            parse_pid_stat(text),
            Some(PidStat {
                comm: "tmux: (server) x",
                cpu_ticks: 137 + 58
            })
        );
        assert_eq!(parse_pid_stat("12 (short) S 1 2"), None);
        assert_eq!(parse_pid_stat("garbage"), None);
    }

    #[test]
    fn proc_stat_cpu_line_and_usage_ratio() {
        let before = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n";
        let after = "cpu  160 0 90 900 50 0 0 0 0 0\n";
        let (a, b) = (
            parse_proc_stat(before).unwrap(),
            parse_proc_stat(after).unwrap(),
        );
        assert_eq!((a.user, a.system, a.idle, a.iowait), (100, 50, 800, 50));
        // 100 busy ticks of 200.
        assert!((usage_ratio(&a, &b) - 0.5).abs() < 1e-12);
        assert_eq!(usage_ratio(&a, &a), 0.0);
        assert_eq!(parse_proc_stat("intr 1 2 3\n"), None);
    }

    #[test]
    fn energy_delta_wraps_once_at_the_maximum() {
        assert_eq!(energy_delta_uj(150, 100, 1000), 50);
        assert_eq!(energy_delta_uj(30, 900, 1000), 130);
        assert_eq!(energy_delta_uj(30, 900, 0), 0);
    }

    #[test]
    fn container_and_vm_detection() {
        let id = "a".repeat(64);
        let docker = format!("0::/system.slice/docker-{id}.scope\n");
        assert_eq!(container_id(&docker), Some(id.as_str()));
        let kube = format!("0::/kubepods/burstable/pod1234-ab/{id}\n");
        assert_eq!(container_id(&kube), Some(id.as_str()));
        assert_eq!(container_id("0::/user.slice/session-1.scope\n"), None);
        assert_eq!(container_id("0::/docker-short.scope\n"), None);
        assert!(is_vm_cmdline(b"/usr/bin/qemu-system-x86_64\0-m\0"));
        assert!(!is_vm_cmdline(b"/usr/bin/python3\0x.py\0"));
    }

    #[test]
    fn a_scan_of_a_fixture_tree_splits_active_energy_by_cpu_deltas() {
        let dir = tempfile::tempdir().unwrap();
        let (proc_root, sys_root) = (dir.path().join("proc"), dir.path().join("sys"));
        let zone = sys_root.join("class/powercap/intel-rapl:0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("max_energy_range_uj"), "1000000\n").unwrap();
        let write_proc = |pid: u32, ticks: u64, cpu: &str| {
            let p = proc_root.join(pid.to_string());
            std::fs::create_dir_all(&p).unwrap();
            let stat = format!("{pid} (w{pid}) S 1 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0");
            std::fs::write(p.join("stat"), stat).unwrap();
            std::fs::write(proc_root.join("stat"), cpu).unwrap();
        };
        write_proc(10, 100, "cpu  0 0 0 0 0 0 0 0\n");
        write_proc(11, 0, "cpu  0 0 0 0 0 0 0 0\n");
        std::fs::write(zone.join("energy_uj"), "900000\n").unwrap();
        let mut poller = Poller::new(&proc_root, &sys_root);
        assert_eq!(poller.zone_count(), 1);
        poller.scan();
        // 30 + 10 ticks ran of 80 busy + 80 idle; the counter wrapped: 200,000 µJ.
        write_proc(10, 130, "cpu  80 0 0 80 0 0 0 0\n");
        write_proc(11, 10, "cpu  80 0 0 80 0 0 0 0\n");
        std::fs::write(zone.join("energy_uj"), "100000\n").unwrap();
        let mut scan = poller.scan();
        assert!((scan.node_joules - 0.2).abs() < 1e-12);
        assert!((scan.usage_ratio - 0.5).abs() < 1e-12);
        scan.processes.sort_by_key(|p| p.pid);
        assert_eq!(scan.processes.len(), 2);
        assert!((scan.processes[0].cpu_seconds - 0.3).abs() < 1e-12);
        assert!((scan.processes[0].joules - 0.075).abs() < 1e-12);
        assert!((scan.processes[1].joules - 0.025).abs() < 1e-12);
        std::fs::remove_dir_all(proc_root.join("11")).unwrap();
        assert_eq!(poller.scan().terminated, 1);
    }
}
