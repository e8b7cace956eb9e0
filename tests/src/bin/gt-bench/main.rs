//! Benchmarks that need root and the real kernel.
//!
//! `gt-bench ebpf [ROUNDS] [SECS]`: ns per sched_switch event of each program,
//! attached alone (so none pays the others' cache misses) for SECS under the same
//! context-switch load, in alternating rounds of one run, read from bpf_stats: the
//! counter-only floor, the same plus one `bpf_ktime_get_ns` (clock floor: what any
//! time-measuring program pays), the textbook LRU per-CPU hash ledger (reference),
//! greentop's ledger with its user side ticking every 250 ms (whose CPU time per
//! tick is reported too), and the same ledger forced onto the clock (its fallback).
//!
//! `gt-bench wakers [ROUNDS] [SECS] [PROCESSES]`: the ledger in situ (`insitu.rs`).
//!
//! `gt-bench gpu [ROUNDS] [CALLS]`: ns per probed CUDA call and per syscall with the
//! GPU probes on, against unprobed calls in the same run (`gpu.rs`).
//!
//! `gt-bench versus [OPTIONS]`: greentop-agent side by side with a /proc poller,
//! Scaphandre and CodeCarbon (`versus/`); `gt-bench table`: those results (and the log
//! and live-view benchmarks') into docs/benchmarks.md (`table.rs`).
use std::time::{Duration, Instant};

use agent::probes::CpuLedger;
use agent::probes::ebpf::EbpfLedger;
use agent::probes::loader::{
    EBPF_OBJECT, LoadOptions, SliceSource, attach_with_fallback, error_chain,
};
use anyhow::{Context, anyhow, bail};

mod gpu;
mod insitu;
mod table;
mod versus;

struct Row {
    floor: Phase,
    clock: Phase,
    reference: Phase,
    ledger: Phase,
    clock_ledger: Phase,
}

/// bpf_stats of one program over one phase.
struct Phase {
    ns_per_event: f64,
    events_per_s: f64,
    tick_us: f64,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ebpf") => {
            let rounds = args.get(1).map_or(Ok(5), |s| s.parse()).context("ROUNDS")?;
            let secs = args.get(2).map_or(Ok(2.0), |s| s.parse()).context("SECS")?;
            bench_ebpf(rounds, secs)
        }
        Some("wakers") => {
            let num = |i: usize, default: f64| -> anyhow::Result<f64> {
                args.get(i)
                    .map_or(Ok(default), |s| s.parse())
                    .with_context(|| format!("argument {i}"))
            };
            insitu::bench_wakers(
                num(1, 5.0)? as usize,
                num(2, 10.0)?,
                num(3, 1000.0)? as usize,
            )
        }
        Some("gpu") => {
            let rounds = args.get(1).map_or(Ok(5), |s| s.parse()).context("ROUNDS")?;
            let calls = args
                .get(2)
                .map_or(Ok(200_000), |s| s.parse())
                .context("CALLS")?;
            gpu::bench_gpu(rounds, calls)
        }
        Some("versus") => versus::main(&args[1..]),
        Some("table") => table::main(&args[1..]),
        Some("ticks") => {
            let idle = args
                .get(1)
                .map_or(Ok(2000), |s| s.parse())
                .context("IDLE_PROCESSES")?;
            bench_ticks(idle)
        }
        _ => bail!(
            "usage: gt-bench ebpf [ROUNDS] [SECS] | gt-bench wakers [ROUNDS] [SECS] [PROCESSES] \
             | gt-bench ticks [IDLE_PROCESSES] | gt-bench gpu [ROUNDS] [CALLS] \
             | gt-bench versus [--help] | gt-bench table --doc FILE BLOCKS.json..."
        ),
    }
}

