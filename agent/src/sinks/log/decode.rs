//! Records → `model::Interval` (the reader's side of a segment): the segment's
//! process metadata and thread names, and each row's values resolved (stored,
//! zero, sum or prediction). The mirror of `convert.rs`.
use super::convert::format_millis;
use super::predict::{self, Domain};
use super::record::{IntervalRecord, PackageRates, ProcessMeta, ThreadNames, Timestamp};
use super::system;
use super::wire::{Energy, GpuActivity, ProcRow, ThreadRow, ThreadsForm};
use crate::carbon::gco2;
use crate::model::{Interval, ProcessEnergy, ThreadEnergy};

/// Ids past the highest known by more than this are corrupt, not a gap.
const MAX_ID_GAP: usize = 1 << 16;

/// Comm of a process whose metadata record was lost to damage.
pub const LOST_META: &str = "(metadata lost)";

/// What the records of one segment have said so far.
#[derive(Debug, Default)]
pub struct SegmentState {
    metas: Vec<Option<ProcessMeta>>,
    thread_names: Vec<String>,
}

impl SegmentState {
    pub fn apply_meta(&mut self, meta: ProcessMeta) -> Result<(), String> {
        let id = meta.id as usize;
        if id >= self.metas.len() + MAX_ID_GAP {
            return Err(format!("process id {id} is far past the segment's"));
        }
        if id >= self.metas.len() {
            self.metas.resize(id + 1, None);
        }
        self.metas[id] = Some(meta);
        Ok(())
    }

    pub fn apply_names(&mut self, names: ThreadNames) -> Result<(), String> {
        let first = names.first_id as usize;
        if first > self.thread_names.len() + MAX_ID_GAP {
            return Err(format!("thread name id {first} is far past the segment's"));
        }
        self.thread_names.resize(first, "?".to_string());
        self.thread_names.extend(names.names);
        Ok(())
    }

    pub fn meta(&self, id: u32) -> Option<&ProcessMeta> {
        self.metas.get(id as usize)?.as_ref()
    }

    /// Number of process ids the segment has described (some may be lost).
    pub fn meta_slots(&self) -> usize {
        self.metas.len()
    }
}

/// A row's numbers, resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessValues {
    pub cpu_seconds: f64,
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    pub joules: f64,
    pub gco2: f64,
}

/// Each process row with its own thread rows. Yields an error (and stops) when a
/// row claims more thread rows than the record holds.
pub fn rows(
    record: &IntervalRecord,
) -> impl Iterator<Item = Result<(&ProcRow, &[ThreadRow]), String>> {
    let mut next = 0usize;
    let mut failed = false;
    record.processes.iter().map_while(move |row| {
        if failed {
            return None;
        }
        let n = match row.threads {
            ThreadsForm::Rows(n) => n as usize,
            _ => 0,
        };
        let Some(own) = record.threads.get(next..next.saturating_add(n)) else {
            failed = true;
            return Some(Err(format!(
                "a process row claims {n} thread rows past the {} stored",
                record.threads.len()
            )));
        };
        next += n;
        Some(Ok((row, own)))
    })
}

pub fn process_values(
    row: &ProcRow,
    threads: &[ThreadRow],
    rates: &[PackageRates],
    g_per_kwh: f64,
) -> Result<ProcessValues, String> {
    let own = matches!(row.threads, ThreadsForm::Rows(_)).then_some(threads);
    let resolve = |energy: Energy, domain| match energy {
        Energy::Value(v) => Ok(v),
        Energy::Zero => Ok(0.0),
        Energy::Predicted => {
            predict::process_energy(row.cpu, row.by_package.as_deref(), own, rates, domain)
                .ok_or_else(|| "a predicted energy without the rates to predict it".to_string())
        }
    };
    let cpu_joules = resolve(row.cpu_j, Domain::Cpu)?;
    let dram_joules = resolve(row.dram_j, Domain::Dram)?;
    let gpu_joules = row.gpu_j.unwrap_or(0.0);
    let joules = row.joules.unwrap_or(cpu_joules + dram_joules + gpu_joules);
    Ok(ProcessValues {
        cpu_seconds: row.cpu.seconds(),
        cpu_joules,
        dram_joules,
        gpu_joules,
        joules,
        gco2: row.gco2.unwrap_or_else(|| gco2(joules, g_per_kwh)),
    })
}

/// The interval's end as the model's RFC 3339 text.
pub fn ts_text(ts: &Timestamp) -> String {
    match ts {
        Timestamp::UnixMillis(ms) => format_millis(*ms),
        Timestamp::Text(text) => text.clone(),
    }
}

