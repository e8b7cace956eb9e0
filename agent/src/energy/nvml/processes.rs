//! A GPU's processes: who holds a compute context (with MIG ids and memory), their
//! utilisation samples since the previous read averaged per pid, and the accounting
//! stats of those that ended, each reported once.
use std::collections::{BTreeMap, HashSet};

use nvml_wrapper::Device;
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::{
    AccountingStats, ProcessInfo, ProcessUtilizationSample,
};

use super::call_note;
use crate::energy::{GpuAccounting, GpuProcess};

/// The processes holding a compute context now; None (and a note) when the call fails.
pub(super) fn running(device: &Device<'_>, notes: &mut Vec<String>) -> Option<Vec<GpuProcess>> {
    match device.running_compute_processes() {
        Ok(list) => Some(list.into_iter().map(to_process).collect()),
        Err(err) => {
            notes.push(call_note("nvmlDeviceGetComputeRunningProcesses_v3", &err));
            None
        }
    }
}

fn to_process(info: ProcessInfo) -> GpuProcess {
    GpuProcess {
        pid: info.pid,
        used_memory_bytes: match info.used_gpu_memory {
            UsedGpuMemory::Used(bytes) => Some(bytes),
            UsedGpuMemory::Unavailable => None,
        },
        gpu_instance_id: info.gpu_instance_id,
        compute_instance_id: info.compute_instance_id,
        ..GpuProcess::default()
    }
}

/// Mean utilisation (%) of one pid over an interval's samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct MeanUtil {
    pub sm: u32,
    pub mem: u32,
    pub enc: u32,
    pub dec: u32,
}

/// Samples newer than `last_ts`, averaged per pid; moves `last_ts` to the newest.
pub(super) fn utilization_by_pid(
    device: &Device<'_>,
    last_ts: &mut u64,
    notes: &mut Vec<String>,
) -> BTreeMap<u32, MeanUtil> {
    match device.process_utilization_stats(*last_ts) {
        Ok(samples) => mean_by_pid(&samples, last_ts),
        // The driver's answer when no process had a sample since `last_ts`.
        Err(NvmlError::NotFound) => BTreeMap::new(),
        Err(err) => {
            notes.push(call_note("nvmlDeviceGetProcessUtilization", &err));
            BTreeMap::new()
        }
    }
}

/// Rounded means per pid of the samples after `last_ts` (older ones are ignored even
/// if the driver returns them); moves `last_ts` to the newest sample.
pub(super) fn mean_by_pid(
    samples: &[ProcessUtilizationSample],
    last_ts: &mut u64,
) -> BTreeMap<u32, MeanUtil> {
    let since = *last_ts;
    // pid → [count, sm, mem, enc, dec]
    let mut sums: BTreeMap<u32, [u64; 5]> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.timestamp > since) {
        *last_ts = (*last_ts).max(sample.timestamp);
        let sum = sums.entry(sample.pid).or_default();
        let values = [
            1,
            sample.sm_util,
            sample.mem_util,
            sample.enc_util,
            sample.dec_util,
        ];
        for (acc, value) in sum.iter_mut().zip(values) {
            *acc += u64::from(value);
        }
    }
    sums.into_iter()
        .map(|(pid, [n, sm, mem, enc, dec])| {
            // n ≥ 1: an entry exists only once a sample was added.
            let mean = |total: u64| u32::try_from((total + n / 2) / n).unwrap_or(u32::MAX);
            let util = MeanUtil {
                sm: mean(sm),
                mem: mean(mem),
                enc: mean(enc),
                dec: mean(dec),
            };
            (pid, util)
        })
        .collect()
}

/// Puts the utilisation on the running processes; pids with samples but no compute
/// context (graphics, or ended this interval) are appended so their use is not lost.
pub(super) fn merge(
    mut processes: Vec<GpuProcess>,
    util: BTreeMap<u32, MeanUtil>,
) -> Vec<GpuProcess> {
    for process in &mut processes {
        if let Some(mean) = util.get(&process.pid) {
            apply(process, *mean);
        }
    }
    let running: HashSet<u32> = processes.iter().map(|p| p.pid).collect();
    for (pid, mean) in util.into_iter().filter(|(pid, _)| !running.contains(pid)) {
        let mut process = GpuProcess {
            pid,
            ..GpuProcess::default()
        };
        apply(&mut process, mean);
        processes.push(process);
    }
    processes
}

fn apply(process: &mut GpuProcess, mean: MeanUtil) {
    process.sm_util_pct = Some(mean.sm);
    process.mem_util_pct = Some(mean.mem);
    process.enc_util_pct = Some(mean.enc);
    process.dec_util_pct = Some(mean.dec);
}

