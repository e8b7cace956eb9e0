//! Options every entry point shares (`greentop`, `greentop-agent`).
use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
    /// Ledger table slots per CPU (testing map pressure).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub ledger_table_slots: Option<u32>,
    /// Overflow map entries (testing map pressure).
    #[arg(long, hide = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub ledger_overflow_entries: Option<u32>,
}
