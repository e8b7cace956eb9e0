//! The eBPF ledger's user side: each tick flips the epoch, waits for programs still
//! writing the old one, drains its per-CPU tables and the overflow map, and applies
//! lifecycle events, producing per-thread and per-process deltas; the GPU probes'
//! counters join them per thread (`gpu::GpuProbes`).
use std::collections::HashMap;
use std::ptr;
use std::time::Instant;

use agent_common::{
    CpuSlot, CpuTable, EPOCHS, LedgerStats, LifecycleEvent, OverflowKey, event_kind, names,
};
use aya::maps::{Array, MapData, PerCpuArray, PerCpuHashMap, RingBuf};

use super::gpu::{GpuCalls, GpuProbes};
use super::loader::{self, LoadError, LoadOptions, LoadedProbes, SliceSource};
use super::tasks::TaskTable;
use super::{
    CpuLedger, Fidelity, LedgerError, LedgerHealth, LedgerSample, ProcessSample, ThreadSample,
};
use crate::topology::Topology;

mod drain;
mod log;
mod sys;
pub use sys::boottime_ns;
use sys::{run_on_cpu, wait_for_running_programs};

/// On-CPU time and GPU activity of one thread in the interval being drained.
#[derive(Default)]
struct ThreadAcc {
    on_cpu_ns: u64,
    by_package: Vec<u64>,
    gpu: GpuCalls,
}

pub struct EbpfLedger {
    // Maps first: they must be dropped before the programs' links in `probes`.
    tables: PerCpuArray<MapData, CpuTable>,
    epoch_map: Array<MapData, u64>,
    slots: PerCpuArray<MapData, CpuSlot>,
    overflow: PerCpuHashMap<MapData, OverflowKey, u64>,
    stats: PerCpuArray<MapData, LedgerStats>,
    events: RingBuf<MapData>,
    /// GPU probes (their maps, too, go before the links); `None` when off.
    gpu: Option<GpuProbes>,
    /// The programs' rare-event log lines, written out at each tick.
    log: Option<log::EbpfLog>,
    _probes: LoadedProbes,
    fidelity: Fidelity,
    topology: Topology,
    tasks: TaskTable,
    epoch: u64,
    last_tick: Instant,
    last_stats: LedgerStats,
    last_switches: u64,
    /// bpf_stats of the sched_switch program at the last tick: (run ns, runs).
    last_prog_stats: (u64, u64),
    /// Events stamped after the current flip wait for the next tick.
    pending: Vec<LifecycleEvent>,
    /// Processes that exec'd, and threads that exited, in this tick's events.
    execs: Vec<u32>,
    exits: Vec<(u32, u32)>,
    scratch: HashMap<(u32, u32), ThreadAcc>,
    possible_cpus: usize,
    online_cpus: Vec<u32>,
}

