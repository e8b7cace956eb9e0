//! One run's account, built from the Intervals of the job's lifetime: the job's
//! energy by domain, its phases, its processes, and the machine's energy over the
//! same intervals. Pure: the measuring loop feeds it Intervals and phase marks.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use agent::carbon::{Equivalents, JOULES_PER_KWH};
use agent::model::{Interval, ProcessEnergy};
use serde::{Deserialize, Serialize};

use super::child::ExitStatus;
use super::tree::JobTree;

/// Intervals shorter than this (a phase mark or the exit right after a tick) are
/// too short for a meaningful power figure and do not set the peak.
pub const MIN_PEAK_INTERVAL_S: f64 = 0.2;
/// Processes listed in a run's report, most joules first.
pub const TOP_PROCESSES: usize = 10;
/// Distinct notes kept per run.
const MAX_NOTES: usize = 10;

/// Energy and CPU time of a set of processes over a span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    /// On-CPU seconds summed over CPUs.
    pub cpu_seconds: f64,
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    /// CPU + DRAM + GPU.
    pub joules: f64,
    /// At each interval's intensity, × PUE.
    pub gco2: f64,
}

impl From<&ProcessEnergy> for Energy {
    fn from(p: &ProcessEnergy) -> Energy {
        Energy {
            cpu_seconds: p.cpu_seconds,
            cpu_joules: p.cpu_joules,
            dram_joules: p.dram_joules,
            gpu_joules: p.gpu_joules,
            joules: p.joules,
            gco2: p.gco2,
        }
    }
}

impl Energy {
    pub fn add(&mut self, other: &Energy) {
        self.cpu_seconds += other.cpu_seconds;
        self.cpu_joules += other.cpu_joules;
        self.dram_joules += other.dram_joules;
        self.gpu_joules += other.gpu_joules;
        self.joules += other.joules;
        self.gco2 += other.gco2;
    }
}

/// The span between two phase marks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// Seconds after the command started.
    pub start_s: f64,
    pub wall_s: f64,
    #[serde(flatten)]
    pub energy: Energy,
}

/// One process of the job over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessTotal {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub start_ns: u64,
    pub exited: bool,
    #[serde(flatten)]
    pub energy: Energy,
}

/// The whole machine's measured energy over the run's intervals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineEnergy {
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    pub joules: f64,
}

/// Where the numbers came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// CPU-time ledger (`ebpf-tp_btf`, `procfs`, …).
    pub ledger: String,
    /// Energy sources per domain; several joined with `+` if they changed.
    pub cpu_source: String,
    pub dram_source: String,
    pub gpu_source: String,
    /// False if any domain was estimated.
    pub measured: bool,
    /// `exclude`, `share` or `baseline`.
    pub idle_policy: String,
    /// Names of the GPUs seen, one per device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<String>,
}

/// The carbon side of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CarbonUsed {
    pub region: String,
    /// The job's energy-weighted average intensity (the last interval's when the
    /// job used no energy).
    pub intensity_g_per_kwh: f64,
    pub intensity_source: String,
    pub pue: f64,
}

/// Everything measured about one run of one command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub command: Vec<String>,
    /// Start and end of the command, RFC 3339 UTC.
    pub started_at: String,
    pub ended_at: String,
    pub wall_s: f64,
    pub exit: ExitStatus,
    /// The job: every process of its tree.
    #[serde(flatten)]
    pub energy: Energy,
    pub watts_avg: f64,
    pub watts_peak: f64,
    pub machine: MachineEnergy,
    /// The job's joules over the machine's, 0 to 1.
    pub machine_share: f64,
    pub carbon: CarbonUsed,
    pub equivalents: Equivalents,
    pub provenance: Provenance,
    /// Where the Intervals came from: `local` (this process's pipeline) or
    /// `agent:PATH` (a greentop-agent's socket).
    #[serde(default)]
    pub feed: String,
    /// Distinct processes of the job.
    pub processes: usize,
    /// The kernel's own account (getrusage of the reaped tree), user + system.
    pub rusage_cpu_seconds: f64,
    pub phases: Vec<Phase>,
    pub top_processes: Vec<ProcessTotal>,
    pub notes: Vec<String>,
}

