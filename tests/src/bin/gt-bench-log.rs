//! `gt-bench-log [HOURS] [PROCESSES] [FUZZ_RUNS]`: the binary log's size and
//! `greentop report`'s speed on a day of synthetic intervals, and the reader's
//! fuzz target run for a fixed number of executions.
//!
//! 1. Writes HOURS (default 24) of 1 s intervals of PROCESSES (default 500)
//!    active processes (a quarter with 4 threads, thread rows on, 1 in 50
//!    replaced each second; energies from the real attribution) with the real
//!    writer, and prints bytes on disk per process-interval and the projection to
//!    a day, beside the same intervals as JSON lines (what greentop-agent printed
//!    before the log).
//! 2. Times `agent::report::build` over that log (the code behind `greentop
//!    report`), by process and by job, median of 3, beside the 10 s target.
//! 3. Builds fuzz/ on stable with libFuzzer's coverage flags and runs the reader
//!    target FUZZ_RUNS (default 1,000,000) times over a copy of the corpus.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent::report::{GroupBy, ReportOptions, build};
use agent::sinks::Sink;
use agent::sinks::log::synth::{Synth, Workload};
use agent::sinks::log::{FsyncPolicy, LogOptions, LogWriter};
use anyhow::{Context, bail};

const GIB: f64 = (1u64 << 30) as f64;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "log").collect();
    let number = |i: usize, default: u64| -> anyhow::Result<u64> {
        args.get(i)
            .map_or(Ok(default), |s| s.parse())
            .with_context(|| {
                format!(
                    "argument {}: usage gt-bench-log [HOURS] [PROCESSES] [FUZZ_RUNS]",
                    i + 1
                )
            })
    };
    let (hours, processes, fuzz_runs) = (number(0, 24)?, number(1, 500)?, number(2, 1_000_000)?);
    let dir = tempfile::tempdir().context("temporary directory")?;
    let log = dir.path().join("log");
    size(&log, hours, processes as usize)?;
    speed(&log)?;
    fuzz(fuzz_runs, dir.path())
}

fn size(dir: &Path, hours: u64, processes: usize) -> anyhow::Result<()> {
    let mut work = Workload::new(processes);
    work.threads = true;
    let mut synth = Synth::new(work);
    let mut opts = LogOptions::new(dir);
    opts.fsync = FsyncPolicy::Never;
    let mut writer = LogWriter::open(opts)?;
    let seconds = hours * 3600;
    let (mut rows, mut json_bytes, mut json_rows) = (0u64, 0u64, 0u64);
    let (mut synth_time, mut write_time) = (Duration::ZERO, Duration::ZERO);
    for second in 0..seconds {
        let t = Instant::now();
        let interval = synth.next_interval();
        synth_time += t.elapsed();
        rows += interval.processes.len() as u64;
        if second < 600 {
            json_bytes += serde_json::to_vec(&interval)?.len() as u64 + 1;
            json_rows += interval.processes.len() as u64;
        }
        let t = Instant::now();
        writer.write(&interval)?;
        write_time += t.elapsed();
    }
    writer.close()?;
    let bytes: u64 = agent::sinks::log::segments::list(dir)?
        .iter()
        .map(|f| f.len)
        .sum();
    let per_row = bytes as f64 / rows as f64;
    let json_per_row = json_bytes as f64 / json_rows as f64;
    let day_gib = per_row * 86_400.0 * 500.0 / GIB;
    println!("log size: {hours} h at 1 s, {processes} active processes, thread rows on");
    println!("  process-intervals          {rows}");
    println!(
        "  bytes on disk              {bytes} ({:.3} GiB)",
        bytes as f64 / GIB
    );
    println!(
        "  bytes/process-interval     {per_row:.2}   (JSON lines: {json_per_row:.1}; log/JSON = {:.3})",
        per_row / json_per_row
    );
    println!(
        "  projected day, 500 procs   {day_gib:.3} GiB   (target 1 GiB: {:.2} of it)",
        day_gib
    );
    println!(
        "  encode+write               {:.2} µs/interval (synthesis {:.0} µs/interval, not counted)",
        write_time.as_secs_f64() * 1e6 / seconds as f64,
        synth_time.as_secs_f64() * 1e6 / seconds as f64
    );
    Ok(())
}

fn speed(dir: &Path) -> anyhow::Result<()> {
    println!(
        "report: agent::report::build over the log above, median of 3 (target 10 s on 2 cores)"
    );
    for by in [GroupBy::Process, GroupBy::Job] {
        let opts = ReportOptions {
            by: Some(by),
            ..ReportOptions::default()
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let report = build(&[dir.to_path_buf()], &opts, &mut |_, _| {})?;
            times.push(t.elapsed().as_secs_f64());
            rows = report.rows.len();
            if !report.notices.is_empty() {
                bail!("the fresh log has damage: {:?}", report.notices);
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[1];
        println!(
            "  --by {by:?}: {median:.2} s (runs {:.2} {:.2} {:.2}), {rows} rows; time/target = {:.2}",
            times[0],
            times[1],
            times[2],
            median / 10.0
        );
    }
    Ok(())
}

/// Coverage flags of libFuzzer's instrumentation, all stable rustc options.
const SANCOV: &str = "--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks";

fn fuzz(runs: u64, scratch: &Path) -> anyhow::Result<()> {
    let fuzz_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let target = "x86_64-unknown-linux-gnu";
    let status = Command::new("cargo")
        .current_dir(&fuzz_dir)
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", SANCOV)
        .args([
            "build",
            "--release",
            "--target",
            target,
            "--bin",
            "log_reader",
        ])
        .status()
        .context("building fuzz/ (cargo)")?;
    if !status.success() {
        bail!("building the fuzz target failed");
    }
    let binary = fuzz_dir.join(format!("target/{target}/release/log_reader"));
    let work = scratch.join("corpus");
    std::fs::create_dir_all(&work)?;
    for entry in std::fs::read_dir(fuzz_dir.join("corpus/log_reader"))? {
        let path = entry?.path();
        std::fs::copy(
            &path,
            work.join(path.file_name().context("corpus file name")?),
        )?;
    }
    let t = Instant::now();
    let out = Command::new(&binary)
        .arg(format!("-runs={runs}"))
        .args(["-max_len=8192", "-seed=1"])
        .arg(format!("-artifact_prefix={}/", scratch.display()))
        .arg(&work)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let last = log.lines().rfind(|l| l.contains("cov:")).unwrap_or("");
    println!(
        "fuzz: log_reader, {runs} executions in {:.1} s: {last}",
        t.elapsed().as_secs_f64()
    );
    if !out.status.success() {
        bail!("the fuzz target found a failure:\n{log}");
    }
    Ok(())
}
