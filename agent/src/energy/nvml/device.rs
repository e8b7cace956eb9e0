//! One NVML device: its identity and baselines taken at open, and what each read asks
//! it. A lost device reports 0 with a note; any other failed call degrades one field.
use std::collections::HashSet;
use std::time::Duration;

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use super::energy::{ENERGY_CALL, interval_energy};
use super::{call_note, processes};
use crate::energy::{Domain, DomainEnergy, DomainKind, GpuDevice, Provenance, ReadKind};

const HANDLE_CALL: &str = "nvmlDeviceGetHandleByIndex_v2";
const UNKNOWN: &str = "unknown";

/// What the source remembers about one device between reads.
pub(super) struct DeviceState {
    index: u32,
    name: String,
    uuid: String,
    /// Why the energy counter was unusable at open; None when it worked.
    counter_problem: Option<String>,
    /// Accounting mode as last seen; None when the call failed.
    accounting: Option<bool>,
    baseline_mj: Option<u64>,
    /// Timestamp (µs) of the newest utilisation sample already counted.
    last_sample_ts: u64,
    /// Ended pids whose accounting stats were already reported.
    reported_ended: HashSet<u32>,
}

impl DeviceState {
    /// Identity, the energy baseline, and the samples and ended processes that predate
    /// this source (they belong to no interval of ours). Never fails: what cannot be
    /// read stays unknown.
    pub(super) fn open(nvml: &Nvml, index: u32) -> DeviceState {
        let mut state = DeviceState {
            index,
            name: UNKNOWN.to_string(),
            uuid: UNKNOWN.to_string(),
            counter_problem: None,
            accounting: None,
            baseline_mj: None,
            last_sample_ts: 0,
            reported_ended: HashSet::new(),
        };
        let device = match nvml.device_by_index(index) {
            Ok(device) => device,
            Err(err) => {
                state.counter_problem = Some(call_note(HANDLE_CALL, &err));
                return state;
            }
        };
        state.name = device.name().unwrap_or_else(|_| UNKNOWN.to_string());
        state.uuid = device.uuid().unwrap_or_else(|_| UNKNOWN.to_string());
        match device.total_energy_consumption() {
            Ok(mj) => state.baseline_mj = Some(mj),
            Err(err) => state.counter_problem = Some(call_note(ENERGY_CALL, &err)),
        }
        let mut ignored = Vec::new();
        processes::utilization_by_pid(&device, &mut state.last_sample_ts, &mut ignored);
        state.accounting = device.is_accounting_enabled().ok();
        if state.accounting == Some(true) {
            processes::ended(&device, None, &mut state.reported_ended, &mut ignored);
        }
        state
    }

    /// `GPU 0 NVIDIA H100 (GPU-…): energy counter yes, accounting off`.
    pub(super) fn describe(&self) -> String {
        let counter = match &self.counter_problem {
            None => "yes".to_string(),
            Some(problem) => format!("no ({problem})"),
        };
        let accounting = match self.accounting {
            Some(true) => "on",
            Some(false) => "off",
            None => "unknown",
        };
        format!(
            "{}: energy counter {counter}, accounting {accounting}",
            self.domain_name()
        )
    }

    /// This device's energy since the previous read and its details now.
    pub(super) fn read(&mut self, nvml: &Nvml, elapsed: Duration) -> (DomainEnergy, GpuDevice) {
        let mut gpu = GpuDevice {
            index: self.index,
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            ..GpuDevice::default()
        };
        let device = match nvml.device_by_index(self.index) {
            Ok(device) => device,
            Err(err) => return self.unusable(gpu, call_note(HANDLE_CALL, &err)),
        };
        let counter = device.total_energy_consumption();
        if let Err(err @ NvmlError::GpuLost) = &counter {
            return self.unusable(gpu, format!("GPU lost: {}", call_note(ENERGY_CALL, err)));
        }
        gpu.power_mw = field(
            device.power_usage(),
            "nvmlDeviceGetPowerUsage",
            &mut gpu.notes,
        );
        let interval = interval_energy(self.baseline_mj, &counter, gpu.power_mw, elapsed);
        self.baseline_mj = interval.baseline_mj;
        self.details(&device, &mut gpu);
        let domain = DomainEnergy {
            note: interval.note,
            ..DomainEnergy::counted(self.domain(), interval.energy_uj, interval.provenance)
        };
        (domain, gpu)
    }

    /// Utilisation, processes and ended processes, each degrading on its own.
    fn details(&mut self, device: &Device<'_>, gpu: &mut GpuDevice) {
        let notes = &mut gpu.notes;
        if let Some(rates) = field(
            device.utilization_rates(),
            "nvmlDeviceGetUtilizationRates",
            notes,
        ) {
            gpu.gpu_util_pct = Some(rates.gpu);
            gpu.mem_util_pct = Some(rates.memory);
        }
        let running = processes::running(device, notes);
        let util = processes::utilization_by_pid(device, &mut self.last_sample_ts, notes);
        self.accounting = field(
            device.is_accounting_enabled(),
            "nvmlDeviceGetAccountingMode",
            notes,
        );
        if self.accounting == Some(true) {
            gpu.ended =
                processes::ended(device, running.as_deref(), &mut self.reported_ended, notes);
        }
        gpu.processes = processes::merge(running.unwrap_or_default(), util);
    }

    /// A device that cannot be asked anything this interval: 0 and a note; the
    /// baseline stays, so a counter that survives is caught up on the next read.
    fn unusable(&self, mut gpu: GpuDevice, note: String) -> (DomainEnergy, GpuDevice) {
        gpu.notes.push(note.clone());
        let provenance = match self.counter_problem {
            None => Provenance::NvmlEnergy,
            Some(_) => Provenance::NvmlPower,
        };
        let domain = DomainEnergy {
            note: Some(format!("{note}: 0 for this interval")),
            read: ReadKind::Failed,
            ..DomainEnergy::counted(self.domain(), 0, provenance)
        };
        (domain, gpu)
    }

    fn domain(&self) -> Domain {
        Domain {
            kind: DomainKind::Gpu,
            index: self.index,
            name: self.domain_name(),
        }
    }

    fn domain_name(&self) -> String {
        format!("GPU {} {} ({})", self.index, self.name, self.uuid)
    }
}

/// The value of one call, or None and a note naming the call.
fn field<T>(result: Result<T, NvmlError>, call: &str, notes: &mut Vec<String>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            notes.push(call_note(call, &err));
            None
        }
    }
}
