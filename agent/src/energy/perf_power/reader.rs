//! The seam between the perf power source and the kernel: opening one event's
//! counter on one CPU and reading its raw count. Production uses `perf_event_open`;
//! tests feed counters that stay flat, freeze, run backwards or follow the clock.
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use perf_event_open_sys as sys;

/// One open counter: its cumulative raw count (units of the event's `.scale`).
pub trait RawCounter: Send + std::fmt::Debug {
    fn read_count(&mut self) -> std::io::Result<u64>;
}

/// Opens the counter of one `power` PMU event on one CPU.
pub trait CounterOpener {
    fn open(&self, pmu_type: u32, config: u64, cpu: u32) -> std::io::Result<Box<dyn RawCounter>>;
}

/// A counter read as a perf event fd opened without a read format: 8 bytes, native
/// endian, per `read(2)`.
#[derive(Debug)]
pub struct PerfFd(pub File);

impl RawCounter for PerfFd {
    fn read_count(&mut self) -> std::io::Result<u64> {
        let mut count_bytes = [0u8; 8];
        self.0.read_exact(&mut count_bytes)?;
        Ok(u64::from_ne_bytes(count_bytes))
    }
}

/// The production opener: `perf_event_open(2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PerfEventOpen;

impl CounterOpener for PerfEventOpen {
    fn open(&self, pmu_type: u32, config: u64, cpu: u32) -> std::io::Result<Box<dyn RawCounter>> {
        Ok(Box::new(PerfFd(perf_event_open_cpu(
            pmu_type, config, cpu,
        )?)))
    }
}

/// A counting (not sampling), enabled, system-wide counter on `cpu`.
fn perf_event_open_cpu(pmu_type: u32, config: u64, cpu: u32) -> std::io::Result<File> {
    let mut attr = sys::bindings::perf_event_attr {
        type_: pmu_type,
        size: std::mem::size_of::<sys::bindings::perf_event_attr>() as u32,
        config,
        ..Default::default()
    };
    let cpu =
        libc::c_int::try_from(cpu).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `attr` is a zero-initialised perf_event_attr with its size set, valid for
    // the call; pid -1 with cpu >= 0 counts everything on that CPU; group_fd -1 is no group.
    let fd = unsafe {
        sys::perf_event_open(
            &mut attr,
            -1,
            cpu,
            -1,
            sys::bindings::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor returned by the kernel and owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}
