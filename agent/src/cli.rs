//! Options every entry point shares (`greentop`, `greentop-agent`).
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::attribution::IdlePolicy;
use crate::energy::select::{CpuSourceChoice, SourceOptions};

/// Which CPU-time ledger to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LedgerChoice {
    /// eBPF if the probes load, else /proc (and say why).
    #[default]
    Auto,
    /// eBPF only: fail if the probes cannot load.
    Ebpf,
    /// /proc sampling only (lower fidelity, no privileges needed).
    Procfs,
}

#[derive(Clone, Debug, Args)]
pub struct CommonArgs {
    /// Root of the sysfs tree to read (for tests and containers).
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    pub sysfs_root: PathBuf,
    /// Root of the procfs tree to read (for tests and containers).
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub procfs_root: PathBuf,
    /// CPU-time ledger: eBPF probes, /proc sampling, or eBPF with /proc fallback.
    #[arg(long, value_enum, default_value_t = LedgerChoice::Auto)]
    pub ledger: LedgerChoice,
    /// CPU energy source: measured RAPL (powercap or perf PMU) or the TDP estimate.
    #[arg(long = "source", value_enum, default_value_t = CpuSourceChoice::Auto)]
    pub cpu_source: CpuSourceChoice,
    /// CPU power at full load for the estimate, in watts per package (default: TDP table).
    #[arg(long, value_name = "WATTS", value_parser = parse_watts)]
    pub cpu_tdp_watts: Option<f64>,
    /// Path of libnvidia-ml.so.1 (default: the dynamic loader's search path).
    #[arg(long, value_name = "PATH")]
    pub nvml_lib: Option<PathBuf>,
    /// Do not look for NVIDIA GPUs.
    #[arg(long)]
    pub no_gpu: bool,
    /// Grid region for the carbon intensity: FR, FRA, US-CA, SE3, gcp:us-central1, …
    #[arg(long, value_name = "CODE")]
    pub region: Option<String>,
    /// Fixed carbon intensity in gCO₂/kWh (overrides the region's).
    #[arg(long, value_name = "G_PER_KWH", value_parser = parse_intensity)]
    pub intensity: Option<f64>,
    /// CSV of `timestamp,g_per_kwh`: each interval uses the value at its time.
    #[arg(long, value_name = "FILE")]
    pub intensity_series: Option<PathBuf>,
    /// Idle power policy: exclude (idle stays idle), share (all to busy processes),
    /// baseline (calibrated idle stays idle) [default: exclude, or the config file's].
    #[arg(long, value_enum)]
    pub idle: Option<IdlePolicy>,
    /// TOML config file (default: /etc/greentop/config.toml for root, else
    /// ~/.config/greentop/config.toml, if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ledger table slots per CPU (testing map pressure).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub ledger_table_slots: Option<u32>,
    /// Overflow map entries (testing map pressure).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub ledger_overflow_entries: Option<u32>,
    /// Milliseconds the start-up probe watches the energy counters (tests, slow hypervisors).
    #[arg(long, hide = true, value_name = "MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(10..=5000))]
    pub probe_ms: u64,
}

impl CommonArgs {
    /// The energy-source part of the options.
    pub fn source_options(&self) -> SourceOptions {
        SourceOptions {
            sysfs_root: self.sysfs_root.clone(),
            procfs_root: self.procfs_root.clone(),
            cpu: self.cpu_source,
            cpu_tdp_watts: self.cpu_tdp_watts,
            nvml_lib: self.nvml_lib.clone(),
            no_gpu: self.no_gpu,
            probe_window: std::time::Duration::from_millis(self.probe_ms),
        }
    }
}

fn parse_watts(text: &str) -> Result<f64, String> {
    let watts: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of watts"))?;
    if (1.0..=5000.0).contains(&watts) {
        Ok(watts)
    } else {
        Err(format!("{watts} W is outside 1..=5000"))
    }
}

fn parse_intensity(text: &str) -> Result<f64, String> {
    let g: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of gCO₂/kWh"))?;
    if (0.0..=5000.0).contains(&g) {
        Ok(g)
    } else {
        Err(format!("{g} g/kWh is outside 0..=5000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watts_are_range_checked() {
        for (text, ok) in [
            ("85", true),
            ("1", true),
            ("0.5", false),
            ("x", false),
            ("6000", false),
        ] {
            assert_eq!(parse_watts(text).is_ok(), ok, "{text}");
        }
    }
}
