//! Builds the `Interval` of one tick from what the tick measured: the ledger sample,
//! the energy summary, the attribution, the carbon intensity and the job labels.
//! A pure function of its inputs, so it is tested without probes or hardware.
use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use crate::attribution::{Attribution, IdlePolicy, ProcessJoules};
use crate::carbon::gco2;
use crate::energy::summary::EnergySummary;
use crate::model::{
    BalanceJson, GpuProbesJson, GpuSplitJson, Interval, JobEnergy, LedgerHealthJson, PackageTime,
    ProcessEnergy, SystemSummary, ThreadEnergy, ns_to_s,
};
use crate::probes::{Fidelity, GpuProbeStatus, LedgerSample, ProcessKey, ProcessSample};

/// The carbon intensity that applies to the interval.
#[derive(Clone, Debug, PartialEq)]
pub struct CarbonContext {
    pub g_per_kwh: f64,
    /// Power usage effectiveness: grams are for `joules × pue`, joules stay as measured.
    pub pue: f64,
    pub region: String,
    pub source: String,
    pub note: Option<String>,
}

/// Everything one Interval is made of.
pub struct BuildInput<'a> {
    pub sample: &'a LedgerSample,
    pub fidelity: &'a Fidelity,
    pub energy: EnergySummary,
    pub attribution: &'a Attribution,
    pub policy: IdlePolicy,
    pub carbon: &'a CarbonContext,
    pub users: &'a UserNames,
    /// Job label per pid.
    pub jobs: &'a HashMap<u32, String>,
    /// Rows for processes that used a GPU but not a CPU this interval.
    pub gpu_only: &'a [ProcessSample],
    pub threads: bool,
}

pub fn build(input: BuildInput<'_>) -> Interval {
    let sample = input.sample;
    let g_per_kwh = input.carbon.g_per_kwh;
    // Attribution is by process identity; GPU-only rows were not in the ledger's
    // sample, so attribution knows them by pid alone.
    let mut processes: Vec<ProcessEnergy> = sample
        .processes
        .iter()
        .map(|p| process_row(p, &input, p.key()))
        .chain(
            input
                .gpu_only
                .iter()
                .map(|p| process_row(p, &input, ProcessKey::unreported(p.tgid))),
        )
        .collect();
    processes.sort_by(|a, b| {
        b.joules
            .total_cmp(&a.joules)
            .then(b.cpu_seconds.total_cmp(&a.cpu_seconds))
    });
    let jobs = job_rows(&processes);
    let att = input.attribution;
    let measured_j = att.cpu.measured_j + att.dram.measured_j + att.gpu.measured_j;
    let residual = [att.cpu, att.dram, att.gpu]
        .iter()
        .map(|b| b.residual_j.abs())
        .fold(0.0, f64::max);
    let energy = input.energy;
    let mut notes = energy.notes;
    notes.extend(att.notes.iter().cloned());
    Interval {
        ts: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        interval_s: sample.interval.as_secs_f64(),
        system: SystemSummary {
            cpu_joules: energy.cpu_joules,
            dram_joules: energy.dram_joules,
            gpu_joules: energy.gpu_joules,
            cpu_source: energy.cpu_source,
            gpu_source: energy.gpu_source,
            dram_source: energy.dram_source,
            platform_joules: energy.platform_joules,
            platform_source: energy.platform_source,
            energy: energy.domains,
            counters: energy.counters,
            gpus: energy.gpus,
            energy_notes: notes,
            idle_joules: att.cpu.idle_j + att.dram.idle_j + att.gpu.idle_j,
            idle_policy: input.policy.label().to_string(),
            balance: BalanceJson {
                cpu: att.cpu,
                dram: att.dram,
                gpu: att.gpu,
                residual_joules: residual,
            },
            region: input.carbon.region.clone(),
            intensity_g_per_kwh: g_per_kwh,
            intensity_source: input.carbon.source.clone(),
            intensity_note: input.carbon.note.clone(),
            pue: input.carbon.pue,
            gco2: gco2(measured_j, g_per_kwh * input.carbon.pue),
            jobs,
            gpu_probes: sample.gpu.as_ref().map(gpu_probes_json),
            gpu_split: gpu_split_json(&att.gpu_split),
            ..cpu_summary(sample, input.fidelity)
        },
        processes,
    }
}

