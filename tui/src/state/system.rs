//! Machine-wide state: the last interval's summary, power histories per domain for
//! the header sparklines, and totals since greentop started.
use std::collections::BTreeMap;

use agent::model::{Interval, SystemSummary};

use super::history::{History, SYSTEM_SAMPLES};

#[derive(Clone, Debug, PartialEq)]
pub struct SystemState {
    /// The last interval's summary; `None` before the first.
    pub summary: Option<SystemSummary>,
    pub ts: String,
    pub interval_s: f64,
    pub cpu_w: History,
    pub dram_w: History,
    /// The platform (psys), apart from the CPU: never part of `cpu_w`.
    pub platform_w: History,
    /// Per GPU index.
    pub gpu_w: BTreeMap<u32, History>,
    /// Carbon of all measured energy since greentop started.
    pub gco2_total: f64,
    pub joules_total: f64,
    pub seconds_total: f64,
    /// Watts given to processes over the last interval.
    pub attributed_w: f64,
    /// greentop's own CPU use over the last interval, percent of one CPU.
    pub own_cpu_pct: f64,
}

impl Default for SystemState {
    fn default() -> Self {
        SystemState {
            summary: None,
            ts: String::new(),
            interval_s: 0.0,
            cpu_w: History::new(SYSTEM_SAMPLES),
            dram_w: History::new(SYSTEM_SAMPLES),
            platform_w: History::new(SYSTEM_SAMPLES),
            gpu_w: BTreeMap::new(),
            gco2_total: 0.0,
            joules_total: 0.0,
            seconds_total: 0.0,
            attributed_w: 0.0,
            own_cpu_pct: 0.0,
        }
    }
}

impl SystemState {
    /// `own_pid` is greentop's pid, to find its own CPU use among the processes.
    pub fn apply(&mut self, interval: &Interval, own_pid: u32) {
        let sys = &interval.system;
        let wall_s = interval.interval_s.max(f64::MIN_POSITIVE);
        self.cpu_w.push(sys.cpu_joules / wall_s);
        self.dram_w.push(sys.dram_joules / wall_s);
        self.platform_w.push(sys.platform_joules / wall_s);
        for gpu in &sys.gpus {
            self.gpu_w
                .entry(gpu.index)
                .or_insert_with(|| History::new(SYSTEM_SAMPLES))
                .push(gpu.joules / wall_s);
        }
        self.gco2_total += sys.gco2;
        self.joules_total += sys.cpu_joules + sys.dram_joules + sys.gpu_joules;
        self.seconds_total += interval.interval_s;
        self.own_cpu_pct = interval
            .processes
            .iter()
            .filter(|p| p.pid == own_pid)
            .map(|p| 100.0 * p.cpu_seconds / wall_s)
            .sum();
        self.attributed_w = interval.processes.iter().map(|p| p.joules).sum::<f64>() / wall_s;
        self.ts.clone_from(&interval.ts);
        self.interval_s = interval.interval_s;
        self.summary = Some(sys.clone());
    }

    fn wall_s(&self) -> f64 {
        self.interval_s.max(f64::MIN_POSITIVE)
    }

    /// Watts of all domains over the last interval.
    pub fn total_w(&self) -> f64 {
        self.summary.as_ref().map_or(0.0, |s| {
            (s.cpu_joules + s.dram_joules + s.gpu_joules) / self.wall_s()
        })
    }

    pub fn idle_w(&self) -> f64 {
        self.summary
            .as_ref()
            .map_or(0.0, |s| s.idle_joules / self.wall_s())
    }

    /// The machine's carbon rate now.
    pub fn gco2_per_h(&self) -> f64 {
        self.summary
            .as_ref()
            .map_or(0.0, |s| s.gco2 * 3600.0 / self.wall_s())
    }

    /// Context switches per second seen by the ledger.
    pub fn switches_per_s(&self) -> f64 {
        self.summary
            .as_ref()
            .map_or(0.0, |s| s.ledger_health.switches as f64 / self.wall_s())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent::model::{GpuJson, ProcessEnergy};

    #[test]
    fn histories_and_totals() {
        let mut iv = Interval {
            interval_s: 2.0,
            ..Interval::default()
        };
        iv.system.cpu_joules = 20.0;
        iv.system.dram_joules = 4.0;
        iv.system.idle_joules = 6.0;
        iv.system.gco2 = 0.5;
        iv.system.ledger_health.switches = 100;
        iv.system.gpus = vec![GpuJson {
            index: 0,
            joules: 100.0,
            ..GpuJson::default()
        }];
        iv.system.gpu_joules = 100.0;
        iv.processes = vec![ProcessEnergy {
            pid: 42,
            cpu_seconds: 0.1,
            ..ProcessEnergy::default()
        }];
        let mut sys = SystemState::default();
        sys.apply(&iv, 42);
        sys.apply(&iv, 42);
        assert_eq!(sys.cpu_w.values(), vec![10.0, 10.0]);
        assert_eq!(sys.gpu_w[&0].last(), Some(50.0));
        assert_eq!(
            (sys.gco2_total, sys.joules_total, sys.seconds_total),
            (1.0, 248.0, 4.0)
        );
        assert_eq!(
            (sys.total_w(), sys.idle_w(), sys.gco2_per_h()),
            (62.0, 3.0, 900.0)
        );
        assert_eq!((sys.switches_per_s(), sys.own_cpu_pct), (50.0, 5.0));
    }
}
