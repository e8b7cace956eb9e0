//! The exporter's running state: cumulative counters built from per-interval
//! Intervals (docs/metrics.md). Processes and jobs go through bounded
//! [`SeriesTable`]s; what has no series of its own is charged to `other`.
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::labels::{JOB_NONE, OTHER, ProcessLabels, process_labels};
use super::table::{Seen, SeriesTable};
use crate::model::{Interval, ProcessEnergy};

/// How many series the exporter keeps, and for how long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricsOptions {
    /// Processes (and jobs) that get a series of their own each interval: the top N
    /// by energy. At most 2·N have one at any time.
    pub top_n: usize,
    /// How long a series outlives its process's exit, or its last interval in the
    /// top N (and never before a scrape has read its final value).
    pub grace: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            top_n: 20,
            grace: Duration::from_secs(300),
        }
    }
}

/// Energy, carbon and CPU time of a process, job or `other`, since its series began.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Energy {
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    pub co2_grams: f64,
    pub cpu_seconds: f64,
}

impl Energy {
    fn of(p: &ProcessEnergy) -> Energy {
        Energy {
            cpu_joules: p.cpu_joules,
            dram_joules: p.dram_joules,
            gpu_joules: p.gpu_joules,
            co2_grams: p.gco2,
            cpu_seconds: p.cpu_seconds,
        }
    }

    fn add(&mut self, other: &Energy) {
        // Counters only go up: a negative figure (never produced) would be dropped.
        self.cpu_joules += other.cpu_joules.max(0.0);
        self.dram_joules += other.dram_joules.max(0.0);
        self.gpu_joules += other.gpu_joules.max(0.0);
        self.co2_grams += other.co2_grams.max(0.0);
        self.cpu_seconds += other.cpu_seconds.max(0.0);
    }

    pub fn joules(&self) -> f64 {
        self.cpu_joules + self.dram_joules + self.gpu_joules
    }
}

/// A job's own totals, and those of its processes without a series (`pid="other"`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct JobValue {
    pub total: Energy,
    pub other: Energy,
}

/// One energy domain as exported: kind, index, source, measured.
pub(super) type DomainKey = (String, u32, String, bool);

/// A node counter that appears mid-life (a new domain, a source taking over): it is
/// exported at 0 until a scrape has seen it, its energy held back meanwhile, so
/// `rate()` misses none of it.
#[derive(Debug, Default)]
pub(super) struct LateCounter {
    pub value: f64,
    pending: f64,
    born_at_scrape: u64,
}

impl LateCounter {
    fn add(&mut self, amount: f64, scrapes: u64) {
        self.pending += amount.max(0.0);
        if scrapes > self.born_at_scrape {
            self.value += std::mem::take(&mut self.pending);
        }
    }
}

/// Node-wide counters and gauges.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub energy_joules: BTreeMap<DomainKey, LateCounter>,
    pub power_watts: BTreeMap<DomainKey, f64>,
    /// Per balance domain (`cpu`, `dram`, `gpu`): attributed to processes, left idle.
    pub attributed_joules: [f64; 3],
    pub idle_joules: [f64; 3],
    pub residual_joules: f64,
    pub co2_grams: f64,
    pub cpu_seconds: f64,
    pub idle_seconds: f64,
    /// (region, source) and g/kWh of the last interval.
    pub intensity: Option<((String, String), f64)>,
    pub pue: f64,
    /// (counter name, kind, index, source) → trusted now.
    pub counters: BTreeMap<(String, String, u32, String), bool>,
}

/// The agent's own health, from the Intervals.
#[derive(Debug, Default)]
pub(super) struct Health {
    pub intervals: u64,
    pub switches: u64,
    pub overflow_charges: u64,
    pub dropped_slices: u64,
    pub dropped_cpu_seconds: f64,
    pub lost_events: u64,
    pub ns_per_switch: Option<f64>,
    /// Σ ns per switch × switches: the ledger program's own CPU time.
    pub ebpf_seconds: f64,
    pub gpu_dropped_hits: u64,
    pub gpu_untimed_syncs: u64,
    pub source_errors: u64,
    /// Energy attributed to the agent's own process.
    pub self_joules: f64,
    pub last_interval_unix_s: f64,
    /// ledger, idle policy, CPU source, GPU source of the last interval.
    pub info: (String, String, String, String),
}

/// Everything exported, updated once per Interval.
#[derive(Debug)]
pub(super) struct State {
    pub opts: MetricsOptions,
    pub processes: SeriesTable<(u32, u64), ProcessLabels, Energy>,
    pub jobs: SeriesTable<String, String, JobValue>,
    /// Processes of jobs without a series: `pid="other", job="other"`.
    pub other_processes: Energy,
    /// Jobs without a series: `job="other"`.
    pub other_jobs: Energy,
    pub node: Node,
    pub health: Health,
    /// Scrapes served so far (a series is removed only after one read its last value).
    pub scrapes: u64,
    pub self_pid: u32,
}

impl State {
    pub fn new(opts: MetricsOptions) -> State {
        let cap = opts.top_n.saturating_mul(2).max(1);
        State {
            opts,
            processes: SeriesTable::new(cap),
            jobs: SeriesTable::new(cap),
            other_processes: Energy::default(),
            other_jobs: Energy::default(),
            node: Node::default(),
            health: Health::default(),
            scrapes: 0,
            self_pid: std::process::id(),
        }
    }

    /// Adds one interval, seen at `now`.
    pub fn apply(&mut self, interval: &Interval, now: Instant) {
        self.apply_jobs(interval, now);
        self.apply_processes(interval, now);
        self.processes.sweep(now, self.opts.grace, self.scrapes);
        self.jobs.sweep(now, self.opts.grace, self.scrapes);
        self.apply_node(interval);
        self.apply_health(interval);
    }