impl EbpfLedger {
    /// Loads and attaches the probes. Errors say why, for the /proc fallback banner.
    pub fn new(opts: &LoadOptions) -> Result<EbpfLedger, LoadError> {
        let mut probes = loader::load(opts)?;
        let possible_cpus = probes.possible_cpus;
        let take = |ebpf: &mut aya::Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(LoadError::Missing(name))
        };
        let ebpf = &mut probes.ebpf;
        let tables = PerCpuArray::try_from(take(ebpf, names::TABLES)?).map_err(map_err)?;
        let epoch_map = Array::try_from(take(ebpf, names::EPOCH)?).map_err(map_err)?;
        let slots = PerCpuArray::try_from(take(ebpf, names::SLOTS)?).map_err(map_err)?;
        let overflow = PerCpuHashMap::try_from(take(ebpf, names::OVERFLOW)?).map_err(map_err)?;
        let stats = PerCpuArray::try_from(take(ebpf, names::STATS)?).map_err(map_err)?;
        let events = RingBuf::try_from(take(ebpf, names::EVENTS)?).map_err(map_err)?;
        let fidelity = Fidelity::Ebpf {
            attach: probes.attach.clone(),
            notes: probes.notes.clone(),
        };
        let gpu = GpuProbes::new(
            &mut probes.ebpf,
            &opts.gpu,
            &opts.procfs_root,
            probes.gpu.clone(),
        )?;
        let topology = Topology::read(&opts.sysfs_root, possible_cpus);
        let log = log::EbpfLog::init(&mut probes.ebpf);
        let mut ledger = EbpfLedger {
            tables,
            epoch_map,
            slots,
            overflow,
            stats,
            events,
            gpu,
            log,
            _probes: probes,
            fidelity,
            topology,
            tasks: TaskTable::new(&opts.procfs_root),
            epoch: 0,
            last_tick: Instant::now(),
            last_stats: LedgerStats::default(),
            last_switches: 0,
            last_prog_stats: (0, 0),
            pending: Vec::new(),
            execs: Vec::new(),
            exits: Vec::new(),
            scratch: HashMap::new(),
            possible_cpus,
            online_cpus: aya::util::online_cpus().map_err(|(_, err)| LoadError::Cpus(err))?,
        };
        // One discarded tick: it starts a slice on every CPU now and drops what was
        // charged while the programs were being attached, so the first interval the
        // caller sees starts here and is complete.
        ledger
            .sample()
            .map_err(|err| LoadError::FirstTick(loader::error_chain(&err)))?;
        Ok(ledger)
    }

    /// The loaded object, for benchmarks that read program statistics.
    pub fn ebpf(&self) -> &aya::Ebpf {
        &self._probes.ebpf
    }

    /// Where slice lengths come from: the scheduler's runtime, or the clock.
    pub fn slice_source(&self) -> SliceSource {
        self._probes.slices
    }

    /// Name of the attached sched_switch program (for its bpf_stats).
    pub fn switch_program(&self) -> &str {
        &self._probes.switch_program
    }

    /// Charges the slice running on every CPU up to now, into the current epoch.
    fn flush_cpus(&self) {
        let Some(prog_fd) = self._probes.flush else {
            return;
        };
        for &cpu in &self.online_cpus {
            // A CPU gone offline since start-up just has nothing to flush.
            if let Err(err) = run_on_cpu(prog_fd, cpu) {
                tracing::debug!(cpu, %err, "flush failed");
            }
        }
    }

    /// Starts a new epoch; returns the parity of the one that ended. Programs may
    /// still be writing it until `wait_for_running_programs` returns.
    fn flip_epoch(&mut self) -> Result<u32, LedgerError> {
        let old_parity = (self.epoch % EPOCHS as u64) as u32;
        self.epoch += 1;
        self.epoch_map
            .set(0, self.epoch, 0)
            .map_err(|source| LedgerError::Map {
                map: names::EPOCH,
                source,
            })?;
        Ok(old_parity)
    }

    /// Applies lifecycle events up to `until_boot_ns`, in time order.
    fn apply_events(&mut self, until_boot_ns: u64) {
        while let Some(item) = self.events.next() {
            if item.len() >= std::mem::size_of::<LifecycleEvent>() {
                // SAFETY: the item holds at least one LifecycleEvent written by the
                // kernel side; it is Pod, and read_unaligned needs no alignment.
                let event = unsafe { ptr::read_unaligned(item.as_ptr().cast::<LifecycleEvent>()) };
                self.pending.push(event);
            }
        }
        self.pending.sort_by_key(|e| e.ts_ns);
        let ready = self.pending.partition_point(|e| e.ts_ns <= until_boot_ns);
        self.execs.clear();
        self.exits.clear();
        for event in self.pending.drain(..ready) {
            match event.kind {
                event_kind::EXEC => self.execs.push(event.tgid),
                event_kind::EXIT => self.exits.push((event.tgid, event.tid)),
                _ => {}
            }
            self.tasks.apply(&event);
        }
    }

    fn read_stats(&self) -> Result<LedgerStats, aya::maps::MapError> {
        let per_cpu = self.stats.get(&0, 0)?;
        Ok(per_cpu.iter().fold(LedgerStats::default(), |mut sum, s| {
            sum.flush_events += s.flush_events;
            sum.ringbuf_lost += s.ringbuf_lost;
            sum.unowned_slices += s.unowned_slices;
            sum
        }))
    }

    fn read_switches(&self) -> Result<u64, aya::maps::MapError> {
        Ok(self.slots.get(&0, 0)?.iter().map(|s| s.switches).sum())
    }

    /// Adds the cumulative counters' growth since the last tick to the epoch's losses.
    fn health(&mut self, losses: LedgerHealth) -> Result<LedgerHealth, LedgerError> {
        let stats = self.read_stats().map_err(|source| LedgerError::Map {
            map: names::STATS,
            source,
        })?;
        let switches = self.read_switches().map_err(|source| LedgerError::Map {
            map: names::SLOTS,
            source,
        })?;
        let last = std::mem::replace(&mut self.last_stats, stats);
        let last_switches = std::mem::replace(&mut self.last_switches, switches);
        let prog = self.switch_program_stats();
        let (run_ns, runs) = (
            prog.0.saturating_sub(self.last_prog_stats.0),
            prog.1.saturating_sub(self.last_prog_stats.1),
        );
        self.last_prog_stats = prog;
        Ok(LedgerHealth {
            ns_per_switch: (run_ns > 0 && runs > 0).then(|| run_ns as f64 / runs as f64),
            switches: switches.saturating_sub(last_switches),
            flushes: stats.flush_events.saturating_sub(last.flush_events),
            lost_events: stats.ringbuf_lost.saturating_sub(last.ringbuf_lost),
            unowned_slices: stats.unowned_slices.saturating_sub(last.unowned_slices),
            ..losses
        })
    }

    /// (run time ns, run count) of the sched_switch program; zeros without bpf_stats.
    fn switch_program_stats(&self) -> (u64, u64) {
        let probes = &self._probes;
        probes
            .ebpf
            .program(&probes.switch_program)
            .and_then(|p| p.info().ok())
            .map_or((0, 0), |info| {
                (info.run_time().as_nanos() as u64, info.run_count())
            })
    }

    /// Turns the drained amounts and the task table into per-process samples.
    fn build_processes(&mut self) -> Vec<ProcessSample> {
        let packages = self.topology.packages.len().max(1);
        let mut by_tgid: HashMap<u32, ProcessSample> = HashMap::new();
        let tick = self.tasks.tick();
        let mut scratch = std::mem::take(&mut self.scratch);
        for ((tgid, tid), acc) in scratch.drain() {
            let comm = self.tasks.thread_comm(tgid, tid);
            let sample = by_tgid.entry(tgid).or_insert_with(|| ProcessSample {
                tgid,
                on_cpu_ns_by_package: vec![0; packages],
                ..ProcessSample::default()
            });
            sample.on_cpu_ns += acc.on_cpu_ns;
            sample.gpu.add(&acc.gpu);
            for (sum, ns) in sample.on_cpu_ns_by_package.iter_mut().zip(&acc.by_package) {
                *sum += ns;
            }
            let exited = self
                .tasks
                .get(tgid)
                .and_then(|p| p.threads.get(&tid))
                .is_some_and(|t| t.exited_at.is_some_and(|at| at <= tick));
            sample.threads.push(ThreadSample {
                tid,
                comm,
                on_cpu_ns: acc.on_cpu_ns,
                on_cpu_ns_by_package: acc.by_package,
                exited,
                gpu: acc.gpu,
            });
        }
        self.scratch = scratch;
        let exited: Vec<(u32, u64)> = self
            .tasks
            .exited_this_tick()
            .map(|p| (p.tgid, p.start_ns))
            .collect();
        for (tgid, _) in &exited {
            by_tgid.entry(*tgid).or_insert_with(|| ProcessSample {
                tgid: *tgid,
                on_cpu_ns_by_package: vec![0; packages],
                ..ProcessSample::default()
            });
        }
        let mut out: Vec<ProcessSample> = by_tgid.into_values().collect();
        for sample in &mut out {
            self.tasks.resolve(sample.tgid);
            self.tasks.learn_from_pending(sample.tgid, &self.pending);
            if let Some(info) = self.tasks.get(sample.tgid) {
                sample.start_ns = info.start_ns;
                sample.ppid = info.ppid;
                sample.uid = info.uid;
                sample.comm.clone_from(&info.comm);
                sample.cgroup.clone_from(&info.cgroup);
                sample.exited = info.exited();
            }
            sample
                .threads
                .sort_by(|a, b| b.on_cpu_ns.cmp(&a.on_cpu_ns).then(a.tid.cmp(&b.tid)));
        }
        // A pid reused within the tick: the earlier process is reported on its own
        // (one row per identity; a start in the same clock tick is the same identity).
        for old in &self.tasks.displaced {
            let key = (old.tgid, old.start_ns);
            if out.iter().any(|p| (p.tgid, p.start_ns) == key) {
                continue;
            }
            out.push(ProcessSample {
                tgid: old.tgid,
                start_ns: old.start_ns,
                ppid: old.ppid,
                uid: old.uid,
                comm: old.comm.clone(),
                cgroup: old.cgroup.clone(),
                on_cpu_ns_by_package: vec![0; packages],
                exited: true,
                ..ProcessSample::default()
            });
        }
        out.sort_by(|a, b| {
            (b.on_cpu_ns.cmp(&a.on_cpu_ns))
                .then(a.tgid.cmp(&b.tgid))
                .then(a.start_ns.cmp(&b.start_ns))
        });
        out
    }
}

