//! The table's rows for the current view: filtered, sorted, as a tree, with threads,
//! or grouped by job, cgroup or user. A pure function of the processes and options.
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::gpu_calls::GpuCallRates;
use super::procs::{ProcKey, ProcRow, Processes};

/// Table columns, in screen order; `<` and `>` walk this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    Pid,
    User,
    Job,
    Command,
    Cpu,
    Gpu,
    /// Share of wall time blocked in CUDA sync calls (eBPF probes).
    GpuSync,
    /// CUDA kernel and graph launches per second (eBPF probes, `--gpu-probes all`).
    GpuLaunches,
    Watts,
    Joules,
    Gco2,
    Gco2PerHour,
}

impl SortKey {
    pub const ALL: [SortKey; 12] = [
        SortKey::Pid,
        SortKey::User,
        SortKey::Job,
        SortKey::Command,
        SortKey::Cpu,
        SortKey::Gpu,
        SortKey::GpuSync,
        SortKey::GpuLaunches,
        SortKey::Watts,
        SortKey::Joules,
        SortKey::Gco2,
        SortKey::Gco2PerHour,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Pid => "PID",
            SortKey::User => "USER",
            SortKey::Job => "JOB",
            SortKey::Command => "COMMAND",
            SortKey::Cpu => "CPU%",
            SortKey::Gpu => "GPU%",
            SortKey::GpuSync => "SYNC%",
            SortKey::GpuLaunches => "LNCH/s",
            SortKey::Watts => "W",
            SortKey::Joules => "J",
            SortKey::Gco2 => "gCO₂",
            SortKey::Gco2PerHour => "gCO₂/h",
        }
    }

    /// Numbers sort biggest first by default, text A to Z.
    pub fn descending_by_default(self) -> bool {
        !matches!(
            self,
            SortKey::Pid | SortKey::User | SortKey::Job | SortKey::Command
        )
    }

    /// The next column to the right (`step` 1) or left (`step` -1), wrapping.
    pub fn step(self, step: isize) -> SortKey {
        let len = Self::ALL.len() as isize;
        let index = Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as isize;
        Self::ALL[(index + step).rem_euclid(len) as usize]
    }
}

/// `g` cycles through these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Grouping {
    #[default]
    None,
    Job,
    Cgroup,
    User,
}