    fn apply_jobs(&mut self, interval: &Interval, now: Instant) {
        let mut by_job: BTreeMap<&str, Energy> = BTreeMap::new();
        for p in &interval.processes {
            by_job.entry(job_of(p)).or_default().add(&Energy::of(p));
        }
        let mut ranked: Vec<(&str, f64)> = by_job.iter().map(|(j, e)| (*j, e.joules())).collect();
        let top = top_n(&mut ranked, self.opts.top_n);
        for (job, energy) in by_job {
            let seen = Seen {
                key: job.to_string(),
                labels: job.to_string(),
                in_top: top.contains(&job),
                exited: false,
            };
            match self.jobs.observe(seen, now, self.scrapes) {
                Some(value) => value.total.add(&energy),
                None => self.other_jobs.add(&energy),
            }
        }
    }

    fn apply_processes(&mut self, interval: &Interval, now: Instant) {
        let mut ranked: Vec<((u32, u64), f64)> = interval
            .processes
            .iter()
            .map(|p| ((p.pid, p.start_ns), p.joules))
            .collect();
        let top = top_n(&mut ranked, self.opts.top_n);
        for p in &interval.processes {
            let key = (p.pid, p.start_ns);
            let energy = Energy::of(p);
            let in_top = top.contains(&key);
            if in_top || self.processes.is_tracked(&key) {
                let seen = Seen {
                    key,
                    labels: process_labels(p),
                    in_top,
                    exited: p.exited,
                };
                if let Some(value) = self.processes.observe(seen, now, self.scrapes) {
                    value.add(&energy);
                    continue;
                }
            }
            match self.jobs.value_mut(&job_of(p).to_string(), self.scrapes) {
                Some(job) => job.other.add(&energy),
                None => self.other_processes.add(&energy),
            }
        }
    }

    fn apply_node(&mut self, interval: &Interval) {
        let system = &interval.system;
        let scrapes = self.scrapes;
        let node = &mut self.node;
        for domain in &system.energy {
            let key = (
                domain.kind.clone(),
                domain.index,
                domain.source.clone(),
                domain.measured,
            );
            node.energy_joules
                .entry(key.clone())
                .or_insert_with(|| LateCounter {
                    born_at_scrape: scrapes,
                    ..LateCounter::default()
                })
                .add(domain.joules, scrapes);
            node.power_watts.insert(key, domain.watts);
        }
        let balances = [
            &system.balance.cpu,
            &system.balance.dram,
            &system.balance.gpu,
        ];
        for (i, balance) in balances.into_iter().enumerate() {
            node.attributed_joules[i] += balance.attributed_j.max(0.0);
            node.idle_joules[i] += balance.idle_j.max(0.0);
        }
        node.residual_joules = system.balance.residual_joules;
        node.co2_grams += system.gco2.max(0.0);
        node.cpu_seconds += system.cpu_seconds.max(0.0);
        node.idle_seconds += system.idle_seconds.max(0.0);
        let region = (system.region.clone(), system.intensity_source.clone());
        node.intensity = Some((region, system.intensity_g_per_kwh));
        node.pue = system.pue;
        for c in &system.counters {
            let key = (c.name.clone(), c.kind.clone(), c.index, c.source.clone());
            node.counters.insert(key, c.trusted);
        }
    }

    fn apply_health(&mut self, interval: &Interval) {
        let system = &interval.system;
        let ledger = &system.ledger_health;
        let health = &mut self.health;
        health.intervals += 1;
        health.switches += ledger.switches;
        health.overflow_charges += ledger.overflow_charges;
        health.dropped_slices += ledger.dropped_slices;
        health.dropped_cpu_seconds += ledger.dropped_cpu_seconds.max(0.0);
        health.lost_events += ledger.lost_events;
        health.ns_per_switch = ledger.ns_per_switch;
        if let Some(ns) = ledger.ns_per_switch {
            health.ebpf_seconds += ns.max(0.0) * ledger.switches as f64 / 1e9;
        }
        if let Some(gpu) = &system.gpu_probes {
            health.gpu_dropped_hits += gpu.dropped_hits;
            health.gpu_untimed_syncs += gpu.untimed_syncs;
        }
        health.source_errors += system.energy_notes.len() as u64;
        health.self_joules += interval
            .processes
            .iter()
            .filter(|p| p.pid == self.self_pid)
            .map(|p| p.joules.max(0.0))
            .sum::<f64>();
        health.last_interval_unix_s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        health.info = (
            system.ledger.clone(),
            system.idle_policy.clone(),
            system.cpu_source.clone(),
            system.gpu_source.clone(),
        );
    }

    /// `other` labels for a job's processes without a series.
    pub fn other_labels(job: &str) -> ProcessLabels {
        ProcessLabels {
            pid: OTHER.to_string(),
            job: job.to_string(),
            ..ProcessLabels::default()
        }
    }
}

/// Locks the state; a panic elsewhere while it was held leaves plain numbers behind,
/// still fit to export.
pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The job label of a process (`none` for kernel threads and pid 1).
fn job_of(p: &ProcessEnergy) -> &str {
    p.job.as_deref().unwrap_or(JOB_NONE)
}

/// The keys of the `n` items with the most energy (ties: the smaller key), among
/// those with any.
fn top_n<K: Ord + Copy + std::hash::Hash + Eq>(
    ranked: &mut [(K, f64)],
    n: usize,
) -> std::collections::HashSet<K> {
    ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .iter()
        .take(n)
        .filter(|(_, joules)| *joules > 0.0)
        .map(|(k, _)| *k)
        .collect()
}