/// The model's Interval. `joules_total` and `gco2_total` are left at 0: they are
/// running sums the reader keeps (`reader.rs`), not stored.
pub fn to_interval(record: &IntervalRecord, state: &SegmentState) -> Result<Interval, String> {
    let g = record.system.intensity_g_per_kwh * record.system.pue;
    let lost = ProcessMeta {
        comm: LOST_META.to_string(),
        ..ProcessMeta::default()
    };
    let mut processes = Vec::with_capacity(record.processes.len());
    for item in rows(record) {
        let (row, own) = item?;
        let values = process_values(row, own, &record.rates, g)?;
        let meta = state.meta(row.meta).unwrap_or(&lost);
        let threads = match row.threads {
            ThreadsForm::None => None,
            ThreadsForm::Mirror => Some(vec![mirror_thread(row, meta, &values, g)]),
            ThreadsForm::Rows(_) => {
                let rate = predict::sole_package(row.by_package.as_deref())
                    .and_then(|i| record.rates.get(i));
                Some(
                    own.iter()
                        .map(|t| thread(t, meta, state, rate, g))
                        .collect::<Result<_, _>>()?,
                )
            }
        };
        let gpu = GpuCounts::of(row.gpu);
        processes.push(ProcessEnergy {
            pid: meta.pid,
            ppid: meta.ppid,
            comm: meta.comm.clone(),
            user: meta.user.clone(),
            uid: meta.uid,
            cgroup: meta.cgroup.clone(),
            job: meta.job.clone(),
            start_ns: meta.start_ns,
            cpu_seconds: values.cpu_seconds,
            cpu_seconds_by_package: match &row.by_package {
                None => vec![values.cpu_seconds],
                Some(list) => list.iter().map(|s| s.seconds()).collect(),
            },
            exited: row.exited,
            cpu_joules: values.cpu_joules,
            dram_joules: values.dram_joules,
            gpu_joules: values.gpu_joules,
            joules: values.joules,
            gco2: values.gco2,
            joules_total: 0.0,
            gco2_total: 0.0,
            threads,
            gpu_ctx_switches: gpu.ctx_switches,
            gpu_launches: gpu.launches,
            gpu_sync_wait_seconds: gpu.sync_wait_seconds,
            gpu_ioctls: gpu.ioctls,
        });
    }
    Ok(Interval {
        ts: ts_text(&record.ts),
        interval_s: record.interval_s,
        system: system::from_record(&record.system, &processes),
        processes,
    })
}

/// A row's GPU activity, zero where none was stored.
#[derive(Clone, Copy, Debug, Default)]
struct GpuCounts {
    ctx_switches: u64,
    launches: u64,
    sync_wait_seconds: f64,
    ioctls: u64,
}

impl GpuCounts {
    fn of(gpu: Option<GpuActivity>) -> GpuCounts {
        gpu.map_or_else(GpuCounts::default, |g| GpuCounts {
            ctx_switches: g.ctx_switches,
            launches: g.launches,
            sync_wait_seconds: g.sync_wait.seconds(),
            ioctls: g.ioctls,
        })
    }
}

fn mirror_thread(row: &ProcRow, meta: &ProcessMeta, v: &ProcessValues, g: f64) -> ThreadEnergy {
    let joules = v.cpu_joules + v.dram_joules;
    let gpu = GpuCounts::of(row.gpu);
    ThreadEnergy {
        tid: meta.pid,
        comm: meta.comm.clone(),
        cpu_seconds: v.cpu_seconds,
        exited: row.exited,
        joules,
        gco2: gco2(joules, g),
        gpu_ctx_switches: gpu.ctx_switches,
        gpu_launches: gpu.launches,
        gpu_sync_wait_seconds: gpu.sync_wait_seconds,
        gpu_ioctls: gpu.ioctls,
    }
}

fn thread(
    t: &ThreadRow,
    meta: &ProcessMeta,
    state: &SegmentState,
    rate: Option<&PackageRates>,
    g: f64,
) -> Result<ThreadEnergy, String> {
    let joules = match t.joules {
        Some(j) => j,
        None => predict::thread_joules(t.cpu, rate)
            .ok_or_else(|| "a predicted thread energy without its package's rates".to_string())?,
    };
    let gpu = GpuCounts::of(t.gpu);
    let comm = match t.comm {
        None => meta.comm.clone(),
        Some(id) => state
            .thread_names
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| "?".to_string()),
    };
    Ok(ThreadEnergy {
        tid: i64::from(meta.pid)
            .checked_add(t.tid_offset)
            .and_then(|tid| u32::try_from(tid).ok())
            .unwrap_or(0),
        comm,
        cpu_seconds: t.cpu.seconds(),
        exited: t.exited,
        joules,
        gco2: t.gco2.unwrap_or_else(|| gco2(joules, g)),
        gpu_ctx_switches: gpu.ctx_switches,
        gpu_launches: gpu.launches,
        gpu_sync_wait_seconds: gpu.sync_wait_seconds,
        gpu_ioctls: gpu.ioctls,
    })
}
