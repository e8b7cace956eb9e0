//! NVIDIA GPU energy through NVML: each device's total-energy counter (power × Δt where
//! the counter is unsupported) and the details attribution needs — utilisation, compute
//! processes with their MIG ids and utilisation samples, accounting stats of processes
//! that ended.
//!
//! NVML is initialised once, in [`NvmlSource::open`]; a missing library or driver is
//! `SourceError::NotFound`. After that no call failure is fatal: each degrades the
//! field it feeds and leaves a note naming the call.
mod device;
mod energy;
mod processes;

use std::path::Path;
use std::time::Instant;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use super::{EnergyReading, EnergySource, SourceError};
use device::DeviceState;

/// What the loader is asked for when no library path is given.
const DEFAULT_LIB: &str = "libnvidia-ml.so.1";

/// Per-GPU energy and process details from NVML (`nvml`).
pub struct NvmlSource {
    nvml: Nvml,
    devices: Vec<DeviceState>,
    last_read: Instant,
}

impl std::fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlSource")
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

impl NvmlSource {
    /// Loads NVML from `lib_path` (default `libnvidia-ml.so.1` through the loader),
    /// initialises it and takes each device's baseline.
    pub fn open(lib_path: Option<&Path>) -> Result<NvmlSource, SourceError> {
        let mut builder = Nvml::builder();
        if let Some(path) = lib_path {
            builder.lib_path(path.as_os_str());
        }
        let nvml = builder.init().map_err(|err| init_error(lib_path, &err))?;
        let count = nvml.device_count().map_err(|err| SourceError::Device {
            call: "nvmlDeviceGetCount_v2".to_string(),
            message: one_line(&err.to_string()),
        })?;
        if count == 0 {
            return Err(SourceError::NotFound(
                "no NVIDIA GPU: the driver reports 0 devices".to_string(),
            ));
        }
        let devices = (0..count).map(|i| DeviceState::open(&nvml, i)).collect();
        Ok(NvmlSource {
            nvml,
            devices,
            last_read: Instant::now(),
        })
    }
}

impl EnergySource for NvmlSource {
    fn name(&self) -> &str {
        "nvml"
    }

    fn describe(&self) -> Vec<String> {
        self.devices.iter().map(DeviceState::describe).collect()
    }

    fn read(&mut self) -> Result<EnergyReading, SourceError> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_read);
        self.last_read = now;
        let mut reading = EnergyReading {
            elapsed,
            ..EnergyReading::default()
        };
        for state in &mut self.devices {
            let (domain, gpu) = state.read(&self.nvml, elapsed);
            reading.domains.push(domain);
            reading.gpus.push(gpu);
        }
        Ok(reading)
    }
}

/// Maps an init failure: no library or no driver is `NotFound` (the agent just has
/// no GPU source); anything else names the call.
fn init_error(lib_path: Option<&Path>, err: &NvmlError) -> SourceError {
    let lib = lib_path.map_or_else(|| DEFAULT_LIB.to_string(), |p| p.display().to_string());
    let reason = one_line(&err.to_string());
    match err {
        NvmlError::LibloadingError(_)
        | NvmlError::FailedToLoadSymbol(_)
        | NvmlError::LibraryNotFound
        | NvmlError::DriverNotLoaded => {
            SourceError::NotFound(one_line(&format!("no NVIDIA driver: {lib}: {reason}")))
        }
        NvmlError::NoPermission => SourceError::PermissionDenied {
            path: lib_path.map_or_else(|| DEFAULT_LIB.into(), Path::to_path_buf),
            hint: reason,
        },
        _ => SourceError::Device {
            call: "nvmlInit_v2".to_string(),
            message: reason,
        },
    }
}

/// Error texts from dlerror or the driver can span lines; reports are one line each.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A note naming the NVML call that failed and how.
fn call_note(call: &str, err: &NvmlError) -> String {
    one_line(&format!("{call}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn init_errors_map_to_kinds() {
        let path = PathBuf::from("/opt/lib/libnvidia-ml.so.1");
        let cases: [(NvmlError, &str); 5] = [
            (NvmlError::DriverNotLoaded, "not-found"),
            (NvmlError::LibraryNotFound, "not-found"),
            (NvmlError::FailedToLoadSymbol("x".into()), "not-found"),
            (NvmlError::NoPermission, "permission"),
            (NvmlError::Unknown, "device"),
        ];
        for (err, want) in cases {
            let got = match init_error(Some(&path), &err) {
                SourceError::NotFound(msg) => {
                    assert!(msg.starts_with("no NVIDIA driver: /opt/lib/"), "{msg}");
                    "not-found"
                }
                SourceError::PermissionDenied { .. } => "permission",
                SourceError::Device { call, .. } => {
                    assert_eq!(call, "nvmlInit_v2");
                    "device"
                }
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(got, want, "{err:?}");
        }
    }

    #[test]
    fn one_line_joins_lines() {
        let cases = [
            ("a\nb", "a b"),
            ("  x  y\r\n", "x y"),
            ("", ""),
            ("plain", "plain"),
        ];
        for (input, want) in cases {
            assert_eq!(one_line(input), want);
        }
    }

    #[test]
    fn call_note_names_the_call() {
        assert_eq!(
            call_note("nvmlDeviceGetPowerUsage", &NvmlError::NotSupported),
            "nvmlDeviceGetPowerUsage: the requested operation is not available on the target device"
        );
    }
}
