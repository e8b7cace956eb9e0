//! `gt-bench-agent [SECS] [RUNS] [--json FILE]`: greentop-agent as a daemon at a 1 s interval
//! (real eBPF ledger; needs root), side by side in each run:
//!
//! - A: JSON lines to /dev/null (what the agent did before it was a daemon);
//! - B: the binary log (fsync every second) and the socket with one client.
//!
//! For each, the agent's CPU time over SECS (default 60) after a 3 s start, as %
//! of one CPU (its CPU-time clock); for B, the tick-to-socket
//! latency: the client's receive time minus the Interval's `ts` (stamped when the
//! pipeline built it; milliseconds, so each figure may read up to 1 ms high).
//! RUNS (default 3) runs, medians printed last; `--json FILE` writes them as one
//! block of `cargo xtask bench`'s table.
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, SystemTime};

use agent::sinks::socket::stream::IntervalStream;
use anyhow::Context;
use greentop_tests::benchkit::table::{Block, num};
use greentop_tests::benchkit::{median, process_cpu_ns};

/// Killed and reaped when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("greentop-agent");
    anyhow::ensure!(
        path.exists(),
        "{} not built (cargo xtask bench agent builds it)",
        path.display()
    );
    Ok(path)
}

/// CPU time of a process, seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(process_cpu_ns(pid).context("the agent's CPU clock")? as f64 / 1e9)
}

/// The agent's CPU % of one CPU over `secs`, and the client's latencies (ms).
fn measure(args: &[&str], secs: u64, socket: Option<&Path>) -> anyhow::Result<(f64, Vec<f64>)> {
    let child = Command::new(agent_binary()?)
        .args(["--no-gpu", "--interval", "1"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn greentop-agent")?;
    let agent = Agent(child);
    std::thread::sleep(Duration::from_secs(3));
    let (tx, rx) = channel();
    if let Some(path) = socket {
        let stream = UnixStream::connect(path).context("connect to the agent")?;
        std::thread::spawn(move || {
            let Ok(intervals) = IntervalStream::open(stream) else {
                return;
            };
            for interval in intervals.map_while(Result::ok) {
                let now = SystemTime::now();
                let Ok(ts) = humantime::parse_rfc3339(&interval.ts) else {
                    continue;
                };
                let ms = now.duration_since(ts).unwrap_or_default().as_secs_f64() * 1e3;
                if tx.send(ms).is_err() {
                    return;
                }
            }
        });
    }
    let pid = agent.0.id();
    let before = cpu_seconds(pid)?;
    std::thread::sleep(Duration::from_secs(secs));
    let used = cpu_seconds(pid)? - before;
    drop(agent);
    let latencies: Vec<f64> = rx.try_iter().collect();
    Ok((100.0 * used / secs as f64, latencies))
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(at).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| a != "agent").collect();
    let json = match args.iter().position(|a| a == "--json") {
        Some(at) => {
            anyhow::ensure!(at + 1 < args.len(), "--json needs a FILE");
            let path = args.remove(at + 1);
            args.remove(at);
            Some(path)
        }
        None => None,
    };
    let secs: u64 = args.first().map_or(Ok(60), |s| s.parse()).context("SECS")?;
    let runs: usize = args.get(1).map_or(Ok(3), |s| s.parse()).context("RUNS")?;
    let load_before = greentop_tests::benchkit::load_average();
    let dir = tempfile::tempdir()?;
    let (mut json_cpu, mut daemon_cpu, mut all) = (Vec::new(), Vec::new(), Vec::new());
    println!("run  json→/dev/null CPU%  log+socket CPU%  ratio  latency ms: median  p99  max  (n)");
    for run in 1..=runs {
        let (a, _) = measure(&["--json"], secs, None)?;
        let sock = dir.path().join(format!("agent-{run}.sock"));
        let log = dir.path().join(format!("log-{run}"));
        let b_args = [
            "--log-dir",
            log.to_str().context("path")?,
            "--socket",
            sock.to_str().context("path")?,
        ];
        let (b, mut lat) = measure(&b_args, secs, Some(&sock))?;
        let n = lat.len();
        let (med, p99) = (median(&lat), percentile(&mut lat, 0.99));
        let max = lat.iter().copied().fold(f64::NAN, f64::max);
        println!(
            "{run:>3}  {a:>19.2}  {b:>15.2}  {:>5.2}  {med:>19.2}  {p99:>4.2}  {max:>4.2}  ({n})",
            b / a
        );
        json_cpu.push(a);
        daemon_cpu.push(b);
        all.extend(lat);
    }
    let (a, b) = (median(&json_cpu), median(&daemon_cpu));
    let ratios: Vec<f64> = daemon_cpu
        .iter()
        .zip(&json_cpu)
        .map(|(b, a)| b / a)
        .collect();
    let latency = [median(&all), percentile(&mut all, 0.99)];
    println!(
        "median  JSON {a:.2} %  log+socket {b:.2} %  ratio {:.2}  latency median {:.2} ms, p99 {:.2} ms over {} intervals",
        median(&ratios),
        latency[0],
        latency[1],
        all.len()
    );
    if let Some(path) = json {
        let mut block = Block::new(
            "The daemon's outputs",
            &format!("cargo xtask bench agent {secs} {runs}"),
            &["figure", "median", "target"],
        );
        block.load_before = load_before;
        block.row(vec![
            "greentop-agent, JSON lines to /dev/null".into(),
            format!("{} % of one core", num(a, 2)),
            String::new(),
        ]);
        block.row(vec![
            "greentop-agent, binary log (fsync 1 s) + socket with one client".into(),
            format!("{} % of one core", num(b, 2)),
            String::new(),
        ]);
        block.row(vec![
            "log+socket / JSON lines, same round".into(),
            num(median(&ratios), 2),
            String::new(),
        ]);
        block.row(vec![
            "tick to socket client".into(),
            format!(
                "{} ms (p99 {} ms, {} intervals)",
                num(latency[0], 2),
                num(latency[1], 2),
                all.len()
            ),
            String::new(),
        ]);
        block.note(format!(
            "{runs} rounds; in each, the agent at a 1 s interval with its real eBPF ledger, \
             its CPU-time clock over {secs} s after a 3 s start, first printing JSON lines \
             to /dev/null, then writing the log and serving the socket. Latency: the \
             client's receive time minus the Interval's `ts` (milliseconds, so up to 1 ms high)."
        ));
        std::fs::write(&path, serde_json::to_string_pretty(&[block])?)
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
