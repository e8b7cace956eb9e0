//! `model::SystemSummary` ⇄ `record::SystemRecord`: field for field, except the
//! per-job rows, which are left out when summing the processes gives them back.
use super::record::{
    BalanceRecord, CounterRecord, EnergyDomainRecord, GpuProbesRecord, GpuProcessRecord, GpuRecord,
    GpuSplitRecord, JobRecord, LedgerHealthRecord, PackageTimeRecord, SystemRecord,
};
use crate::interval::job_rows;
use crate::model::Balance;
use crate::model::{
    BalanceJson, CounterJson, EnergyDomainJson, GpuJson, GpuProbesJson, GpuProcessJson,
    GpuSplitJson, JobEnergy, LedgerHealthJson, PackageTime, ProcessEnergy, SystemSummary,
};

pub fn to_record(s: &SystemSummary, processes: &[ProcessEnergy]) -> SystemRecord {
    let h = &s.ledger_health;
    SystemRecord {
        cpu_seconds: s.cpu_seconds,
        idle_seconds: s.idle_seconds,
        cpus: s.cpus,
        packages: s
            .packages
            .iter()
            .map(|p| PackageTimeRecord {
                package: p.package,
                cpu_seconds: p.cpu_seconds,
                idle_seconds: p.idle_seconds,
            })
            .collect(),
        ledger: s.ledger.clone(),
        ledger_note: s.ledger_note.clone(),
        ledger_health: LedgerHealthRecord {
            switches: h.switches,
            flushes: h.flushes,
            overflow_charges: h.overflow_charges,
            dropped_slices: h.dropped_slices,
            dropped_cpu_seconds: h.dropped_cpu_seconds,
            lost_events: h.lost_events,
            unowned_slices: h.unowned_slices,
            ns_per_switch: h.ns_per_switch,
        },
        cpu_joules: s.cpu_joules,
        dram_joules: s.dram_joules,
        gpu_joules: s.gpu_joules,
        cpu_source: s.cpu_source.clone(),
        gpu_source: s.gpu_source.clone(),
        energy: s.energy.iter().map(domain_record).collect(),
        gpus: s.gpus.iter().map(gpu_record).collect(),
        energy_notes: s.energy_notes.clone(),
        idle_joules: s.idle_joules,
        idle_policy: s.idle_policy.clone(),
        balance: [s.balance.cpu, s.balance.dram, s.balance.gpu].map(|b| BalanceRecord {
            measured_j: b.measured_j,
            attributed_j: b.attributed_j,
            idle_j: b.idle_j,
            residual_j: b.residual_j,
        }),
        residual_joules: s.balance.residual_joules,
        region: s.region.clone(),
        intensity_g_per_kwh: s.intensity_g_per_kwh,
        intensity_source: s.intensity_source.clone(),
        intensity_note: s.intensity_note.clone(),
        gco2: s.gco2,
        jobs: (job_rows(processes) != s.jobs).then(|| {
            s.jobs
                .iter()
                .map(|j| JobRecord {
                    job: j.job.clone(),
                    pids: j.pids.clone(),
                    cpu_seconds: j.cpu_seconds,
                    joules: j.joules,
                    gco2: j.gco2,
                })
                .collect()
        }),
        dram_source: s.dram_source.clone(),
        platform_joules: s.platform_joules,
        platform_source: s.platform_source.clone(),
        counters: s.counters.iter().map(counter_record).collect(),
        pue: s.pue,
        gpu_probes: s.gpu_probes.as_ref().map(|g| GpuProbesRecord {
            mode: g.mode.clone(),
            libraries: g.libraries.clone(),
            ioctl_counter: g.ioctl_counter.clone(),
            notes: g.notes.clone(),
            dropped_hits: g.dropped_hits,
            untimed_syncs: g.untimed_syncs,
        }),
        gpu_split: s
            .gpu_split
            .iter()
            .map(|g| GpuSplitRecord {
                index: g.index,
                split_by: g.split_by.clone(),
            })
            .collect(),
    }
}

