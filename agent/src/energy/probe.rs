//! The start-up probe: trust is earned. Every candidate counter is read, one CPU of
//! each package is kept busy for a short window (so a counter that only moves under
//! load gets its chance), the counters are read again, and each is judged
//! (`trust::judge`): advanced at a plausible rate, or rejected with the reason.
use std::path::Path;
use std::time::{Duration, Instant};

use super::trust::{Ceilings, Verdict, judge};
use super::{Domain, EnergySource, Provenance, SourceError};
use crate::topology::{self, Topology};

/// The default window: RAPL counters update about every millisecond, so 100 ms is
/// a hundred updates, and the start-up stays well under a second.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(100);

/// What the probe saw of one counter.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterProbe {
    pub domain: Domain,
    pub provenance: Provenance,
    pub joules: f64,
    pub seconds: f64,
    pub verdict: Verdict,
}

impl CounterProbe {
    /// `intel-rapl:0 (package 0): advanced 4.012 J in 0.100 s = 40.1 W: trusted`.
    pub fn line(&self) -> String {
        let what = format!(
            "{} ({} {})",
            self.domain.name,
            self.domain.kind.display_name(),
            self.domain.index
        );
        let rate = if self.seconds > 0.0 {
            format!(" = {:.3} W", self.joules / self.seconds)
        } else {
            String::new()
        };
        let verdict = match &self.verdict {
            Verdict::Good { .. } => "trusted".to_string(),
            Verdict::Unjudged => "trusted (window too short to judge)".to_string(),
            Verdict::Bad { problem, why } => format!("rejected, {}: {why}", problem.label()),
        };
        let moved = if self.joules > 0.0 {
            "advanced"
        } else {
            "did not advance:"
        };
        format!(
            "{what}: {moved} {:.6} J in {:.3} s{rate}: {verdict}",
            self.joules, self.seconds
        )
    }

    pub fn trusted(&self) -> bool {
        !matches!(self.verdict, Verdict::Bad { .. })
    }
}

/// Reads every source, keeps `busy_cpus` busy for `window`, reads again, and judges
/// each watched counter (package, DRAM, psys) of each source. No source, no wait.
pub fn probe(
    sources: &mut [&mut dyn EnergySource],
    window: Duration,
    busy_cpus: &[usize],
    ceilings: &Ceilings,
) -> Vec<Result<Vec<CounterProbe>, SourceError>> {
    if sources.is_empty() {
        return Vec::new();
    }
    for source in sources.iter_mut() {
        let _ = source.read();
    }
    burn(busy_cpus, window);
    sources
        .iter_mut()
        .map(|source| {
            let reading = source.read()?;
            let counters = reading
                .domains
                .iter()
                .filter_map(|d| {
                    let ceiling_w = ceilings.of(d.domain.kind)?;
                    Some(CounterProbe {
                        domain: d.domain.clone(),
                        provenance: d.provenance,
                        joules: d.energy_uj as f64 / 1e6,
                        seconds: reading.elapsed.as_secs_f64(),
                        verdict: judge(d, reading.elapsed, ceiling_w),
                    })
                })
                .collect();
            Ok(counters)
        })
        .collect()
}

/// The first CPU of each package, from the topology under `sysfs_root` (CPU 0 when
/// it cannot be read).
pub fn one_cpu_per_package(sysfs_root: &Path) -> Vec<usize> {
    let possible = topology::possible_cpus(sysfs_root).unwrap_or(1);
    let topology = Topology::read(sysfs_root, possible);
    topology
        .packages
        .iter()
        .filter_map(|package| topology.package_of_cpu.iter().position(|p| p == package))
        .collect()
}

/// Keeps one thread busy on each of `cpus` (pinned where the kernel allows) for
/// `window`; sleeps instead when there is no CPU to keep busy.
pub fn burn(cpus: &[usize], window: Duration) {
    let deadline = Instant::now() + window;
    let spinners: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            std::thread::spawn(move || {
                pin_to(cpu);
                let mut spins = 0u64;
                while Instant::now() < deadline {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            })
        })
        .collect();
    let busy = !spinners.is_empty();
    for spinner in spinners {
        let _ = spinner.join();
    }
    if !busy {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Pins the calling thread to `cpu`; a CPU that does not exist (a fixture topology)
/// or a refused affinity leaves it where it is.
fn pin_to(cpu: usize) {
    if cpu >= libc::CPU_SETSIZE as usize {
        return;
    }
    // SAFETY: an all-zero cpu_set_t is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the given size.
    let _ = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::DomainKind;

    fn probe_of(joules: f64, verdict: Verdict) -> CounterProbe {
        CounterProbe {
            domain: Domain {
                kind: DomainKind::Psys,
                index: 0,
                name: "power/energy-psys cpu 0".into(),
            },
            provenance: Provenance::PerfPower,
            joules,
            seconds: 0.1,
            verdict,
        }
    }

    #[test]
    fn lines_say_what_moved_and_why() {
        let good = probe_of(4.0, Verdict::Good { watts: 40.0 });
        assert_eq!(
            good.line(),
            "power/energy-psys cpu 0 (platform 0): advanced 4.000000 J in 0.100 s = 40.000 W: trusted"
        );
        let flat = probe_of(
            0.0,
            Verdict::Bad {
                problem: crate::energy::trust::Problem::Frozen,
                why: "did not advance in 0.10 s".into(),
            },
        );
        assert!(!flat.trusted());
        assert_eq!(
            flat.line(),
            "power/energy-psys cpu 0 (platform 0): did not advance: 0.000000 J in 0.100 s \
             = 0.000 W: rejected, frozen: did not advance in 0.10 s"
        );
    }

    #[test]
    fn nothing_to_probe_means_no_wait() {
        let ceilings = Ceilings::for_tdp(None, 1);
        let start = Instant::now();
        assert!(probe(&mut [], Duration::from_secs(5), &[0], &ceilings).is_empty());
        assert!(start.elapsed() < Duration::from_secs(4), "it waited");
    }

    #[test]
    fn burning_keeps_the_window_and_finds_cpus() {
        let start = Instant::now();
        burn(&[0], Duration::from_millis(30));
        burn(&[], Duration::from_millis(30));
        assert!(start.elapsed() >= Duration::from_millis(60));
        assert_eq!(one_cpu_per_package(Path::new("/nonexistent")), vec![0]);
        let here = one_cpu_per_package(Path::new("/sys"));
        assert!(!here.is_empty() && here.contains(&0), "{here:?}");
    }
}
