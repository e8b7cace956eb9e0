//! `gt-bench-agent [SECS] [RUNS]`: greentop-agent as a daemon at a 1 s interval
//! (real eBPF ledger; needs root), side by side in each run:
//!
//! - A: JSON lines to /dev/null (what the agent did before it was a daemon);
//! - B: the binary log (fsync every second) and the socket with one client.
//!
//! For each, the agent's CPU time over SECS (default 60) after a 3 s start, as %
//! of one CPU (utime + stime from /proc/PID/stat); for B, the tick-to-socket
//! latency: the client's receive time minus the Interval's `ts` (stamped when the
//! pipeline built it; milliseconds, so each figure may read up to 1 ms high).
//! RUNS (default 3) runs, medians printed last.
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, SystemTime};

use agent::sinks::socket::stream::IntervalStream;
use anyhow::Context;

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

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').context("stat")? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(at).copied().unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "agent").collect();
    let secs: u64 = args.first().map_or(Ok(60), |s| s.parse())?;
    let runs: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
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
        let (med, p99) = (median(&mut lat), percentile(&mut lat, 0.99));
        let max = lat.iter().copied().fold(f64::NAN, f64::max);
        println!(
            "{run:>3}  {a:>19.2}  {b:>15.2}  {:>5.2}  {med:>19.2}  {p99:>4.2}  {max:>4.2}  ({n})",
            b / a
        );
        json_cpu.push(a);
        daemon_cpu.push(b);
        all.extend(lat);
    }
    let (a, b) = (median(&mut json_cpu), median(&mut daemon_cpu));
    println!(
        "median  JSON {a:.2} %  log+socket {b:.2} %  ratio {:.2}  latency median {:.2} ms, p99 {:.2} ms over {} intervals",
        b / a,
        median(&mut all),
        percentile(&mut all, 0.99),
        all.len()
    );
    Ok(())
}
