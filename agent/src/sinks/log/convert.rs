//! `model::Interval` → records (the writer's side of a segment). The one place the
//! model's process and thread fields are mapped to the log's; `decode.rs` is its
//! mirror. A new model field goes into both and into `record.rs`.
use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use super::predict::{self, Domain};
use super::record::{
    self, IntervalRecord, PackageRates, ProcessMeta, Record, SegmentHeader, ThreadNames, Timestamp,
};
use super::system;
use super::wire::{Energy, GpuActivity, ProcRow, Secs, ThreadRow, ThreadsForm};
use crate::carbon::gco2;
use crate::model::{Interval, ProcessEnergy, ThreadEnergy};

/// A whole segment in memory: preamble, `header`, then `intervals` (as a writer
/// would write them, without its file handling).
pub fn encode_segment(header: SegmentHeader, intervals: &[Interval]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    crate::sinks::frame::write_preamble(&mut out, record::FORMAT_VERSION);
    record::append(&mut out, &Record::SegmentHeader(header))?;
    let mut encoder = Encoder::default();
    for interval in intervals {
        encoder.encode(interval, &mut out)?;
    }
    Ok(out)
}

/// What a segment has said so far: process ids and their metadata, thread names.
#[derive(Default)]
pub struct Encoder {
    processes: HashMap<(u32, u64), ProcessMeta>,
    next_id: u32,
    thread_names: HashMap<String, u32>,
    name_count: u32,
}

impl Encoder {
    /// Appends the frames for `interval` to `out`: changed metadata, new thread
    /// names, then the interval.
    pub fn encode(&mut self, interval: &Interval, out: &mut Vec<u8>) -> Result<(), String> {
        let g_per_kwh = grams_per_kwh(&interval.system);
        let rates = predict::infer_rates(interval);
        let mut rows = Vec::with_capacity(interval.processes.len());
        let mut threads = Vec::new();
        let mut names = ThreadNames {
            first_id: self.name_count,
            names: Vec::new(),
        };
        for p in &interval.processes {
            let meta = self.meta_id(p, out)?;
            let first_thread = threads.len();
            let form = self.thread_rows(p, &rates, g_per_kwh, &mut threads, &mut names);
            let own = match form {
                ThreadsForm::Rows(_) => Some(&threads[first_thread..]),
                _ => None,
            };
            rows.push(process_row(p, meta, form, own, &rates, g_per_kwh));
        }
        if !names.names.is_empty() {
            record::append(out, &Record::ThreadNames(names))?;
        }
        let record = IntervalRecord {
            ts: timestamp(&interval.ts),
            interval_s: interval.interval_s,
            system: system::to_record(&interval.system, &interval.processes),
            rates,
            processes: rows,
            threads,
        };
        record::append(out, &Record::Interval(Box::new(record)))?;
        for p in interval.processes.iter().filter(|p| p.exited) {
            self.processes.remove(&(p.pid, p.start_ns));
        }
        Ok(())
    }

    /// The process's id in this segment; writes its metadata when new or changed.
    fn meta_id(&mut self, p: &ProcessEnergy, out: &mut Vec<u8>) -> Result<u32, String> {
        let key = (p.pid, p.start_ns);
        if let Some(known) = self.processes.get(&key)
            && same_meta(known, p)
        {
            return Ok(known.id);
        }
        // A change gets a fresh id: rows written before it keep the old names.
        let id = self.next_id;
        self.next_id += 1;
        let meta = ProcessMeta {
            id,
            pid: p.pid,
            start_ns: p.start_ns,
            ppid: p.ppid,
            comm: p.comm.clone(),
            user: p.user.clone(),
            uid: p.uid,
            cgroup: p.cgroup.clone(),
            job: p.job.clone(),
            cmdline: None,
        };
        record::append(out, &Record::ProcessMeta(meta.clone()))?;
        self.processes.insert(key, meta);
        Ok(id)
    }

    fn thread_rows(
        &mut self,
        p: &ProcessEnergy,
        rates: &[PackageRates],
        g_per_kwh: f64,
        rows: &mut Vec<ThreadRow>,
        names: &mut ThreadNames,
    ) -> ThreadsForm {
        let Some(threads) = &p.threads else {
            return ThreadsForm::None;
        };
        if let [only] = threads.as_slice()
            && is_mirror(p, only, g_per_kwh)
        {
            return ThreadsForm::Mirror;
        }
        let by_package: Vec<Secs> = p
            .cpu_seconds_by_package
            .iter()
            .map(|s| Secs::from_seconds(*s))
            .collect();
        let rate = predict::sole_package(Some(&by_package)).and_then(|i| rates.get(i));
        for t in threads {
            let cpu = Secs::from_seconds(t.cpu_seconds);
            let comm = (t.comm != p.comm).then(|| self.name_id(&t.comm, names));
            let predicted = predict::thread_joules(cpu, rate);
            rows.push(ThreadRow {
                tid_offset: i64::from(t.tid) - i64::from(p.pid),
                exited: t.exited,
                cpu,
                comm,
                joules: stored_unless(t.joules, predicted),
                gco2: stored_unless(t.gco2, Some(gco2(t.joules, g_per_kwh))),
                gpu: gpu_activity(
                    t.gpu_ctx_switches,
                    t.gpu_launches,
                    t.gpu_sync_wait_seconds,
                    t.gpu_ioctls,
                ),
            });
        }
        ThreadsForm::Rows(threads.len() as u32)
    }

