//! `greentop calibrate`: measures idle power per CPU package and per GPU over a quiet
//! period, for the `baseline` idle policy, and stores it in the config file.
use std::path::Path;
use std::time::{Duration, Instant};

use crate::attribution::Calibration;
use crate::energy::select::Sources;
use crate::energy::{DomainKind, EnergyReading};

/// Above this busy fraction of all CPUs the machine was not quiet: say so.
const QUIET_BUSY_FRACTION: f64 = 0.05;

/// What a calibration measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CalibrationRun {
    pub calibration: Calibration,
    /// Average busy fraction of all CPUs during the run, from /proc/stat.
    pub busy_fraction: f64,
    pub seconds: f64,
    /// Lines for the user: estimated sources, a busy machine, failed reads.
    pub notes: Vec<String>,
}

/// Reads every source over `duration` and averages power per package and per GPU.
pub fn measure(sources: &mut Sources, duration: Duration, procfs_root: &Path) -> CalibrationRun {
    let mut run = CalibrationRun::default();
    let before = cpu_ticks(procfs_root);
    let _ = sources.cpu.read();
    if let Some(gpu) = sources.gpu.as_mut() {
        let _ = gpu.read();
    }
    let start = Instant::now();
    std::thread::sleep(duration);
    let cpu = sources.cpu.read();
    let gpu = sources.gpu.as_mut().map(|g| g.read());
    run.seconds = start.elapsed().as_secs_f64();
    let after = cpu_ticks(procfs_root);
    match cpu {
        Ok(reading) => {
            average_into(
                &reading,
                DomainKind::Package,
                &mut run.calibration.package_idle_w,
            );
            let estimated = reading
                .domains
                .iter()
                .any(|d| d.domain.kind == DomainKind::Package && !d.is_measured());
            if estimated {
                run.notes.push(format!(
                    "CPU power comes from {}: the calibration is an estimate too",
                    sources.cpu.name()
                ));
            }
        }
        Err(err) => run.notes.push(format!("{}: {err}", sources.cpu.name())),
    }
    match gpu {
        Some(Ok(reading)) => {
            average_into(&reading, DomainKind::Gpu, &mut run.calibration.gpu_idle_w)
        }
        Some(Err(err)) => run.notes.push(format!("GPU: {err}")),
        None => {}
    }
    if let (Some((busy0, total0)), Some((busy1, total1))) = (before, after) {
        let total = total1.saturating_sub(total0);
        run.busy_fraction = if total == 0 {
            0.0
        } else {
            busy1.saturating_sub(busy0) as f64 / total as f64
        };
        if run.busy_fraction > QUIET_BUSY_FRACTION {
            run.notes.push(format!(
                "the CPUs were {:.0} % busy: idle power is overstated; calibrate on a quiet machine",
                100.0 * run.busy_fraction
            ));
        }
    }
    run
}

fn average_into(
    reading: &EnergyReading,
    kind: DomainKind,
    into: &mut std::collections::BTreeMap<u32, f64>,
) {
    let seconds = reading.elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return;
    }
    for d in reading.domains.iter().filter(|d| d.domain.kind == kind) {
        *into.entry(d.domain.index).or_insert(0.0) += d.energy_uj as f64 / 1e6 / seconds;
    }
}

/// (busy, total) USER_HZ ticks of the aggregate `cpu` line of `<procfs>/stat`.
fn cpu_ticks(procfs_root: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(procfs_root.join("stat")).ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest counted in user).
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    let idle = get(3) + get(4);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Some((busy, busy + idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_ticks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stat"),
            "cpu  10 2 8 70 10 0 0 0 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n",
        )
        .unwrap();
        assert_eq!(cpu_ticks(dir.path()), Some((20, 100)));
        assert_eq!(cpu_ticks(Path::new("/nonexistent")), None);
    }
}
