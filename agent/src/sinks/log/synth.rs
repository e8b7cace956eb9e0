//! Synthetic Intervals for tests, benchmarks and the committed sample log: a
//! deterministic workload of processes (some multi-threaded, some in jobs, some
//! exiting and replaced) whose CPU time and RAPL-like energies go through the real
//! attribution (`attribution::attribute`) and Interval builder (`interval::build`),
//! so the numbers have exactly the shape the live pipeline produces.
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::reader::RunningTotals;
use crate::attribution::{Calibration, IdlePolicy, attribute};
use crate::energy::summary::summarize;
use crate::energy::{Domain, DomainEnergy, DomainKind, EnergyReading, Provenance};
use crate::interval::{BuildInput, CarbonContext, UserNames, build};
use crate::model::Interval;
use crate::probes::{CpuTime, Fidelity, LedgerSample, ProcessSample, ThreadSample};

/// The shape of the workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Processes active in every interval.
    pub processes: usize,
    /// CPU packages (sockets); 8 CPUs each.
    pub packages: u32,
    pub interval: Duration,
    /// Per-thread rows in the Intervals (`--threads`).
    pub threads: bool,
    /// One process in this many exits each interval and is replaced.
    pub churn_one_in: u64,
    pub start: SystemTime,
    pub seed: u64,
}

impl Workload {
    pub fn new(processes: usize) -> Workload {
        Workload {
            processes,
            packages: 1,
            interval: Duration::from_secs(1),
            threads: true,
            churn_one_in: 50,
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_385_400),
            seed: 1,
        }
    }
}

const CPUS_PER_PACKAGE: usize = 8;

/// Produces one Interval per call.
pub struct Synth {
    work: Workload,
    rng: u64,
    tick: u64,
    next_pid: u32,
    procs: Vec<ProcessSample>,
    totals: RunningTotals,
}