    fn name_id(&mut self, name: &str, names: &mut ThreadNames) -> u32 {
        if let Some(id) = self.thread_names.get(name) {
            return *id;
        }
        let id = self.name_count;
        self.name_count += 1;
        self.thread_names.insert(name.to_string(), id);
        names.names.push(name.to_string());
        id
    }
}

fn same_meta(known: &ProcessMeta, p: &ProcessEnergy) -> bool {
    known.ppid == p.ppid
        && known.uid == p.uid
        && known.comm == p.comm
        && known.user == p.user
        && known.cgroup == p.cgroup
        && known.job == p.job
}

/// One thread that `decode.rs` can rebuild from its process alone.
fn is_mirror(p: &ProcessEnergy, t: &ThreadEnergy, g_per_kwh: f64) -> bool {
    let joules = p.cpu_joules + p.dram_joules;
    t.tid == p.pid
        && t.exited == p.exited
        && t.comm == p.comm
        && same(t.cpu_seconds, p.cpu_seconds)
        && same(t.joules, joules)
        && same(t.gco2, gco2(joules, g_per_kwh))
        && (t.gpu_ctx_switches, t.gpu_launches, t.gpu_ioctls)
            == (p.gpu_ctx_switches, p.gpu_launches, p.gpu_ioctls)
        && same(t.gpu_sync_wait_seconds, p.gpu_sync_wait_seconds)
}

fn process_row(
    p: &ProcessEnergy,
    meta: u32,
    threads: ThreadsForm,
    thread_rows: Option<&[ThreadRow]>,
    rates: &[PackageRates],
    g_per_kwh: f64,
) -> ProcRow {
    let cpu = Secs::from_seconds(p.cpu_seconds);
    let by_package = match p.cpu_seconds_by_package.as_slice() {
        [only] if same(*only, p.cpu_seconds) => None,
        list => Some(list.iter().map(|s| Secs::from_seconds(*s)).collect()),
    };
    let predict =
        |domain| predict::process_energy(cpu, by_package.as_deref(), thread_rows, rates, domain);
    let cpu_j = match predict(Domain::Cpu) {
        Some(v) if same(v, p.cpu_joules) => Energy::Predicted,
        _ if same(p.cpu_joules, 0.0) => Energy::Zero,
        _ => Energy::Value(p.cpu_joules),
    };
    let dram_j = match predict(Domain::Dram) {
        _ if same(p.dram_joules, 0.0) => Energy::Zero,
        Some(v) if same(v, p.dram_joules) => Energy::Predicted,
        _ => Energy::Value(p.dram_joules),
    };
    let sum = p.cpu_joules + p.dram_joules + p.gpu_joules;
    ProcRow {
        meta,
        exited: p.exited,
        cpu,
        by_package,
        cpu_j,
        dram_j,
        gpu_j: stored_unless(p.gpu_joules, Some(0.0)),
        joules: stored_unless(p.joules, Some(sum)),
        gco2: stored_unless(p.gco2, Some(gco2(p.joules, g_per_kwh))),
        threads,
        gpu: gpu_activity(
            p.gpu_ctx_switches,
            p.gpu_launches,
            p.gpu_sync_wait_seconds,
            p.gpu_ioctls,
        ),
    }
}

/// The grams per kWh every row's gCO₂ uses: the intensity with the PUE applied, the
/// same product `interval.rs` takes, so derived values come back bit for bit.
pub(super) fn grams_per_kwh(s: &crate::model::SystemSummary) -> f64 {
    s.intensity_g_per_kwh * s.pue
}

/// `None` when the probes saw nothing (the usual row).
fn gpu_activity(
    ctx_switches: u64,
    launches: u64,
    sync_wait_s: f64,
    ioctls: u64,
) -> Option<GpuActivity> {
    let idle = ctx_switches == 0 && launches == 0 && ioctls == 0 && same(sync_wait_s, 0.0);
    (!idle).then(|| GpuActivity {
        ctx_switches,
        launches,
        sync_wait: Secs::from_seconds(sync_wait_s),
        ioctls,
    })
}

/// `None` when `derived` gives exactly `value`.
fn stored_unless(value: f64, derived: Option<f64>) -> Option<f64> {
    match derived {
        Some(d) if same(d, value) => None,
        _ => Some(value),
    }
}

/// Bit-for-bit equality: -0.0 is not 0.0, and a NaN equals its own bits.
pub(super) fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

fn timestamp(ts: &str) -> Timestamp {
    let millis = humantime::parse_rfc3339(ts)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    match millis {
        Some(ms) if format_millis(ms) == ts => Timestamp::UnixMillis(ms),
        _ => Timestamp::Text(ts.to_string()),
    }
}

/// The model's text for a time in ms since the epoch.
pub(super) fn format_millis(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
