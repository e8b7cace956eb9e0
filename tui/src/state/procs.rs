//! Per-process state built from Intervals: rows keyed by (pid, start_ns) with power
//! now, cumulative joules and grams since first seen, a power history, and exited
//! rows that fade for a few ticks before removal.
use std::collections::{BTreeMap, HashMap};

use agent::model::{Interval, ProcessEnergy};

use super::gpu_calls::GpuCallRates;
use super::history::{History, PROCESS_SAMPLES};

/// A process's identity: pid alone is reused, (pid, start time) is not.
pub type ProcKey = (u32, u64);

/// Ticks an exited process stays on screen (dimmed) before its row goes.
pub const FADE_TICKS: u64 = 3;

/// One thread of a process, cumulative since first seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThreadRow {
    pub tid: u32,
    pub comm: String,
    pub cpu_pct: f64,
    pub watts: f64,
    pub joules_total: f64,
    pub gco2_total: f64,
    pub exited: bool,
    /// GPU activity over the last interval (eBPF probes); `None` when there was none.
    pub gpu_calls: Option<GpuCallRates>,
}

/// One process as the table shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcRow {
    pub pid: u32,
    pub start_ns: u64,
    pub ppid: u32,
    pub comm: String,
    pub user: String,
    pub job: Option<String>,
    pub cgroup: String,
    /// On-CPU time over the last interval, percent of one CPU.
    pub cpu_pct: f64,
    /// Sum of SM utilisation on every GPU; `None` when on no GPU.
    pub gpu_pct: Option<f64>,
    /// GPUs the process was on in the last interval.
    pub gpus: Vec<u32>,
    /// GPU activity over the last interval (eBPF probes); `None` when there was none.
    pub gpu_calls: Option<GpuCallRates>,
    /// Joules of the last interval / its length.
    pub watts: f64,
    pub gco2_per_h: f64,
    /// Since greentop first saw the process.
    pub joules_total: f64,
    pub gco2_total: f64,
    /// Seconds of intervals since first seen.
    pub seen_s: f64,
    pub history: History,
    /// Tick at which the process was seen to exit.
    pub exited_tick: Option<u64>,
    pub threads: BTreeMap<u32, ThreadRow>,
}

impl ProcRow {
    fn new(p: &ProcessEnergy) -> ProcRow {
        ProcRow {
            pid: p.pid,
            start_ns: p.start_ns,
            history: History::new(PROCESS_SAMPLES),
            ..ProcRow::default()
        }
    }

    pub fn key(&self) -> ProcKey {
        (self.pid, self.start_ns)
    }

    pub fn exited(&self) -> bool {
        self.exited_tick.is_some()
    }

    /// Nothing happened to the process this interval.
    fn idle(&mut self) {
        self.cpu_pct = 0.0;
        self.watts = 0.0;
        self.gco2_per_h = 0.0;
        self.gpu_pct = None;
        self.gpus.clear();
        self.gpu_calls = None;
        self.history.push(0.0);
        for thread in self.threads.values_mut() {
            thread.cpu_pct = 0.0;
            thread.watts = 0.0;
            thread.gpu_calls = None;
        }
    }

    fn apply(&mut self, p: &ProcessEnergy, wall_s: f64, gpu: Option<&(f64, Vec<u32>)>) {
        self.ppid = p.ppid;
        self.comm.clone_from(&p.comm);
        self.user.clone_from(&p.user);
        self.job.clone_from(&p.job);
        self.cgroup.clone_from(&p.cgroup);
        self.cpu_pct = 100.0 * p.cpu_seconds / wall_s;
        self.watts = p.joules / wall_s;
        self.gco2_per_h = p.gco2 * 3600.0 / wall_s;
        self.joules_total += p.joules;
        self.gco2_total += p.gco2;
        self.seen_s += wall_s;
        self.gpu_pct = gpu.map(|(pct, _)| *pct);
        self.gpus = gpu.map(|(_, ids)| ids.clone()).unwrap_or_default();
        self.gpu_calls = GpuCallRates::of_process(p, wall_s);
        self.history.push(self.watts);
        for thread in self.threads.values_mut() {
            thread.cpu_pct = 0.0;
            thread.watts = 0.0;
            thread.gpu_calls = None;
        }
        for t in p.threads.iter().flatten() {
            let row = self.threads.entry(t.tid).or_insert_with(|| ThreadRow {
                tid: t.tid,
                ..ThreadRow::default()
            });
            row.comm.clone_from(&t.comm);
            row.cpu_pct = 100.0 * t.cpu_seconds / wall_s;
            row.watts = t.joules / wall_s;
            row.joules_total += t.joules;
            row.gco2_total += t.gco2;
            row.exited = t.exited;
            row.gpu_calls = GpuCallRates::of_thread(t, wall_s);
        }
    }
}

/// Every process greentop has seen and not yet dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Processes {
    rows: BTreeMap<ProcKey, ProcRow>,
}