impl Synth {
    pub fn new(work: Workload) -> Synth {
        let mut synth = Synth {
            rng: work.seed.max(1),
            work,
            tick: 0,
            next_pid: 1000,
            procs: Vec::new(),
            totals: RunningTotals::default(),
        };
        for _ in 0..synth.work.processes {
            let p = synth.new_process();
            synth.procs.push(p);
        }
        synth
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: deterministic, dependency-free.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn new_process(&mut self) -> ProcessSample {
        let pid = self.next_pid;
        self.next_pid += 1 + (self.random() % 7) as u32;
        let kind = pid % 5;
        let comm = ["python3", "postgres", "nginx", "java", "rustc"][kind as usize].to_string();
        let threads = if kind == 3 { 4 } else { 1 };
        ProcessSample {
            tgid: pid,
            start_ns: 1_000_000_000 * u64::from(pid),
            ppid: 1,
            uid: [0, 1000, 1001][pid as usize % 3],
            cgroup: format!("/system.slice/{comm}.service"),
            threads: (0..threads)
                .map(|i| ThreadSample {
                    tid: pid + i,
                    comm: if i == 0 {
                        comm.clone()
                    } else {
                        format!("worker-{i}")
                    },
                    ..ThreadSample::default()
                })
                .collect(),
            comm,
            ..ProcessSample::default()
        }
    }

    /// The next interval.
    pub fn next_interval(&mut self) -> Interval {
        self.advance_processes();
        let sample = self.ledger_sample();
        let reading = self.energy();
        let attribution = attribute(
            &sample,
            Some(&reading),
            None,
            IdlePolicy::Exclude,
            &Calibration::default(),
        );
        let jobs: HashMap<u32, String> = self
            .procs
            .iter()
            .filter(|p| p.comm == "python3")
            .map(|p| (p.tgid, format!("slurm:{}", 100 + p.tgid % 3)))
            .collect();
        let mut interval = build(BuildInput {
            sample: &sample,
            fidelity: &Fidelity::Ebpf {
                attach: "tp_btf".into(),
                notes: Vec::new(),
            },
            energy: summarize(("rapl-powercap", Ok(reading)), None),
            attribution: &attribution,
            policy: IdlePolicy::Exclude,
            carbon: &CarbonContext {
                g_per_kwh: 56.039,
                region: "FRA".into(),
                source: "table".into(),
                note: None,
                pue: 1.0,
            },
            users: &UserNames::load(Path::new("/nonexistent")),
            jobs: &jobs,
            gpu_only: &[],
            threads: self.work.threads,
        });
        self.tick += 1;
        let end = self.work.start + self.work.interval * self.tick as u32;
        interval.ts = humantime::format_rfc3339_millis(end).to_string();
        self.finish(&mut interval);
        interval
    }

    /// This interval's CPU time of every process; exits and replacements.
    fn advance_processes(&mut self) {
        let packages = self.work.packages as usize;
        let interval_ns = self.work.interval.as_nanos() as u64;
        let churn = self.work.churn_one_in.max(1);
        for i in 0..self.procs.len() {
            let mut p = std::mem::take(&mut self.procs[i]);
            if p.exited {
                p = self.new_process();
            } else if self.random().is_multiple_of(churn) {
                p.exited = true;
                p.threads.iter_mut().for_each(|t| t.exited = true);
            }
            let home = (p.tgid as usize) % packages;
            for t in &mut p.threads {
                let ns = 10_000 + self.random() % (interval_ns / 4);
                t.on_cpu_ns = ns;
                t.on_cpu_ns_by_package = vec![0; packages];
                t.on_cpu_ns_by_package[home] = ns;
            }
            p.on_cpu_ns = p.threads.iter().map(|t| t.on_cpu_ns).sum();
            p.on_cpu_ns_by_package = vec![0; packages];
            p.on_cpu_ns_by_package[home] = p.on_cpu_ns;
            self.procs[i] = p;
        }
    }

    fn ledger_sample(&mut self) -> LedgerSample {
        let packages = self.work.packages as usize;
        let cpus = packages * CPUS_PER_PACKAGE;
        let interval_ns = self.work.interval.as_nanos() as u64;
        let mut busy = vec![0u64; packages];
        for p in &self.procs {
            for (sum, ns) in busy.iter_mut().zip(&p.on_cpu_ns_by_package) {
                *sum += ns;
            }
        }
        LedgerSample {
            interval: self.work.interval,
            cpus: (0..cpus)
                .map(|cpu| {
                    let busy_ns =
                        (busy[cpu / CPUS_PER_PACKAGE] / CPUS_PER_PACKAGE as u64).min(interval_ns);
                    CpuTime {
                        busy_ns,
                        idle_ns: interval_ns - busy_ns,
                    }
                })
                .collect(),
            packages: (0..self.work.packages).collect(),
            cpu_package: (0..cpus).map(|c| c / CPUS_PER_PACKAGE).collect(),
            processes: self.procs.clone(),
            health: Default::default(),
            gpu: None,
        }
    }

    fn energy(&mut self) -> EnergyReading {
        let seconds = self.work.interval.as_secs_f64();
        let mut domains = Vec::new();
        for package in 0..self.work.packages {
            for (kind, watts, name) in [
                (DomainKind::Package, 60.0, "package"),
                (DomainKind::Dram, 8.0, "dram"),
            ] {
                let jitter = (self.random() % 1000) as f64 / 100.0;
                domains.push(DomainEnergy::counted(
                    Domain {
                        kind,
                        index: package,
                        name: format!("intel-rapl:{package} {name}"),
                    },
                    ((watts + jitter) * seconds * 1e6) as u64,
                    Provenance::RaplPowercap,
                ));
            }
        }
        EnergyReading {
            elapsed: self.work.interval,
            domains,
            ..EnergyReading::default()
        }
    }

    /// User names, and the running totals the JSON sink and log readers add.
    fn finish(&mut self, interval: &mut Interval) {
        for p in &mut interval.processes {
            p.user = match p.uid {
                0 => "root",
                1000 => "ann",
                _ => "bob",
            }
            .to_string();
        }
        self.totals.apply(interval);
    }
}