/// Accounting stats of processes that ended and were not reported yet. `reported`
/// remembers them; a pid seen running again (reused) or gone from the driver's
/// buffer is forgotten, which also bounds the set.
pub(super) fn ended(
    device: &Device<'_>,
    running: Option<&[GpuProcess]>,
    reported: &mut HashSet<u32>,
    notes: &mut Vec<String>,
) -> Vec<GpuAccounting> {
    let pids = match device.accounting_pids() {
        Ok(pids) => pids,
        Err(err) => {
            notes.push(call_note("nvmlDeviceGetAccountingPids", &err));
            return Vec::new();
        }
    };
    let running: HashSet<u32> = running.unwrap_or_default().iter().map(|p| p.pid).collect();
    let listed: HashSet<u32> = pids.iter().copied().collect();
    reported.retain(|pid| listed.contains(pid) && !running.contains(pid));
    let mut ended = Vec::new();
    for pid in pids {
        if running.contains(&pid) || reported.contains(&pid) {
            continue;
        }
        match device.accounting_stats_for(pid) {
            Ok(stats) if stats.is_running => {}
            Ok(stats) => {
                reported.insert(pid);
                ended.push(to_accounting(pid, &stats));
            }
            // Overwritten in the driver's circular buffer since the pid list was read.
            Err(NvmlError::NotFound) => {}
            Err(err) => notes.push(call_note(
                &format!("nvmlDeviceGetAccountingStats(pid {pid})"),
                &err,
            )),
        }
    }
    ended
}

fn to_accounting(pid: u32, stats: &AccountingStats) -> GpuAccounting {
    GpuAccounting {
        pid,
        gpu_util_pct: stats.gpu_utilization.unwrap_or(0),
        mem_util_pct: stats.memory_utilization.unwrap_or(0),
        max_memory_bytes: stats.max_memory_usage.unwrap_or(0),
        time_ms: stats.time,
        is_running: stats.is_running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32, timestamp: u64, sm: u32, mem: u32) -> ProcessUtilizationSample {
        ProcessUtilizationSample {
            pid,
            timestamp,
            sm_util: sm,
            mem_util: mem,
            enc_util: 0,
            dec_util: 1,
        }
    }

    fn util(sm: u32, mem: u32, dec: u32) -> MeanUtil {
        MeanUtil {
            sm,
            mem,
            enc: 0,
            dec,
        }
    }

    #[test]
    fn means_per_pid_of_new_samples() {
        // (samples, last_ts before, want, last_ts after)
        let cases = [
            (vec![], 0, vec![], 0),
            (
                vec![
                    sample(1, 10, 80, 30),
                    sample(1, 20, 60, 10),
                    sample(2, 15, 5, 5),
                ],
                0,
                vec![(1, util(70, 20, 1)), (2, util(5, 5, 1))],
                20,
            ),
            (
                vec![sample(1, 10, 80, 30), sample(1, 30, 11, 2)],
                10,
                vec![(1, util(11, 2, 1))],
                30,
            ),
            (vec![sample(7, 5, 1, 1)], 5, vec![], 5),
            (
                vec![sample(3, 1, 1, 0), sample(3, 2, 2, 0)],
                0,
                vec![(3, util(2, 0, 1))],
                2,
            ),
        ];
        for (samples, before, want, after) in cases {
            let mut last_ts = before;
            let got: Vec<_> = mean_by_pid(&samples, &mut last_ts).into_iter().collect();
            assert_eq!(got, want, "{samples:?}");
            assert_eq!(last_ts, after, "{samples:?}");
        }
    }

    #[test]
    fn merge_puts_util_on_running_and_appends_the_rest() {
        let running = vec![
            GpuProcess {
                pid: 1,
                used_memory_bytes: Some(10),
                ..GpuProcess::default()
            },
            GpuProcess {
                pid: 2,
                ..GpuProcess::default()
            },
        ];
        let util_map = BTreeMap::from([(1, util(50, 5, 0)), (9, util(7, 7, 0))]);
        let merged = merge(running, util_map);
        let got: Vec<_> = merged
            .iter()
            .map(|p| (p.pid, p.used_memory_bytes, p.sm_util_pct, p.mem_util_pct))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Some(10), Some(50), Some(5)),
                (2, None, None, None),
                (9, None, Some(7), Some(7)),
            ]
        );
    }

    #[test]
    fn processes_from_nvml_info() {
        let cases = [
            (
                UsedGpuMemory::Used(1 << 30),
                Some(1),
                Some(0),
                Some(1 << 30),
            ),
            (UsedGpuMemory::Unavailable, None, None, None),
        ];
        for (memory, gi, ci, want_memory) in cases {
            let process = to_process(ProcessInfo {
                pid: 42,
                used_gpu_memory: memory,
                gpu_instance_id: gi,
                compute_instance_id: ci,
            });
            assert_eq!(process.pid, 42);
            assert_eq!(process.used_memory_bytes, want_memory);
            assert_eq!(
                (process.gpu_instance_id, process.compute_instance_id),
                (gi, ci)
            );
            assert_eq!(process.sm_util_pct, None);
        }
    }
}
