//! Draining one finished epoch: the per-CPU tables (busy time per thread, span per
//! CPU) and the overflow map, summed per thread and per CPU package.
use agent_common::{CpuTable, OverflowKey, names};
use aya::maps::PerCpuValues;

use super::EbpfLedger;
use crate::probes::{CpuTime, LedgerError, LedgerHealth};

impl EbpfLedger {
    /// Reads and zeroes one epoch's tables; returns per-CPU times and the epoch's losses.
    /// A CPU's idle time is what its span (flush to flush) leaves after its busy time:
    /// the idle task plus whatever ran no task (steal, and IRQs where the kernel
    /// accounts them apart). Unflushed CPUs span the whole `interval`.
    pub(super) fn drain_table(
        &mut self,
        parity: u32,
        interval: std::time::Duration,
    ) -> Result<(Vec<CpuTime>, LedgerHealth), LedgerError> {
        let tables = self
            .tables
            .get(&parity, 0)
            .map_err(|source| LedgerError::Map {
                map: names::TABLES,
                source,
            })?;
        let packages = self.topology.packages.len().max(1);
        let mut cpus = Vec::with_capacity(tables.len());
        let mut losses = LedgerHealth::default();
        for (cpu, table) in tables.iter().enumerate() {
            losses.overflow_charges += table.overflow_charges;
            losses.dropped_slices += table.dropped_slices;
            losses.dropped_ns += table.dropped_ns;
            let span_ns = match table.span_ns {
                0 => interval.as_nanos() as u64,
                ns => ns,
            };
            cpus.push(CpuTime {
                busy_ns: table.busy_ns,
                idle_ns: span_ns.saturating_sub(table.busy_ns),
            });
            let package = self.topology.package_index(cpu);
            for entry in table.entries.iter().filter(|e| e.tid != 0) {
                let acc = self.scratch.entry((entry.tgid, entry.tid)).or_default();
                acc.by_package.resize(packages, 0);
                acc.on_cpu_ns += entry.on_cpu_ns;
                acc.by_package[package] += entry.on_cpu_ns;
            }
        }
        let zero =
            PerCpuValues::try_from(vec![CpuTable::ZERO; self.possible_cpus]).map_err(|source| {
                LedgerError::Map {
                    map: names::TABLES,
                    source: aya::maps::MapError::IoError(source),
                }
            })?;
        self.tables
            .set(parity, zero, 0)
            .map_err(|source| LedgerError::Map {
                map: names::TABLES,
                source,
            })?;
        Ok((cpus, losses))
    }

    /// Overflow entries of the drained epoch: read, credit, delete.
    pub(super) fn drain_overflow(&mut self, parity: u32) -> Result<(), LedgerError> {
        let err = |source| LedgerError::Map {
            map: names::OVERFLOW,
            source,
        };
        let keys: Vec<OverflowKey> = self
            .overflow
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.epoch_parity == parity)
            .collect();
        let packages = self.topology.packages.len().max(1);
        for key in keys {
            let values = self.overflow.get(&key, 0).map_err(err)?;
            let acc = self.scratch.entry((key.tgid, key.tid)).or_default();
            acc.by_package.resize(packages, 0);
            for (cpu, ns) in values.iter().enumerate() {
                acc.on_cpu_ns += ns;
                acc.by_package[self.topology.package_index(cpu)] += ns;
            }
            self.overflow.remove(&key).map_err(err)?;
        }
        Ok(())
    }
}