impl CpuLedger for EbpfLedger {
    fn sample_with(&mut self, at_boundary: &mut dyn FnMut()) -> Result<LedgerSample, LedgerError> {
        self.flush_cpus();
        let flip_boot_ns = boottime_ns();
        let now = Instant::now();
        let parity = self.flip_epoch()?;
        at_boundary();
        wait_for_running_programs();
        let interval = now.duration_since(self.last_tick);
        self.last_tick = now;
        self.apply_events(flip_boot_ns);
        let (cpus, losses) = self.drain_table(parity, interval)?;
        self.drain_overflow(parity)?;
        self.drain_gpu()?;
        let health = self.health(losses)?;
        let processes = self.build_processes();
        self.tasks.end_tick();
        if let Some(log) = &mut self.log {
            log.flush();
        }
        Ok(LedgerSample {
            interval,
            cpus,
            packages: self.topology.packages.clone(),
            cpu_package: (0..self.possible_cpus)
                .map(|cpu| self.topology.package_index(cpu))
                .collect(),
            processes,
            health,
            gpu: self.gpu.as_mut().map(GpuProbes::status),
        })
    }

    fn fidelity(&self) -> &Fidelity {
        &self.fidelity
    }
}

fn map_err(source: aya::maps::MapError) -> LoadError {
    LoadError::Map(source)
}
