//! `gt-log-writer DIR SEED COUNT [ROTATE_BYTES] [PROCESSES]`: the log writer in a
//! process of its own, for the crash test. Writes the synthetic intervals of
//! SEED (each seed starts a day later) to DIR as fast as it can, never syncing,
//! and prints each interval's index once `write` has returned. COUNT 0: until
//! killed.
use agent::sinks::Sink;
use agent::sinks::log::synth::{Synth, Workload};
use agent::sinks::log::{FsyncPolicy, LogOptions, LogWriter};
use anyhow::Context;
use std::io::Write;
use std::time::Duration;

/// The workload of a seed: the crash test regenerates it to check what was read.
pub fn workload(seed: u64, processes: usize) -> Workload {
    let mut work = Workload::new(processes);
    work.seed = seed;
    work.start += Duration::from_secs(86_400 * seed);
    work
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gt-log-writer DIR SEED COUNT [ROTATE_BYTES] [PROCESSES]";
    let dir = args.first().context(usage)?;
    let number = |i: usize, default: u64| -> anyhow::Result<u64> {
        args.get(i)
            .map_or(Ok(default), |s| s.parse())
            .context(usage)
    };
    let (seed, count) = (number(1, 1)?, number(2, 0)?);
    let mut opts = LogOptions::new(dir);
    opts.fsync = FsyncPolicy::Never;
    opts.rotate_bytes = number(3, 64 << 20)?;
    let mut writer = LogWriter::open(opts)?;
    let mut synth = Synth::new(workload(seed, number(4, 500)? as usize));
    let mut out = std::io::stdout().lock();
    let mut index = 0u64;
    while count == 0 || index < count {
        writer.write(&synth.next_interval())?;
        writeln!(out, "{index}")?;
        out.flush()?;
        index += 1;
    }
    writer.close()?;
    Ok(())
}