fn bench_ebpf(rounds: usize, secs: f64) -> anyhow::Result<()> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .context("enabling bpf_stats (needs root)")?;
    println!(
        "round  floor_ns  clock_ns  reference_ns  ledger_ns  clock_ledger_ns  ledger/floor  clock_ledger/floor  ledger/clock  reference/floor  switches/s  tick_cpu_us"
    );
    let mut rows = Vec::new();
    for round in 1..=rounds {
        let row = Row {
            floor: phase_alone("floor_switch", secs)?,
            clock: phase_alone("clock_switch", secs)?,
            reference: phase_alone("reference_switch", secs)?,
            ledger: phase_ledger(secs, false)?,
            clock_ledger: phase_ledger(secs, true)?,
        };
        println!(
            "{round:>5}  {:>8.1}  {:>8.1}  {:>12.1}  {:>9.1}  {:>15.1}  {:>12.2}  {:>18.2}  {:>12.2}  {:>15.2}  {:>10.0}  {:>11.0}",
            row.floor.ns_per_event,
            row.clock.ns_per_event,
            row.reference.ns_per_event,
            row.ledger.ns_per_event,
            row.clock_ledger.ns_per_event,
            row.ledger.ns_per_event / row.floor.ns_per_event,
            row.clock_ledger.ns_per_event / row.floor.ns_per_event,
            row.ledger.ns_per_event / row.clock.ns_per_event,
            row.reference.ns_per_event / row.floor.ns_per_event,
            row.ledger.events_per_s,
            row.ledger.tick_us,
        );
        rows.push(row);
    }
    let med = |f: &dyn Fn(&Row) -> f64| median(rows.iter().map(f).collect());
    println!(
        "median of {rounds}: floor {:.1} ns/event, clock floor {:.1}, reference {:.1}, ledger {:.1}, \
         clock ledger {:.1}; ledger/floor {:.2} (target <= 1.50), clock ledger/floor {:.2}, \
         ledger/clock floor {:.2}, reference/floor {:.2}; {:.0} switches/s; tick {:.0} us of CPU",
        med(&|r| r.floor.ns_per_event),
        med(&|r| r.clock.ns_per_event),
        med(&|r| r.reference.ns_per_event),
        med(&|r| r.ledger.ns_per_event),
        med(&|r| r.clock_ledger.ns_per_event),
        med(&|r| r.ledger.ns_per_event / r.floor.ns_per_event),
        med(&|r| r.clock_ledger.ns_per_event / r.floor.ns_per_event),
        med(&|r| r.ledger.ns_per_event / r.clock.ns_per_event),
        med(&|r| r.reference.ns_per_event / r.floor.ns_per_event),
        med(&|r| r.ledger.events_per_s),
        med(&|r| r.ledger.tick_us),
    );
    Ok(())
}

/// CPU cost of one ledger tick with no extra processes, then with `idle` sleeping
/// ones: the tick must follow what ran, not what exists.
fn bench_ticks(idle: usize) -> anyhow::Result<()> {
    let opts = LoadOptions::new("/sys".as_ref(), "/proc".as_ref());
    let mut ledger = EbpfLedger::new(&opts).map_err(|e| anyhow!(error_chain(&e)))?;
    let before = tick_costs(&mut ledger, 30)?;
    let mut sleepers = Vec::with_capacity(idle);
    for _ in 0..idle {
        sleepers.push(
            std::process::Command::new("sleep")
                .arg("120")
                .spawn()
                .context("spawning sleep")?,
        );
    }
    // Let the burst of forks and execs pass through a few ticks first.
    tick_costs(&mut ledger, 30)?;
    let after = tick_costs(&mut ledger, 30)?;
    for mut sleeper in sleepers {
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
    println!(
        "tick CPU: {before:.0} us with no extra process, {after:.0} us with {idle} idle processes (ratio {:.2}); median of 30 ticks at 100 ms",
        after / before
    );
    Ok(())
}

/// Median CPU µs of `n` ticks, 100 ms apart.
fn tick_costs(ledger: &mut EbpfLedger, n: usize) -> anyhow::Result<f64> {
    let mut costs = Vec::with_capacity(n);
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(100));
        let cpu_ns = thread_cpu_ns();
        ledger.sample().map_err(|e| anyhow!(error_chain(&e)))?;
        costs.push((thread_cpu_ns() - cpu_ns) as f64 / 1e3);
    }
    Ok(median(costs))
}