/// One process's row, with the energy attribution gave the process `key`.
fn process_row(p: &ProcessSample, input: &BuildInput<'_>, key: ProcessKey) -> ProcessEnergy {
    let g_per_kwh = input.carbon.g_per_kwh * input.carbon.pue;
    let none = ProcessJoules::default();
    let joules = input.attribution.processes.get(&key).unwrap_or(&none);
    let threads = input.threads.then(|| {
        p.threads
            .iter()
            .map(|t| {
                let j = joules
                    .threads
                    .iter()
                    .find(|row| row.tid == t.tid)
                    .map_or(0.0, |row| row.cpu_j + row.dram_j);
                ThreadEnergy {
                    tid: t.tid,
                    comm: t.comm.clone(),
                    cpu_seconds: ns_to_s(t.on_cpu_ns),
                    exited: t.exited,
                    joules: j,
                    gco2: gco2(j, g_per_kwh),
                    gpu_ctx_switches: t.gpu.ctx_switches,
                    gpu_launches: t.gpu.launches,
                    gpu_sync_wait_seconds: ns_to_s(t.gpu.sync_wait_ns),
                    gpu_ioctls: t.gpu.ioctls,
                }
            })
            .collect()
    });
    ProcessEnergy {
        pid: p.tgid,
        ppid: p.ppid,
        comm: p.comm.clone(),
        user: input.users.name(p.uid),
        uid: p.uid,
        cgroup: p.cgroup.clone(),
        job: input.jobs.get(&p.tgid).cloned(),
        start_ns: p.start_ns,
        cpu_seconds: ns_to_s(p.on_cpu_ns),
        cpu_seconds_by_package: p
            .on_cpu_ns_by_package
            .iter()
            .map(|&ns| ns_to_s(ns))
            .collect(),
        exited: p.exited,
        cpu_joules: joules.cpu_j,
        dram_joules: joules.dram_j,
        gpu_joules: joules.gpu_j,
        joules: joules.total_j(),
        gco2: gco2(joules.total_j(), g_per_kwh),
        joules_total: 0.0,
        gco2_total: 0.0,
        gpu_ctx_switches: p.gpu.ctx_switches,
        gpu_launches: p.gpu.launches,
        gpu_sync_wait_seconds: ns_to_s(p.gpu.sync_wait_ns),
        gpu_ioctls: p.gpu.ioctls,
        threads,
    }
}

