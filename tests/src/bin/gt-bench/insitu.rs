//! `gt-bench wakers [ROUNDS] [SECS] [PROCESSES]`: the ledger's own cost per context
//! switch in situ, from bpf_stats, under PROCESSES processes each waking 10×/s for
//! ~10 µs (`gt-load wakers`, issue 9's load). Each round runs, for SECS after a
//! warm-up: the counter-only floor program, the clock ledger (the fallback, and what
//! the ledger was before it read the scheduler's runtime), then the runtime ledger,
//! the ledgers' user side ticking every second as the agent does.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent::probes::CpuLedger;
use agent::probes::ebpf::EbpfLedger;
use agent::probes::loader::error_chain;
use anyhow::{Context, anyhow};
use greentop_tests::KillOnDrop;

use super::{attach_alone, median, open_ledger, prog_stats};

/// One program under the load.
struct InSitu {
    ns_per_switch: f64,
    switches_per_s: f64,
}

impl InSitu {
    /// Share of one CPU the program takes.
    fn cpu_percent(&self) -> f64 {
        self.ns_per_switch * self.switches_per_s / 1e7
    }
}

/// What is measured: a sched_switch program, and what ticks it (if anything).
trait Measured {
    fn tick(&mut self) -> anyhow::Result<()>;
    /// (run time ns, run count) of the sched_switch program.
    fn stats(&self) -> anyhow::Result<(u64, u64)>;
}

impl Measured for EbpfLedger {
    fn tick(&mut self) -> anyhow::Result<()> {
        self.sample()
            .map(drop)
            .map_err(|e| anyhow!(error_chain(&e)))
    }
    fn stats(&self) -> anyhow::Result<(u64, u64)> {
        prog_stats(self.ebpf(), self.switch_program())
    }
}

/// A reference program attached alone.
struct Alone(aya::Ebpf, String);

impl Measured for Alone {
    fn tick(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
    fn stats(&self) -> anyhow::Result<(u64, u64)> {
        prog_stats(&self.0, &self.1)
    }
}

pub(crate) fn bench_wakers(rounds: usize, secs: f64, processes: usize) -> anyhow::Result<()> {
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .context("enabling bpf_stats (needs root)")?;
    println!(
        "round  floor_ns  clock_ledger_ns  runtime_ledger_ns  runtime/clock  runtime/floor  switches/s  clock_cpu_%  runtime_cpu_%"
    );
    let mut rows = Vec::new();
    for round in 1..=rounds {
        let (ebpf, name) = attach_alone("floor_switch")?;
        let floor = measure(&mut Alone(ebpf, name), secs, processes)?;
        let clock = measure(&mut open_ledger(true)?, secs, processes)?;
        let runtime = measure(&mut open_ledger(false)?, secs, processes)?;
        println!(
            "{round:>5}  {:>8.1}  {:>15.1}  {:>17.1}  {:>13.2}  {:>13.2}  {:>10.0}  {:>11.3}  {:>13.3}",
            floor.ns_per_switch,
            clock.ns_per_switch,
            runtime.ns_per_switch,
            runtime.ns_per_switch / clock.ns_per_switch,
            runtime.ns_per_switch / floor.ns_per_switch,
            runtime.switches_per_s,
            clock.cpu_percent(),
            runtime.cpu_percent(),
        );
        rows.push([floor, clock, runtime]);
    }
    let med = |f: &dyn Fn(&[InSitu; 3]) -> f64| median(rows.iter().map(f).collect());
    println!(
        "median of {rounds}, {processes} processes waking 10x/s for 10 us: floor {:.1} ns/switch, \
         clock ledger {:.1}, runtime ledger {:.1} (runtime/clock {:.2}, runtime/floor {:.2}); \
         {:.0} switches/s; clock ledger {:.3} % vs runtime ledger {:.3} % of one CPU",
        med(&|r| r[0].ns_per_switch),
        med(&|r| r[1].ns_per_switch),
        med(&|r| r[2].ns_per_switch),
        med(&|r| r[2].ns_per_switch / r[1].ns_per_switch),
        med(&|r| r[2].ns_per_switch / r[0].ns_per_switch),
        med(&|r| r[2].switches_per_s),
        med(&|r| r[1].cpu_percent()),
        med(&|r| r[2].cpu_percent()),
    );
    Ok(())
}

/// Runs the load under one program; its cost per switch over SECS.
fn measure(what: &mut dyn Measured, secs: f64, processes: usize) -> anyhow::Result<InSitu> {
    let load = std::env::current_exe()?.with_file_name("gt-load");
    let _load = KillOnDrop(
        Command::new(&load)
            .args([
                "wakers",
                &processes.to_string(),
                &(secs + 3.0).to_string(),
                "10",
                "10",
            ])
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", load.display()))?,
    );
    // Let the burst of forks pass before measuring.
    std::thread::sleep(Duration::from_millis(1500));
    what.tick()?;
    let before = what.stats()?;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        std::thread::sleep(Duration::from_secs(1));
        what.tick()?;
    }
    let wall = start.elapsed().as_secs_f64();
    let after = what.stats()?;
    let runs = after.1.saturating_sub(before.1).max(1);
    Ok(InSitu {
        ns_per_switch: after.0.saturating_sub(before.0) as f64 / runs as f64,
        switches_per_s: runs as f64 / wall,
    })
}
