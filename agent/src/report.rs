//! `greentop report`: sums logged intervals per process, job, cgroup, user, comm or
//! for the machine — energy per domain, gCO₂, time seen, average and peak watts,
//! share of the machine and everyday equivalents — plus an `(idle)` row, so the
//! rows add up to what was measured. gCO₂ is the logged one, or recomputed from
//! the stored joules with another intensity (`--region`, `--intensity-series`).
//! Formats: `format.rs` (table, csv, json) and `emissions.rs` (CodeCarbon).
pub mod emissions;
pub mod format;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::carbon::{CarbonConfig, CarbonResolver, Equivalents, gco2};
use crate::sinks::log::decode::{self, LOST_META, SegmentState};
use crate::sinks::log::record::{IntervalRecord, ProcessMeta, Timestamp};
use crate::sinks::log::{Event, LogError, Notice, visit};

/// What rows are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One row per process (pid and start time).
    Process,
    /// Per job label (processes without one: `(no job)`).
    Job,
    /// Per cgroup path.
    Cgroup,
    /// Per user name.
    User,
    /// Per command name.
    Comm,
    /// One row for the whole machine, idle included.
    Machine,
}

#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    pub by: Option<GroupBy>,
    /// Only intervals that end at or after this.
    pub since: Option<SystemTime>,
    /// Only intervals that end before this.
    pub until: Option<SystemTime>,
    /// Keep the N biggest rows; the rest are summed into `(other)`.
    pub top: Option<usize>,
    /// Recompute gCO₂ with this intensity instead of the logged one.
    pub carbon: Option<CarbonConfig>,
    /// Recompute gCO₂ with this PUE instead of the logged one.
    pub pue: Option<f64>,
}

/// One row of the report: sums over the intervals it appeared in.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    pub group: String,
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    pub joules: f64,
    pub gco2: f64,
    /// Σ interval_s of the intervals the group had a row in.
    pub seconds: f64,
    /// Largest joules / interval_s of one interval (NaN for `(other)`).
    pub peak_watts: f64,
    /// End of the last interval the group appeared in.
    #[serde(skip)]
    pub last_seen: Option<SystemTime>,
    #[serde(skip)]
    seen_in: u64,
    #[serde(skip)]
    interval_joules: f64,
}

impl Row {
    fn named(group: impl Into<String>) -> Row {
        Row {
            group: group.into(),
            ..Row::default()
        }
    }

    pub fn average_watts(&self) -> f64 {
        if self.seconds > 0.0 {
            self.joules / self.seconds
        } else {
            0.0
        }
    }

    pub fn equivalents(&self) -> Equivalents {
        Equivalents::from_grams(self.gco2)
    }

    /// Percent of the machine's measured energy.
    pub fn share_pct(&self, machine: &Row) -> f64 {
        if machine.joules > 0.0 {
            100.0 * self.joules / machine.joules
        } else {
            0.0
        }
    }

    fn add(&mut self, cpu: f64, dram: f64, gpu: f64, joules: f64, grams: f64) {
        self.cpu_joules += cpu;
        self.dram_joules += dram;
        self.gpu_joules += gpu;
        self.joules += joules;
        self.gco2 += grams;
        self.interval_joules += joules;
    }

    /// Closes the interval `tick` for this row.
    fn end_interval(&mut self, tick: u64, seconds: f64, at: Option<SystemTime>) {
        if self.seen_in == tick {
            return;
        }
        self.seen_in = tick;
        self.seconds += seconds;
        if seconds > 0.0 {
            self.peak_watts = self.peak_watts.max(self.interval_joules / seconds);
        }
        self.interval_joules = 0.0;
        self.last_seen = at.or(self.last_seen);
    }

    /// Adds `other`'s sums. Time seen and peak cannot be merged from two rows'
    /// totals (they may overlap), so the caller sets them.
    fn merge(&mut self, other: &Row) {
        self.cpu_joules += other.cpu_joules;
        self.dram_joules += other.dram_joules;
        self.gpu_joules += other.gpu_joules;
        self.joules += other.joules;
        self.gco2 += other.gco2;
        self.last_seen = self.last_seen.max(other.last_seen);
    }
}