pub fn from_record(r: &SystemRecord, processes: &[ProcessEnergy]) -> SystemSummary {
    let h = &r.ledger_health;
    let [cpu, dram, gpu] = r.balance.map(|b| Balance {
        measured_j: b.measured_j,
        attributed_j: b.attributed_j,
        idle_j: b.idle_j,
        residual_j: b.residual_j,
    });
    SystemSummary {
        cpu_seconds: r.cpu_seconds,
        idle_seconds: r.idle_seconds,
        cpus: r.cpus,
        packages: r
            .packages
            .iter()
            .map(|p| PackageTime {
                package: p.package,
                cpu_seconds: p.cpu_seconds,
                idle_seconds: p.idle_seconds,
            })
            .collect(),
        ledger: r.ledger.clone(),
        ledger_note: r.ledger_note.clone(),
        ledger_health: LedgerHealthJson {
            switches: h.switches,
            flushes: h.flushes,
            overflow_charges: h.overflow_charges,
            dropped_slices: h.dropped_slices,
            dropped_cpu_seconds: h.dropped_cpu_seconds,
            lost_events: h.lost_events,
            unowned_slices: h.unowned_slices,
            ns_per_switch: h.ns_per_switch,
        },
        cpu_joules: r.cpu_joules,
        dram_joules: r.dram_joules,
        gpu_joules: r.gpu_joules,
        cpu_source: r.cpu_source.clone(),
        gpu_source: r.gpu_source.clone(),
        energy: r.energy.iter().map(domain_json).collect(),
        gpus: r.gpus.iter().map(gpu_json).collect(),
        energy_notes: r.energy_notes.clone(),
        idle_joules: r.idle_joules,
        idle_policy: r.idle_policy.clone(),
        balance: BalanceJson {
            cpu,
            dram,
            gpu,
            residual_joules: r.residual_joules,
        },
        region: r.region.clone(),
        intensity_g_per_kwh: r.intensity_g_per_kwh,
        intensity_source: r.intensity_source.clone(),
        intensity_note: r.intensity_note.clone(),
        gco2: r.gco2,
        jobs: match &r.jobs {
            None => job_rows(processes),
            Some(jobs) => jobs
                .iter()
                .map(|j| JobEnergy {
                    job: j.job.clone(),
                    pids: j.pids.clone(),
                    cpu_seconds: j.cpu_seconds,
                    joules: j.joules,
                    gco2: j.gco2,
                })
                .collect(),
        },
        dram_source: r.dram_source.clone(),
        platform_joules: r.platform_joules,
        platform_source: r.platform_source.clone(),
        counters: r.counters.iter().map(counter_json).collect(),
        pue: r.pue,
        gpu_probes: r.gpu_probes.as_ref().map(|g| GpuProbesJson {
            mode: g.mode.clone(),
            libraries: g.libraries.clone(),
            ioctl_counter: g.ioctl_counter.clone(),
            notes: g.notes.clone(),
            dropped_hits: g.dropped_hits,
            untimed_syncs: g.untimed_syncs,
        }),
        gpu_split: r
            .gpu_split
            .iter()
            .map(|g| GpuSplitJson {
                index: g.index,
                split_by: g.split_by.clone(),
            })
            .collect(),
        // Live-only: what the agent's outputs lost is not part of the record.
        sinks: Vec::new(),
    }
}

fn counter_record(c: &CounterJson) -> CounterRecord {
    CounterRecord {
        name: c.name.clone(),
        kind: c.kind.clone(),
        index: c.index,
        source: c.source.clone(),
        trusted: c.trusted,
        problem: c.problem.clone(),
        note: c.note.clone(),
        change: c.change.clone(),
    }
}

fn counter_json(c: &CounterRecord) -> CounterJson {
    CounterJson {
        name: c.name.clone(),
        kind: c.kind.clone(),
        index: c.index,
        source: c.source.clone(),
        trusted: c.trusted,
        problem: c.problem.clone(),
        note: c.note.clone(),
        change: c.change.clone(),
    }
}

fn domain_record(d: &EnergyDomainJson) -> EnergyDomainRecord {
    EnergyDomainRecord {
        kind: d.kind.clone(),
        index: d.index,
        name: d.name.clone(),
        joules: d.joules,
        watts: d.watts,
        source: d.source.clone(),
        measured: d.measured,
        note: d.note.clone(),
    }
}

fn domain_json(d: &EnergyDomainRecord) -> EnergyDomainJson {
    EnergyDomainJson {
        kind: d.kind.clone(),
        index: d.index,
        name: d.name.clone(),
        joules: d.joules,
        watts: d.watts,
        source: d.source.clone(),
        measured: d.measured,
        note: d.note.clone(),
    }
}

fn gpu_record(g: &GpuJson) -> GpuRecord {
    GpuRecord {
        index: g.index,
        name: g.name.clone(),
        uuid: g.uuid.clone(),
        joules: g.joules,
        power_w: g.power_w,
        gpu_util_pct: g.gpu_util_pct,
        mem_util_pct: g.mem_util_pct,
        processes: g
            .processes
            .iter()
            .map(|p| GpuProcessRecord {
                pid: p.pid,
                used_memory_bytes: p.used_memory_bytes,
                sm_util_pct: p.sm_util_pct,
                mem_util_pct: p.mem_util_pct,
                gpu_instance_id: p.gpu_instance_id,
                compute_instance_id: p.compute_instance_id,
            })
            .collect(),
        notes: g.notes.clone(),
    }
}

fn gpu_json(g: &GpuRecord) -> GpuJson {
    GpuJson {
        index: g.index,
        name: g.name.clone(),
        uuid: g.uuid.clone(),
        joules: g.joules,
        power_w: g.power_w,
        gpu_util_pct: g.gpu_util_pct,
        mem_util_pct: g.mem_util_pct,
        processes: g
            .processes
            .iter()
            .map(|p| GpuProcessJson {
                pid: p.pid,
                used_memory_bytes: p.used_memory_bytes,
                sm_util_pct: p.sm_util_pct,
                mem_util_pct: p.mem_util_pct,
                gpu_instance_id: p.gpu_instance_id,
                compute_instance_id: p.compute_instance_id,
            })
            .collect(),
        notes: g.notes.clone(),
    }
}
