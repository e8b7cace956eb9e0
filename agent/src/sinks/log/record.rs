//! The log's records, as bincode 2 encodes them: plain wire types, separate from
//! `model::Interval` (bincode is not self-describing, so the model's optional JSON
//! fields cannot go through it). `convert.rs` maps between the two.
//!
//! Layout of each record: docs/log-format.md. Appending a field at the end of a
//! record or adding a record kind is a minor version; anything else a major one.
use bincode::{Decode, Encode};

pub use super::wire::{ProcRow, Secs, ThreadRow, ThreadsForm};
use crate::sinks::frame::Version;

/// The format this code writes.
pub const FORMAT_VERSION: Version = Version { major: 1, minor: 0 };

/// Record kinds are the first payload byte and stay below this (resync uses it).
pub const RECORD_KIND_LIMIT: u8 = 64;

/// Largest number of bytes one payload may make a decoder reserve.
pub const DECODE_LIMIT: usize = 64 << 20;

/// The bincode configuration of every payload: little endian, varints, bounded.
pub fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
> {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// One frame's payload.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum Record {
    /// Kind 0: first record of every segment.
    SegmentHeader(SegmentHeader),
    /// Kind 1: identity and names of a process, once per segment and on change.
    ProcessMeta(ProcessMeta),
    /// Kind 2: thread names that differ from their process's, interned.
    ThreadNames(ThreadNames),
    /// Kind 3: one tick.
    Interval(Box<IntervalRecord>),
}

#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct SegmentHeader {
    /// Position of the segment in its directory, counting from 1.
    pub seq: u64,
    pub created_unix_ms: u64,
    pub host: String,
    /// Version of the greentop that wrote the segment.
    pub writer_version: String,
    pub writer_pid: u32,
}

/// A process's identity and names. `id` is what interval rows refer to; when the
/// names change the writer gives the process a new id (a reader still lets a later
/// record with the same id replace the earlier one).
#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct ProcessMeta {
    pub id: u32,
    pub pid: u32,
    pub start_ns: u64,
    pub ppid: u32,
    pub comm: String,
    pub user: String,
    pub uid: u32,
    pub cgroup: String,
    pub job: Option<String>,
    /// Reserved for the command line (the model does not carry it yet).
    pub cmdline: Option<String>,
}

/// Names `first_id`, `first_id + 1`, … for thread rows.
#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct ThreadNames {
    pub first_id: u32,
    pub names: Vec<String>,
}

/// End of the interval: milliseconds since the epoch when the model's RFC 3339
/// text is exactly what formatting them gives back, else the text itself.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub enum Timestamp {
    UnixMillis(u64),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct IntervalRecord {
    pub ts: Timestamp,
    pub interval_s: f64,
    pub system: SystemRecord,
    /// Per package (index into `system.packages`): joules per on-CPU ns the rows'
    /// predicted energies use.
    pub rates: Vec<PackageRates>,
    /// In the model's order.
    pub processes: Vec<ProcRow>,
    /// Every process's thread rows, in order (`ThreadsForm::Rows(n)` takes n).
    pub threads: Vec<ThreadRow>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode)]
pub struct PackageRates {
    pub cpu_joules_per_ns: f64,
    pub dram_joules_per_ns: f64,
}