/// How a run ended, as the measuring loop saw it.
pub struct RunEnd {
    pub command: Vec<String>,
    pub started_at: String,
    pub ended_at: String,
    pub wall_s: f64,
    pub exit: ExitStatus,
    pub rusage_cpu_seconds: f64,
    /// `local` or `agent:PATH`.
    pub feed: String,
    pub notes: Vec<String>,
}

/// Eats the Intervals of one run.
pub struct Recorder {
    tree: JobTree,
    job: Energy,
    machine: MachineEnergy,
    phases: Vec<Phase>,
    processes: HashMap<(u32, u64), ProcessTotal>,
    peak_w: f64,
    last_intensity: f64,
    pue: f64,
    labels: Labels,
    notes: Vec<String>,
}

/// Every label seen, in first-seen order where it matters.
#[derive(Default)]
struct Labels {
    region: BTreeSet<String>,
    intensity: BTreeSet<String>,
    ledger: BTreeSet<String>,
    cpu: BTreeSet<String>,
    dram: BTreeSet<String>,
    gpu: BTreeSet<String>,
    idle: BTreeSet<String>,
    gpus: BTreeMap<u32, String>,
    estimated: bool,
}

impl Recorder {
    pub fn new(tree: JobTree) -> Recorder {
        Recorder {
            tree,
            job: Energy::default(),
            machine: MachineEnergy::default(),
            phases: vec![Phase {
                name: String::new(),
                start_s: 0.0,
                wall_s: 0.0,
                energy: Energy::default(),
            }],
            processes: HashMap::new(),
            peak_w: 0.0,
            last_intensity: 0.0,
            pue: 1.0,
            labels: Labels::default(),
            notes: Vec::new(),
        }
    }

    /// Adds one interval: the job's rows to the run and the current phase.
    pub fn eat(&mut self, interval: &Interval) {
        let mut job = Energy::default();
        for p in self.tree.members(&interval.processes) {
            job.add(&Energy::from(p));
            let total = self
                .processes
                .entry((p.pid, p.start_ns))
                .or_insert_with(|| ProcessTotal {
                    pid: p.pid,
                    ppid: p.ppid,
                    comm: p.comm.clone(),
                    start_ns: p.start_ns,
                    exited: false,
                    energy: Energy::default(),
                });
            total.energy.add(&Energy::from(p));
            total.exited |= p.exited;
            total.comm.clone_from(&p.comm);
        }
        self.job.add(&job);
        if let Some(phase) = self.phases.last_mut() {
            phase.energy.add(&job);
        }
        if interval.interval_s >= MIN_PEAK_INTERVAL_S {
            self.peak_w = self.peak_w.max(job.joules / interval.interval_s);
        }
        self.eat_system(interval);
    }

    fn eat_system(&mut self, interval: &Interval) {
        let s = &interval.system;
        self.machine.cpu_joules += s.cpu_joules;
        self.machine.dram_joules += s.dram_joules;
        self.machine.gpu_joules += s.gpu_joules;
        self.machine.joules += s.cpu_joules + s.dram_joules + s.gpu_joules;
        self.last_intensity = s.intensity_g_per_kwh;
        self.pue = s.pue;
        let l = &mut self.labels;
        l.region.insert(s.region.clone());
        l.intensity.insert(s.intensity_source.clone());
        l.ledger.insert(s.ledger.clone());
        l.cpu.insert(s.cpu_source.clone());
        l.gpu.insert(s.gpu_source.clone());
        l.idle.insert(s.idle_policy.clone());
        for gpu in &s.gpus {
            l.gpus.insert(gpu.index, gpu.name.clone());
        }
        for domain in &s.energy {
            if domain.kind == "dram" {
                l.dram.insert(domain.source.clone());
            }
            let counted = matches!(domain.kind.as_str(), "package" | "dram" | "gpu");
            l.estimated |= counted && !domain.measured;
        }
        for note in s.notes() {
            if self.notes.len() < MAX_NOTES && !self.notes.contains(note) {
                self.notes.push(note.clone());
            }
        }
    }