/// One benchmark program attached alone to sched_switch.
fn phase_alone(prefix: &'static str, secs: f64) -> anyhow::Result<Phase> {
    let (ebpf, name) = attach_alone(prefix)?;
    let before = prog_stats(&ebpf, &name)?;
    let wall = run_load(secs, || Ok(()))?;
    let after = prog_stats(&ebpf, &name)?;
    Ok(phase(before, after, wall, f64::NAN))
}

/// Loads the object and attaches only `<prefix>_btf` (or `_raw`) to sched_switch;
/// returns the object (dropping it detaches) and the program's name.
pub(crate) fn attach_alone(prefix: &'static str) -> anyhow::Result<(aya::Ebpf, String)> {
    let btf = aya::Btf::from_sys_fs().ok();
    let mut ebpf = aya::EbpfLoader::new()
        .btf(btf.as_ref())
        .load(EBPF_OBJECT)
        .context("loading the eBPF object")?;
    let kind = attach_with_fallback(&mut ebpf, prefix, "sched_switch", btf.as_ref(), false)
        .map_err(|e| anyhow!(error_chain(&e)))?;
    let name = program_name(prefix, &kind);
    Ok((ebpf, name))
}

/// greentop's ledger as it runs in production (or forced onto the clock), ticking
/// every 250 ms.
fn phase_ledger(secs: f64, clock: bool) -> anyhow::Result<Phase> {
    let mut ledger = open_ledger(clock)?;
    let name = ledger.switch_program().to_string();
    let before = prog_stats(ledger.ebpf(), &name)?;
    let mut tick_us = Vec::new();
    let wall = run_load(secs, || {
        let cpu_ns = thread_cpu_ns();
        ledger.sample().map_err(|e| anyhow!(error_chain(&e)))?;
        tick_us.push((thread_cpu_ns() - cpu_ns) as f64 / 1e3);
        Ok(())
    })?;
    let after = prog_stats(ledger.ebpf(), &name)?;
    Ok(phase(before, after, wall, median(tick_us)))
}

/// The ledger on the real /sys and /proc; `clock` forces the clock fallback.
pub(crate) fn open_ledger(clock: bool) -> anyhow::Result<EbpfLedger> {
    let mut opts = LoadOptions::new("/sys".as_ref(), "/proc".as_ref());
    opts.clock_ledger = clock;
    let ledger = EbpfLedger::new(&opts).map_err(|e| anyhow!(error_chain(&e)))?;
    let want = if clock {
        SliceSource::Clock
    } else {
        SliceSource::SchedRuntime
    };
    if ledger.slice_source() != want {
        bail!(
            "wanted the {want:?} ledger, got {:?}: {:?}",
            ledger.slice_source(),
            ledger.fidelity().note()
        );
    }
    Ok(ledger)
}

fn program_name(prefix: &str, kind: &str) -> String {
    let suffix = match kind {
        "tp_btf" => "btf",
        "raw_tp" => "raw",
        _ => "tp",
    };
    format!("{prefix}_{suffix}")
}

/// Runs the ping-pong load for `secs`, calling `tick` every 250 ms; returns wall s.
fn run_load(secs: f64, mut tick: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let load = std::env::current_exe()?.with_file_name("gt-load");
    let mut child = std::process::Command::new(&load)
        .args(["pingpong", &secs.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("spawning {}", load.display()))?;
    let start = Instant::now();
    while child.try_wait()?.is_none() {
        std::thread::sleep(Duration::from_millis(250));
        tick()?;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn phase(before: (u64, u64), after: (u64, u64), wall_s: f64, tick_us: f64) -> Phase {
    let events = after.1.saturating_sub(before.1);
    Phase {
        ns_per_event: after.0.saturating_sub(before.0) as f64 / events.max(1) as f64,
        events_per_s: events as f64 / wall_s,
        tick_us,
    }
}

/// (run time ns, run count) of a loaded program.
pub(crate) fn prog_stats(ebpf: &aya::Ebpf, name: &str) -> anyhow::Result<(u64, u64)> {
    let prog = ebpf
        .program(name)
        .with_context(|| format!("program {name}"))?;
    let info = prog.info().with_context(|| format!("info of {name}"))?;
    Ok((info.run_time().as_nanos() as u64, info.run_count()))
}

/// CPU time of this thread: a tick's cost without the RCU grace period it sleeps in.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
