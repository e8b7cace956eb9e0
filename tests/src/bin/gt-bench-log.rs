//! `gt-bench-log [HOURS] [PROCESSES] [FUZZ_RUNS] [--rounds N] [--json FILE]`: the
//! binary log's size and
//! `greentop report`'s speed on a day of synthetic intervals, and the reader's
//! fuzz target run for a fixed number of executions.
//!
//! 1. Writes HOURS (default 24) of 1 s intervals of PROCESSES (default 500)
//!    active processes (a quarter with 4 threads, thread rows on, 1 in 50
//!    replaced each second; energies from the real attribution) with the real
//!    writer, timing encode+write per interval in N slices of the run, and prints bytes on disk per process-interval and the projection to
//!    a day, beside the same intervals as JSON lines (what greentop-agent printed
//!    before the log).
//! 2. Times `agent::report::build` over that log (the code behind `greentop
//!    report`), by process and by job, median of N (default 3), beside the 10 s target.
//! 3. Builds fuzz/ on stable with libFuzzer's coverage flags and runs the reader
//!    target FUZZ_RUNS (default 1,000,000; 0: not built nor run) times over a copy
//!    of the corpus.
//!
//! `--json FILE` writes the size and speed figures as one block of `cargo xtask
//! bench`'s table.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent::report::{GroupBy, ReportOptions, build};
use agent::sinks::Sink;
use agent::sinks::log::synth::{Synth, Workload};
use agent::sinks::log::{FsyncPolicy, LogOptions, LogWriter};
use anyhow::{Context, bail};
use greentop_tests::benchkit::median;
use greentop_tests::benchkit::table::{Block, num};

const GIB: f64 = (1u64 << 30) as f64;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| a != "log").collect();
    let json = take_option(&mut args, "--json")?;
    let rounds: usize = take_option(&mut args, "--rounds")?
        .map_or(Ok(3), |r| r.parse())
        .context("--rounds")?;
    let load_before = greentop_tests::benchkit::load_average();
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
    let size = size(&log, hours, processes as usize, rounds)?;
    let speed = speed(&log, rounds)?;
    if let Some(path) = json {
        let mut block = table_block(&size, &speed, hours, processes, rounds);
        block.load_before = load_before;
        std::fs::write(&path, serde_json::to_string_pretty(&[block])?)
            .with_context(|| format!("writing {path}"))?;
    }
    if fuzz_runs > 0 {
        fuzz(fuzz_runs, dir.path())?;
    }
    Ok(())
}

/// Removes `name VALUE` from `args`; the value.
fn take_option(args: &mut Vec<String>, name: &str) -> anyhow::Result<Option<String>> {
    let Some(at) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    anyhow::ensure!(at + 1 < args.len(), "{name} needs a value");
    let value = args.remove(at + 1);
    args.remove(at);
    Ok(Some(value))
}

/// The log's size and write cost.
struct Size {
    per_row: f64,
    json_per_row: f64,
    day_gib: f64,
    /// Median over the run's slices, µs of encode+write per interval.
    write_us: f64,
}

/// Medians of `report`, seconds: by process, by job.
struct Speed {
    by_process: f64,
    by_job: f64,
}

fn table_block(size: &Size, speed: &Speed, hours: u64, processes: u64, rounds: usize) -> Block {
    let met = |ok: bool| if ok { "met" } else { "missed" };
    let mut block = Block::new(
        "Log and report",
        &format!("cargo xtask bench log {hours} {processes} 0 --rounds {rounds}"),
        &["figure", "median", "target"],
    );
    block.row(vec![
        "bytes per active-process-interval".into(),
        format!(
            "{} (JSON lines: {})",
            num(size.per_row, 2),
            num(size.json_per_row, 1)
        ),
        format!(
            "a day of 500 processes ≤ 1 GiB: {} GiB, {}",
            num(size.day_gib, 3),
            met(size.day_gib <= 1.0)
        ),
    ]);
    block.row(vec![
        format!("encode + write, one interval of {processes} processes"),
        format!(
            "{} µs ({} process-intervals/s)",
            num(size.write_us, 0),
            num(processes as f64 / size.write_us * 1e6, 0)
        ),
        String::new(),
    ]);
    for (by, secs) in [("process", speed.by_process), ("job", speed.by_job)] {
        block.row(vec![
            format!("`greentop report --by {by}` over the {hours} h log"),
            format!("{} s", num(secs, 2)),
            format!("≤ 10 s: {}", met(secs <= 10.0)),
        ]);
    }
    block.note(format!(
        "A synthetic log of {hours} h at 1 s of {processes} active processes (a quarter with 4 threads, \
         thread rows on, 1 in 50 replaced each second) written by the real LogWriter, fsync off; \
         the size is deterministic (seeded). Write: median over {rounds} slices of the run. Report: \
         `agent::report::build` (the code behind `greentop report`), median of {rounds} runs."
    ));
    block
}

fn size(dir: &Path, hours: u64, processes: usize, slices: usize) -> anyhow::Result<Size> {
    let mut work = Workload::new(processes);
    work.threads = true;
    let mut synth = Synth::new(work);
    let mut opts = LogOptions::new(dir);
    opts.fsync = FsyncPolicy::Never;
    let mut writer = LogWriter::open(opts)?;
    let seconds = hours * 3600;
    let (mut rows, mut json_bytes, mut json_rows) = (0u64, 0u64, 0u64);
    let (mut synth_time, mut write_time) = (Duration::ZERO, Duration::ZERO);
    let per_slice = (seconds / slices.max(1) as u64).max(1);
    let (mut slice_time, mut slice_us) = (Duration::ZERO, Vec::new());
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
        slice_time += t.elapsed();
        if (second + 1) % per_slice == 0 {
            slice_us.push(slice_time.as_secs_f64() * 1e6 / per_slice as f64);
            slice_time = Duration::ZERO;
        }
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
    Ok(Size {
        per_row,
        json_per_row,
        day_gib,
        write_us: median(&slice_us),
    })
}

fn speed(dir: &Path, rounds: usize) -> anyhow::Result<Speed> {
    println!(
        "report: agent::report::build over the log above, median of {rounds} (target 10 s on 2 cores)"
    );
    let mut medians = Vec::new();
    for by in [GroupBy::Process, GroupBy::Job] {
        let opts = ReportOptions {
            by: Some(by),
            ..ReportOptions::default()
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let report = build(&[dir.to_path_buf()], &opts, &mut |_, _| {})?;
            times.push(t.elapsed().as_secs_f64());
            rows = report.rows.len();
            if !report.notices.is_empty() {
                bail!("the fresh log has damage: {:?}", report.notices);
            }
        }
        let median = median(&times);
        println!(
            "  --by {by:?}: {median:.2} s (runs {times:.2?}), {rows} rows; time/target = {:.2}",
            median / 10.0
        );
        medians.push(median);
    }
    Ok(Speed {
        by_process: medians[0],
        by_job: medians[1],
    })
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