fn gpu_split_json(split: &[(u32, &'static str)]) -> Vec<GpuSplitJson> {
    split
        .iter()
        .map(|&(index, by)| GpuSplitJson {
            index,
            split_by: by.to_string(),
        })
        .collect()
}

fn gpu_probes_json(status: &GpuProbeStatus) -> GpuProbesJson {
    GpuProbesJson {
        mode: status.mode.label().to_string(),
        libraries: status.libraries.clone(),
        ioctl_counter: status.ioctl_counter.clone(),
        notes: status.notes.clone(),
        dropped_hits: status.dropped_hits,
        untimed_syncs: status.untimed_syncs,
    }
}

/// Sums processes by job label.
pub(crate) fn job_rows(processes: &[ProcessEnergy]) -> Vec<JobEnergy> {
    let mut jobs: HashMap<&str, JobEnergy> = HashMap::new();
    for p in processes {
        let Some(job) = p.job.as_deref() else {
            continue;
        };
        let row = jobs.entry(job).or_insert_with(|| JobEnergy {
            job: job.to_string(),
            ..JobEnergy::default()
        });
        row.pids.push(p.pid);
        row.cpu_seconds += p.cpu_seconds;
        row.joules += p.joules;
        row.gco2 += p.gco2;
    }
    let mut rows: Vec<JobEnergy> = jobs.into_values().collect();
    rows.sort_by(|a, b| b.joules.total_cmp(&a.joules).then(a.job.cmp(&b.job)));
    rows
}

/// The CPU-time half of the system summary.
fn cpu_summary(sample: &LedgerSample, fidelity: &Fidelity) -> SystemSummary {
    let mut packages: Vec<PackageTime> = sample
        .packages
        .iter()
        .map(|&package| PackageTime {
            package,
            ..PackageTime::default()
        })
        .collect();
    let (mut busy_ns, mut idle_ns) = (0u64, 0u64);
    for (cpu, time) in sample.cpus.iter().enumerate() {
        busy_ns += time.busy_ns;
        idle_ns += time.idle_ns;
        let package = sample.cpu_package.get(cpu).copied().unwrap_or(0);
        if let Some(row) = packages.get_mut(package) {
            row.cpu_seconds += ns_to_s(time.busy_ns);
            row.idle_seconds += ns_to_s(time.idle_ns);
        }
    }
    SystemSummary {
        cpu_seconds: ns_to_s(busy_ns),
        idle_seconds: ns_to_s(idle_ns),
        cpus: sample.cpus.len() as u32,
        packages,
        ledger: fidelity.label(),
        ledger_note: fidelity.note(),
        ledger_health: LedgerHealthJson {
            switches: sample.health.switches,
            flushes: sample.health.flushes,
            overflow_charges: sample.health.overflow_charges,
            dropped_slices: sample.health.dropped_slices,
            dropped_cpu_seconds: ns_to_s(sample.health.dropped_ns),
            lost_events: sample.health.lost_events,
            unowned_slices: sample.health.unowned_slices,
            ns_per_switch: sample.health.ns_per_switch,
        },
        ..SystemSummary::default()
    }
}

/// uid → user name, from a passwd file read once.
pub struct UserNames {
    names: HashMap<u32, String>,
}

impl UserNames {
    pub fn load(passwd: &Path) -> Self {
        let names = std::fs::read_to_string(passwd)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let uid = fields.nth(1)?.parse().ok()?;
                Some((uid, name.to_string()))
            })
            .collect();
        UserNames { names }
    }

    /// The user's name, or the uid as a number when it has none.
    pub fn name(&self, uid: u32) -> String {
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_activity_and_ledger_health_reach_the_json() {
        use crate::probes::{GpuCalls, ThreadSample};
        let calls = |ctx_switches, launches, sync_wait_ns, ioctls| GpuCalls {
            ctx_switches,
            launches,
            syncs: 1,
            sync_wait_ns,
            ioctls,
        };
        let threads = vec![
            ThreadSample {
                tid: 41,
                gpu: calls(2, 30, 250_000_000, 1),
                ..ThreadSample::default()
            },
            ThreadSample {
                tid: 42,
                gpu: calls(1, 10, 500_000_000, 0),
                ..ThreadSample::default()
            },
        ];
        let sample = LedgerSample {
            processes: vec![ProcessSample {
                tgid: 41,
                gpu: calls(3, 40, 750_000_000, 1),
                threads,
                ..ProcessSample::default()
            }],
            health: crate::probes::LedgerHealth {
                unowned_slices: 2,
                ..Default::default()
            },
            gpu: Some(GpuProbeStatus {
                mode: crate::probes::gpu::GpuProbeMode::Ctx,
                libraries: vec!["/usr/lib/libcuda.so.1 (9 entry points)".into()],
                ..GpuProbeStatus::default()
            }),
            ..LedgerSample::default()
        };
        let attribution = Attribution {
            gpu_split: vec![(0, "ebpf-launches")],
            ..Attribution::default()
        };
        let carbon = CarbonContext {
            g_per_kwh: 100.0,
            pue: 1.0,
            region: "FRA".into(),
            source: "table".into(),
            note: None,
        };
        let interval = build(BuildInput {
            sample: &sample,
            fidelity: &Fidelity::Procfs {
                reason: "test".into(),
            },
            energy: EnergySummary::default(),
            attribution: &attribution,
            policy: IdlePolicy::Exclude,
            carbon: &carbon,
            users: &UserNames::load(Path::new("/nonexistent")),
            jobs: &HashMap::new(),
            gpu_only: &[],
            threads: true,
        });
        let json = serde_json::to_value(&interval).unwrap();
        let process = &json["processes"][0];
        assert_eq!(
            (&process["gpu_ctx_switches"], &process["gpu_launches"]),
            (&serde_json::json!(3), &serde_json::json!(40))
        );
        assert_eq!(process["gpu_sync_wait_seconds"], 0.75);
        assert_eq!(process["gpu_ioctls"], 1);
        let thread = &process["threads"][1];
        assert_eq!(
            (thread["tid"].as_u64(), thread["gpu_launches"].as_u64()),
            (Some(42), Some(10))
        );
        assert_eq!(thread["gpu_sync_wait_seconds"], 0.5);
        let system = &json["system"];
        assert_eq!(system["ledger_health"]["unowned_slices"], 2);
        assert_eq!(
            system["gpu_split"],
            serde_json::json!([{"index": 0, "split_by": "ebpf-launches"}])
        );
        assert_eq!(system["gpu_probes"]["mode"], "ctx");
        assert_eq!(
            system["gpu_probes"]["ioctl_counter"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn passwd_names_users() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0:root:/root:/bin/bash\nbad line\nann:x:1000:1000::/home/ann:/bin/sh\n",
        )
        .unwrap();
        let users = UserNames::load(&passwd);
        assert_eq!(
            (users.name(0), users.name(1000), users.name(7)),
            ("root".into(), "ann".into(), "7".into())
        );
    }
}