    /// Starts a phase `at_s` seconds after the command started. Call it right after
    /// eating the interval that ends at the mark.
    pub fn mark(&mut self, name: &str, at_s: f64) {
        if let Some(phase) = self.phases.last_mut() {
            phase.wall_s = (at_s - phase.start_s).max(0.0);
        }
        self.phases.push(Phase {
            name: name.to_string(),
            start_s: at_s,
            wall_s: 0.0,
            energy: Energy::default(),
        });
    }

    /// Processes of the job seen to exit.
    pub fn exited_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .processes
            .values()
            .filter(|p| p.exited)
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        pids
    }

    /// Whether process `pid` of the job was seen (`None` if not), and seen to exit.
    pub fn seen_exit(&self, pid: u32) -> Option<bool> {
        let mut seen = self.processes.values().filter(|p| p.pid == pid).peekable();
        seen.peek()?;
        Some(seen.any(|p| p.exited))
    }

    /// Processes of the job not seen to exit: (pid, start_ns).
    pub fn unfinished(&self) -> Vec<(u32, u64)> {
        let mut open: Vec<(u32, u64)> = self
            .processes
            .values()
            .filter(|p| !p.exited)
            .map(|p| (p.pid, p.start_ns))
            .collect();
        open.sort_unstable();
        open
    }

    pub fn finish(self, end: RunEnd) -> RunRecord {
        let mut phases = self.phases;
        if let Some(last) = phases.last_mut() {
            last.wall_s = (end.wall_s - last.start_s).max(0.0);
        }
        // Without marks there are no phases; before the first mark is "(start)".
        if phases.len() == 1 {
            phases.clear();
        } else if phases[0].wall_s <= 0.0 && phases[0].energy.joules <= 0.0 {
            phases.remove(0);
        } else {
            phases[0].name = "(start)".to_string();
        }
        let mut top: Vec<ProcessTotal> = self.processes.values().cloned().collect();
        top.sort_by(|a, b| b.energy.joules.total_cmp(&a.energy.joules));
        top.truncate(TOP_PROCESSES);
        let job = self.job;
        let kwh = job.joules / JOULES_PER_KWH;
        let intensity = if kwh > 0.0 {
            job.gco2 / kwh / self.pue
        } else {
            self.last_intensity
        };
        let wall = end.wall_s.max(f64::MIN_POSITIVE);
        let mut notes = self.notes;
        notes.extend(end.notes);
        RunRecord {
            command: end.command,
            started_at: end.started_at,
            ended_at: end.ended_at,
            wall_s: end.wall_s,
            exit: end.exit,
            energy: job,
            watts_avg: job.joules / wall,
            watts_peak: self.peak_w.max(job.joules / wall),
            machine: self.machine,
            machine_share: share(job.joules, self.machine.joules),
            carbon: CarbonUsed {
                region: joined(&self.labels.region),
                intensity_g_per_kwh: intensity,
                intensity_source: joined(&self.labels.intensity),
                pue: self.pue,
            },
            equivalents: Equivalents::from_grams(job.gco2),
            provenance: Provenance {
                ledger: joined(&self.labels.ledger),
                cpu_source: joined(&self.labels.cpu),
                dram_source: joined(&self.labels.dram),
                gpu_source: joined(&self.labels.gpu),
                measured: !self.labels.estimated,
                idle_policy: joined(&self.labels.idle),
                gpus: self.labels.gpus.into_values().collect(),
            },
            feed: end.feed,
            processes: self.processes.len(),
            rusage_cpu_seconds: end.rusage_cpu_seconds,
            phases,
            top_processes: top,
            notes,
        }
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}

fn joined(labels: &BTreeSet<String>) -> String {
    let parts: Vec<&str> = labels.iter().map(String::as_str).collect();
    parts.join("+")
}

#[cfg(test)]
#[path = "record_tests.rs"]
pub(crate) mod tests;