impl Processes {
    pub fn get(&self, key: &ProcKey) -> Option<&ProcRow> {
        self.rows.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ProcRow> {
        self.rows.values()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Applies the interval that ends tick `tick`.
    pub fn apply(&mut self, interval: &Interval, tick: u64) {
        self.rows
            .retain(|_, row| row.exited_tick.is_none_or(|at| tick < at + FADE_TICKS));
        let wall_s = interval.interval_s.max(f64::MIN_POSITIVE);
        let gpu = gpu_use(interval);
        let mut seen = Vec::with_capacity(interval.processes.len());
        for p in &interval.processes {
            let key = (p.pid, p.start_ns);
            // A pid seen with a new start time: the old process is gone.
            for row in self.rows.values_mut() {
                if row.pid == p.pid && row.start_ns != p.start_ns && row.exited_tick.is_none() {
                    row.exited_tick = Some(tick);
                }
            }
            let row = self.rows.entry(key).or_insert_with(|| ProcRow::new(p));
            row.apply(p, wall_s, gpu.get(&p.pid));
            if p.exited && row.exited_tick.is_none() {
                row.exited_tick = Some(tick);
            }
            seen.push(key);
        }
        seen.sort_unstable();
        for (key, row) in &mut self.rows {
            if seen.binary_search(key).is_err() {
                row.idle();
            }
        }
    }
}

/// Per pid: summed SM utilisation and the GPUs it is on.
fn gpu_use(interval: &Interval) -> HashMap<u32, (f64, Vec<u32>)> {
    let mut by_pid: HashMap<u32, (f64, Vec<u32>)> = HashMap::new();
    for gpu in &interval.system.gpus {
        for p in &gpu.processes {
            let entry = by_pid.entry(p.pid).or_default();
            entry.0 += f64::from(p.sm_util_pct.unwrap_or(0));
            entry.1.push(gpu.index);
        }
    }
    by_pid
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent::model::{GpuJson, GpuProcessJson, ThreadEnergy};

    fn process(pid: u32, start_ns: u64, joules: f64) -> ProcessEnergy {
        ProcessEnergy {
            pid,
            start_ns,
            comm: format!("p{pid}"),
            cpu_seconds: joules / 10.0,
            joules,
            gco2: joules / 100.0,
            ..ProcessEnergy::default()
        }
    }

    fn interval(processes: Vec<ProcessEnergy>) -> Interval {
        Interval {
            interval_s: 2.0,
            processes,
            ..Interval::default()
        }
    }

    #[test]
    fn totals_accumulate_and_watts_are_per_interval() {
        let mut procs = Processes::default();
        procs.apply(&interval(vec![process(10, 1, 4.0)]), 1);
        procs.apply(&interval(vec![process(10, 1, 6.0)]), 2);
        let row = procs.get(&(10, 1)).unwrap();
        assert_eq!(
            (row.joules_total, row.watts, row.cpu_pct),
            (10.0, 3.0, 30.0)
        );
        assert!((row.gco2_total - 0.1).abs() < 1e-12);
        assert!((row.gco2_per_h - 0.06 * 3600.0 / 2.0).abs() < 1e-9);
        assert_eq!(row.history.values(), vec![2.0, 3.0]);
        procs.apply(&interval(vec![]), 3);
        let row = procs.get(&(10, 1)).unwrap();
        assert_eq!(
            (row.watts, row.joules_total),
            (0.0, 10.0),
            "idle keeps totals"
        );
    }

    #[test]
    fn pid_reuse_is_a_new_row_and_the_old_one_fades() {
        let mut procs = Processes::default();
        procs.apply(&interval(vec![process(10, 1, 4.0)]), 1);
        procs.apply(&interval(vec![process(10, 2, 1.0)]), 2);
        assert_eq!(procs.len(), 2);
        assert_eq!(procs.get(&(10, 2)).unwrap().joules_total, 1.0);
        assert_eq!(procs.get(&(10, 1)).unwrap().exited_tick, Some(2));
    }

    #[test]
    fn exited_rows_stay_three_ticks() {
        let mut procs = Processes::default();
        let mut gone = process(7, 1, 1.0);
        gone.exited = true;
        procs.apply(&interval(vec![gone]), 10);
        for tick in 11..13 {
            procs.apply(&interval(vec![]), tick);
            assert!(procs.get(&(7, 1)).unwrap().exited(), "tick {tick}");
        }
        procs.apply(&interval(vec![]), 13);
        assert!(procs.is_empty(), "removed after {FADE_TICKS} ticks");
    }

    #[test]
    fn gpu_and_threads_are_merged() {
        let mut p = process(5, 1, 2.0);
        p.threads = Some(vec![
            ThreadEnergy {
                tid: 5,
                joules: 1.5,
                ..ThreadEnergy::default()
            },
            ThreadEnergy {
                tid: 6,
                joules: 0.5,
                ..ThreadEnergy::default()
            },
        ]);
        let mut iv = interval(vec![p]);
        for index in [0, 1] {
            iv.system.gpus.push(GpuJson {
                index,
                processes: vec![GpuProcessJson {
                    pid: 5,
                    sm_util_pct: Some(30),
                    ..GpuProcessJson::default()
                }],
                ..GpuJson::default()
            });
        }
        let mut procs = Processes::default();
        procs.apply(&iv, 1);
        procs.apply(&iv, 2);
        let row = procs.get(&(5, 1)).unwrap();
        assert_eq!((row.gpu_pct, row.gpus.clone()), (Some(60.0), vec![0, 1]));
        assert_eq!(row.threads[&5].joules_total, 3.0);
        assert_eq!(row.threads[&6].watts, 0.25);
    }
}