/// The whole report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub by: Option<GroupBy>,
    pub intervals: u64,
    #[serde(serialize_with = "format::rfc3339_opt")]
    pub first: Option<SystemTime>,
    #[serde(serialize_with = "format::rfc3339_opt")]
    pub last: Option<SystemTime>,
    /// `logged`, or the intensity the grams were recomputed with.
    pub intensity: String,
    /// Biggest first; then `(other)` if cut by `top`; then `(idle)`.
    pub rows: Vec<Row>,
    /// Everything measured, idle included.
    pub machine: Row,
    /// machine − (Σ rows): attribution's floating-point residual.
    pub residual_joules: f64,
    pub hosts: Vec<String>,
    /// CPUs of the last interval (for `emissions-csv`).
    pub cpus: u32,
    /// Grid region of the last interval.
    pub region: String,
    /// PUE the grams of the last interval carry (logged, or `--pue`).
    pub pue: f64,
    #[serde(serialize_with = "format::notices")]
    pub notices: Vec<(PathBuf, Notice)>,
}

/// Reads the logs and sums them. `progress` gets (bytes read, bytes in all inputs).
pub fn build(
    inputs: &[PathBuf],
    opts: &ReportOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, ReportError> {
    let mut acc = Accumulator::new(opts)?;
    let mut current = PathBuf::new();
    visit(inputs, &mut |event| match event {
        Event::Segment { path, .. } => {
            current = path.to_path_buf();
            acc.cache.clear();
        }
        Event::Header(header) => {
            if !acc.report.hosts.contains(&header.host) {
                acc.report.hosts.push(header.host.clone());
            }
        }
        Event::Interval {
            offset,
            record,
            state,
        } => {
            if let Err(error) = acc.interval(record, state) {
                let kind = crate::sinks::log::NoticeKind::Undecodable { error };
                acc.report
                    .notices
                    .push((current.clone(), Notice { offset, kind }));
            }
        }
        Event::Notice { path, notice } => acc.report.notices.push((path.to_path_buf(), notice)),
        Event::Progress { done, total } => progress(done, total),
    })?;
    Ok(acc.finish(opts.top))
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("carbon intensity for the report")]
    Carbon(#[from] crate::carbon::CarbonError),
}

struct Accumulator {
    by: Option<GroupBy>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    resolver: Option<CarbonResolver>,
    pue: Option<f64>,
    groups: Vec<Row>,
    index: HashMap<String, usize>,
    /// Group of each process id of the current segment.
    cache: Vec<Option<usize>>,
    idle: Row,
    report: Report,
}

impl Accumulator {
    fn new(opts: &ReportOptions) -> Result<Accumulator, ReportError> {
        let resolver = opts.carbon.clone().map(CarbonResolver::new).transpose()?;
        Ok(Accumulator {
            by: opts.by,
            since: opts.since,
            until: opts.until,
            resolver,
            pue: opts.pue,
            groups: Vec::new(),
            index: HashMap::new(),
            cache: Vec::new(),
            idle: Row::named("(idle)"),
            report: Report {
                by: opts.by,
                intensity: "logged".into(),
                machine: Row::named("machine"),
                pue: 1.0,
                ..Report::default()
            },
        })
    }

    fn interval(&mut self, record: &IntervalRecord, state: &SegmentState) -> Result<(), String> {
        let at = end_time(&record.ts);
        let outside = self.since.is_some_and(|s| at.is_none_or(|t| t < s))
            || self.until.is_some_and(|u| at.is_none_or(|t| t >= u));
        if outside {
            return Ok(());
        }
        let sys = &record.system;
        self.report.region.clone_from(&sys.region);
        // The logged PUE applies unless another is asked for: it is the site's.
        let pue = self.pue.unwrap_or(sys.pue);
        self.report.pue = pue;
        let (g, recomputed) = match (&mut self.resolver, at) {
            (Some(resolver), Some(t)) => {
                let intensity = resolver.intensity_at(t);
                self.report.intensity = format!("{} {}", intensity.source, intensity.region);
                self.report.region = intensity.region;
                (intensity.g_per_kwh * pue, true)
            }
            _ => (sys.intensity_g_per_kwh * pue, self.pue.is_some()),
        };
        self.report.intervals += 1;
        let tick = self.report.intervals;
        self.report.first = self.report.first.or(at);
        self.report.last = at.or(self.report.last);
        self.report.cpus = sys.cpus;
        if self.by != Some(GroupBy::Machine) {
            let mut touched = Vec::new();
            for item in decode::rows(record) {
                let (row, own) = item?;
                let v = decode::process_values(
                    row,
                    own,
                    &record.rates,
                    sys.intensity_g_per_kwh * sys.pue,
                )?;
                let grams = if recomputed {
                    gco2(v.joules, g)
                } else {
                    v.gco2
                };
                let group = self.group_of(row.meta, state);
                let acc = &mut self.groups[group];
                acc.add(v.cpu_joules, v.dram_joules, v.gpu_joules, v.joules, grams);
                touched.push(group);
            }
            for group in touched {
                self.groups[group].end_interval(tick, record.interval_s, at);
            }
            let [cpu, dram, gpu] = sys.balance.map(|b| b.idle_j);
            let idle_j = cpu + dram + gpu;
            self.idle.add(cpu, dram, gpu, idle_j, gco2(idle_j, g));
            self.idle.end_interval(tick, record.interval_s, at);
        }
        let [cpu, dram, gpu] = sys.balance.map(|b| b.measured_j);
        let measured = cpu + dram + gpu;
        let grams = if recomputed {
            gco2(measured, g)
        } else {
            sys.gco2
        };
        let machine = &mut self.report.machine;
        machine.add(cpu, dram, gpu, measured, grams);
        machine.end_interval(tick, record.interval_s, at);
        Ok(())
    }

    fn group_of(&mut self, id: u32, state: &SegmentState) -> usize {
        if let Some(Some(group)) = self.cache.get(id as usize) {
            return *group;
        }
        let lost = ProcessMeta {
            comm: LOST_META.into(),
            ..ProcessMeta::default()
        };
        let meta = state.meta(id).unwrap_or(&lost);
        let label = match self.by {
            Some(GroupBy::Process) | None => format!("{} [{}]", meta.comm, meta.pid),
            Some(GroupBy::Job) => meta.job.clone().unwrap_or_else(|| "(no job)".into()),
            Some(GroupBy::Cgroup) => meta.cgroup.clone(),
            Some(GroupBy::User) => meta.user.clone(),
            Some(GroupBy::Comm) | Some(GroupBy::Machine) => meta.comm.clone(),
        };
        // Two processes may share a pid (reuse): keep them apart by start time.
        let key = match self.by {
            Some(GroupBy::Process) | None => format!("{label}@{}", meta.start_ns),
            _ => label.clone(),
        };
        let next = self.groups.len();
        let group = *self.index.entry(key).or_insert(next);
        if group == next {
            self.groups.push(Row::named(label));
        }
        let slot = id as usize;
        if slot < self.cache.len() + (1 << 16) {
            if slot >= self.cache.len() {
                self.cache.resize(slot + 1, None);
            }
            self.cache[slot] = Some(group);
        }
        group
    }

    fn finish(mut self, top: Option<usize>) -> Report {
        let mut rows = std::mem::take(&mut self.groups);
        rows.sort_by(|a, b| b.joules.total_cmp(&a.joules).then(a.group.cmp(&b.group)));
        if let Some(n) = top.filter(|&n| n < rows.len()) {
            let rest = rows.split_off(n);
            let mut other = Row::named(format!("(other: {} groups)", rest.len()));
            rest.iter().for_each(|r| other.merge(r));
            // Its average is over the whole report; its peak is unknown (NaN).
            other.seconds = self.report.machine.seconds;
            other.peak_watts = f64::NAN;
            rows.push(other);
        }
        let report = &mut self.report;
        if report.by == Some(GroupBy::Machine) {
            report.machine.group = match report.hosts.as_slice() {
                [host] => host.clone(),
                _ => "machine".into(),
            };
            rows.push(report.machine.clone());
        } else {
            rows.push(self.idle);
        }
        let summed: f64 = rows.iter().map(|r| r.joules).sum();
        report.residual_joules = report.machine.joules - summed;
        report.rows = rows;
        self.report
    }
}

/// End of an interval, if its timestamp can be read.
pub fn end_time(ts: &Timestamp) -> Option<SystemTime> {
    match ts {
        Timestamp::UnixMillis(ms) => UNIX_EPOCH.checked_add(Duration::from_millis(*ms)),
        Timestamp::Text(text) => humantime::parse_rfc3339_weak(text).ok(),
    }
}

/// `--since` / `--until`: an RFC 3339 time (`2026-11-22T22:00:00Z`, or without
/// the `T`/`Z`, read as UTC) or a duration before `now` (`12h`, `30m`).
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    match humantime::parse_duration(text) {
        Ok(ago) => now
            .checked_sub(ago)
            .ok_or_else(|| format!("{text} before now is before the epoch")),
        Err(_) => Err(format!(
            "'{text}' is neither a time like 2026-11-22T22:00:00Z nor a duration like 12h"
        )),
    }
}

#[cfg(test)]
#[path = "report/tests.rs"]
mod tests;