/// `model::SystemSummary`, field for field, except `jobs`: `None` when they are
/// what summing the processes by job gives.
#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct SystemRecord {
    pub cpu_seconds: f64,
    pub idle_seconds: f64,
    pub cpus: u32,
    pub packages: Vec<PackageTimeRecord>,
    pub ledger: String,
    pub ledger_note: Option<String>,
    pub ledger_health: LedgerHealthRecord,
    pub cpu_joules: f64,
    pub dram_joules: f64,
    pub gpu_joules: f64,
    pub cpu_source: String,
    pub gpu_source: String,
    pub energy: Vec<EnergyDomainRecord>,
    pub gpus: Vec<GpuRecord>,
    pub energy_notes: Vec<String>,
    pub idle_joules: f64,
    pub idle_policy: String,
    /// CPU, DRAM, GPU.
    pub balance: [BalanceRecord; 3],
    pub residual_joules: f64,
    pub region: String,
    pub intensity_g_per_kwh: f64,
    pub intensity_source: String,
    pub intensity_note: Option<String>,
    pub gco2: f64,
    pub jobs: Option<Vec<JobRecord>>,
    pub dram_source: String,
    pub platform_joules: f64,
    pub platform_source: String,
    pub counters: Vec<CounterRecord>,
    /// Power usage effectiveness applied to every gCO₂ figure.
    pub pue: f64,
    pub gpu_probes: Option<GpuProbesRecord>,
    pub gpu_split: Vec<GpuSplitRecord>,
}

/// `model::CounterJson`: one energy counter's trust in the interval.
#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct CounterRecord {
    pub name: String,
    pub kind: String,
    pub index: u32,
    pub source: String,
    pub trusted: bool,
    pub problem: Option<String>,
    pub note: Option<String>,
    pub change: Option<String>,
}

/// `model::GpuProbesJson`.
#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct GpuProbesRecord {
    pub mode: String,
    pub libraries: Vec<String>,
    pub ioctl_counter: Option<String>,
    pub notes: Vec<String>,
    pub dropped_hits: u64,
    pub untimed_syncs: u64,
}

/// `model::GpuSplitJson`.
#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct GpuSplitRecord {
    pub index: u32,
    pub split_by: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode)]
pub struct PackageTimeRecord {
    pub package: u32,
    pub cpu_seconds: f64,
    pub idle_seconds: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode)]
pub struct LedgerHealthRecord {
    pub switches: u64,
    pub flushes: u64,
    pub overflow_charges: u64,
    pub dropped_slices: u64,
    pub dropped_cpu_seconds: f64,
    pub lost_events: u64,
    pub unowned_slices: u64,
    pub ns_per_switch: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct EnergyDomainRecord {
    pub kind: String,
    pub index: u32,
    pub name: String,
    pub joules: f64,
    pub watts: f64,
    pub source: String,
    pub measured: bool,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct GpuRecord {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub joules: f64,
    pub power_w: Option<f64>,
    pub gpu_util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
    pub processes: Vec<GpuProcessRecord>,
    pub notes: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode)]
pub struct GpuProcessRecord {
    pub pid: u32,
    pub used_memory_bytes: Option<u64>,
    pub sm_util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Encode, Decode)]
pub struct BalanceRecord {
    pub measured_j: f64,
    pub attributed_j: f64,
    pub idle_j: f64,
    pub residual_j: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Encode, Decode)]
pub struct JobRecord {
    pub job: String,
    pub pids: Vec<u32>,
    pub cpu_seconds: f64,
    pub joules: f64,
    pub gco2: f64,
}

/// Appends `record` as one frame.
pub fn append(out: &mut Vec<u8>, record: &Record) -> Result<(), String> {
    let start = crate::sinks::frame::begin_frame(out);
    if let Err(e) = bincode::encode_into_std_write(record, out, config()) {
        out.truncate(start);
        return Err(e.to_string());
    }
    crate::sinks::frame::finish_frame(out, start).map_err(|e| e.to_string())
}

/// Decodes one payload. Bytes after the record (fields of a newer minor version)
/// are ignored.
pub fn decode(payload: &[u8]) -> Result<Record, bincode::error::DecodeError> {
    bincode::decode_from_slice(payload, config()).map(|(record, _)| record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_a_newer_minor_appends_to_a_record_are_ignored() {
        let record = Record::ThreadNames(ThreadNames {
            first_id: 3,
            names: vec!["worker".into()],
        });
        let mut payload = bincode::encode_to_vec(&record, config()).unwrap();
        payload.extend_from_slice(&[0xff, 0x00, 0x07]);
        assert_eq!(decode(&payload).unwrap(), record);
    }
}