impl Grouping {
    pub fn next(self) -> Grouping {
        match self {
            Grouping::None => Grouping::Job,
            Grouping::Job => Grouping::Cgroup,
            Grouping::Cgroup => Grouping::User,
            Grouping::User => Grouping::None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Grouping::None => "none",
            Grouping::Job => "job",
            Grouping::Cgroup => "cgroup",
            Grouping::User => "user",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ViewOptions {
    pub sort: SortKey,
    pub descending: bool,
    /// Matches command, user, job or pid; case-insensitive.
    pub filter: String,
    /// Matches the job only.
    pub job_filter: String,
    pub tree: bool,
    pub threads: bool,
    pub grouping: Grouping,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            sort: SortKey::Watts,
            descending: true,
            filter: String::new(),
            job_filter: String::new(),
            tree: false,
            threads: false,
            grouping: Grouping::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum RowKind {
    Process(ProcKey),
    Thread { pid: u32, tid: u32 },
    Group { members: usize },
}

/// One line of the table, numbers not yet formatted.
#[derive(Clone, Debug, PartialEq)]
pub struct DisplayRow {
    pub kind: RowKind,
    /// Pid, tid, or the member count of a group.
    pub id: u32,
    pub user: String,
    pub job: String,
    pub command: String,
    /// Tree or thread indentation level.
    pub depth: usize,
    pub cpu_pct: f64,
    pub gpu_pct: Option<f64>,
    /// GPU activity from the eBPF probes; `None` when there was none.
    pub gpu_calls: Option<GpuCallRates>,
    pub watts: f64,
    pub joules: f64,
    pub gco2: f64,
    pub gco2_per_h: f64,
    pub fading: bool,
}

impl DisplayRow {
    fn process(p: &ProcRow) -> DisplayRow {
        DisplayRow {
            kind: RowKind::Process(p.key()),
            id: p.pid,
            user: p.user.clone(),
            job: p.job.clone().unwrap_or_default(),
            command: p.comm.clone(),
            depth: 0,
            cpu_pct: p.cpu_pct,
            gpu_pct: p.gpu_pct,
            gpu_calls: p.gpu_calls,
            watts: p.watts,
            joules: p.joules_total,
            gco2: p.gco2_total,
            gco2_per_h: p.gco2_per_h,
            fading: p.exited(),
        }
    }
}

fn contains(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

fn matches(p: &ProcRow, opts: &ViewOptions) -> bool {
    let job = p.job.as_deref().unwrap_or("");
    let filter = opts.filter.to_lowercase();
    let job_filter = opts.job_filter.to_lowercase();
    (filter.is_empty()
        || contains(&p.comm, &filter)
        || contains(&p.user, &filter)
        || contains(job, &filter)
        || p.pid.to_string().contains(&filter))
        && (job_filter.is_empty() || contains(job, &job_filter))
}

fn compare(a: &DisplayRow, b: &DisplayRow, opts: &ViewOptions) -> Ordering {
    let primary = match opts.sort {
        SortKey::Pid => a.id.cmp(&b.id),
        SortKey::User => a.user.cmp(&b.user),
        SortKey::Job => a.job.cmp(&b.job),
        SortKey::Command => a.command.cmp(&b.command),
        SortKey::Cpu => a.cpu_pct.total_cmp(&b.cpu_pct),
        SortKey::Gpu => a
            .gpu_pct
            .unwrap_or(-1.0)
            .total_cmp(&b.gpu_pct.unwrap_or(-1.0)),
        SortKey::GpuSync => gpu_key(a, |g| g.sync_pct).total_cmp(&gpu_key(b, |g| g.sync_pct)),
        SortKey::GpuLaunches => {
            gpu_key(a, |g| g.launches_per_s).total_cmp(&gpu_key(b, |g| g.launches_per_s))
        }
        SortKey::Watts => a.watts.total_cmp(&b.watts),
        SortKey::Joules => a.joules.total_cmp(&b.joules),
        SortKey::Gco2 => a.gco2.total_cmp(&b.gco2),
        SortKey::Gco2PerHour => a.gco2_per_h.total_cmp(&b.gco2_per_h),
    };
    let primary = if opts.descending {
        primary.reverse()
    } else {
        primary
    };
    // Ties in pid order, so equal rows do not swap places between ticks.
    primary
        .then(a.id.cmp(&b.id))
        .then(a.command.cmp(&b.command))
}

/// A GPU activity figure to sort by; rows without any sort below zero.
fn gpu_key(row: &DisplayRow, figure: fn(&GpuCallRates) -> f64) -> f64 {
    row.gpu_calls.as_ref().map_or(-1.0, figure)
}

/// The rows to show, in order.
pub fn visible_rows(procs: &Processes, opts: &ViewOptions) -> Vec<DisplayRow> {
    let shown: Vec<&ProcRow> = procs.iter().filter(|p| matches(p, opts)).collect();
    if opts.grouping != Grouping::None {
        let mut rows = grouped(&shown, opts.grouping);
        rows.sort_by(|a, b| compare(a, b, opts));
        return rows;
    }
    let mut rows: Vec<DisplayRow> = shown.iter().map(|p| DisplayRow::process(p)).collect();
    rows.sort_by(|a, b| compare(a, b, opts));
    if opts.tree {
        rows = as_tree(rows, &shown);
    }
    if opts.threads {
        rows = with_threads(rows, procs);
    }
    rows
}

/// Children under their parents (by ppid), each level in sort order.
fn as_tree(sorted: Vec<DisplayRow>, shown: &[&ProcRow]) -> Vec<DisplayRow> {
    let ppid: HashMap<u32, u32> = shown.iter().map(|p| (p.pid, p.ppid)).collect();
    let pids: HashSet<u32> = ppid.keys().copied().collect();
    let mut children: HashMap<u32, Vec<DisplayRow>> = HashMap::new();
    let mut roots = Vec::new();
    for row in sorted {
        match ppid.get(&row.id) {
            Some(&parent) if parent != row.id && pids.contains(&parent) => {
                children.entry(parent).or_default().push(row);
            }
            _ => roots.push(row),
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<DisplayRow> = roots.into_iter().rev().collect();
    while let Some(mut row) = stack.pop() {
        let depth = row.depth;
        if let Some(kids) = children.remove(&row.id) {
            stack.extend(kids.into_iter().rev().map(|mut kid| {
                kid.depth = depth + 1;
                kid
            }));
        }
        row.depth = depth;
        out.push(row);
    }
    out
}

/// Each process followed by its live threads, busiest first.
fn with_threads(rows: Vec<DisplayRow>, procs: &Processes) -> Vec<DisplayRow> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let proc_row = match row.kind {
            RowKind::Process(key) => procs.get(&key),
            _ => None,
        };
        let depth = row.depth + 1;
        out.push(row);
        let Some(p) = proc_row else { continue };
        let mut threads: Vec<_> = p.threads.values().filter(|t| !t.exited).collect();
        threads.sort_by(|a, b| b.watts.total_cmp(&a.watts).then(a.tid.cmp(&b.tid)));
        out.extend(threads.into_iter().map(|t| DisplayRow {
            kind: RowKind::Thread {
                pid: p.pid,
                tid: t.tid,
            },
            id: t.tid,
            user: p.user.clone(),
            job: p.job.clone().unwrap_or_default(),
            command: t.comm.clone(),
            depth,
            cpu_pct: t.cpu_pct,
            gpu_pct: None,
            gpu_calls: t.gpu_calls,
            watts: t.watts,
            joules: t.joules_total,
            gco2: t.gco2_total,
            gco2_per_h: 0.0,
            fading: p.exited(),
        }));
    }
    out
}

/// One row per job, cgroup or user, summing its processes.
fn grouped(shown: &[&ProcRow], grouping: Grouping) -> Vec<DisplayRow> {
    let mut groups: BTreeMap<String, DisplayRow> = BTreeMap::new();
    for p in shown {
        let name = match grouping {
            Grouping::Job => p.job.clone().unwrap_or_else(|| "-".to_string()),
            Grouping::Cgroup => p.cgroup.clone(),
            Grouping::User | Grouping::None => p.user.clone(),
        };
        let row = groups.entry(name.clone()).or_insert_with(|| DisplayRow {
            kind: RowKind::Group { members: 0 },
            id: 0,
            user: if grouping == Grouping::User {
                name.clone()
            } else {
                String::new()
            },
            job: if grouping == Grouping::Job {
                name.clone()
            } else {
                String::new()
            },
            command: name,
            depth: 0,
            cpu_pct: 0.0,
            gpu_pct: None,
            gpu_calls: None,
            watts: 0.0,
            joules: 0.0,
            gco2: 0.0,
            gco2_per_h: 0.0,
            fading: false,
        });
        row.id += 1;
        row.kind = RowKind::Group {
            members: row.id as usize,
        };
        row.cpu_pct += p.cpu_pct;
        row.gpu_pct = match (row.gpu_pct, p.gpu_pct) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        row.gpu_calls = GpuCallRates::sum(row.gpu_calls, p.gpu_calls);
        row.watts += p.watts;
        row.joules += p.joules_total;
        row.gco2 += p.gco2_total;
        row.gco2_per_h += p.gco2_per_h;
    }
    groups.into_values().collect()
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
