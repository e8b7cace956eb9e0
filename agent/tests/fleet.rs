//! The fleet features end to end, with the built `greentop-agent` (as root, like the
//! other eBPF tests): a live `/metrics` scrape holds exactly the energy the printed
//! Intervals measured and passes `promtool check metrics`; every metric the Grafana
//! dashboard queries exists; non-loopback binds need `--metrics-allow-remote`; a
//! forced map overflow in the kernel shows up as a (throttled) log line. Running as
//! an unprivileged user: least_privilege.rs.
mod fleet_support;

use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use agent::energy::testkit::{FifoCounter, at_watts};
use agent::sinks::metrics::scrape::{Sample, names, samples, sum};
use fleet_support::*;

/// One agent at a time: each loads eBPF programs and keeps CPUs busy.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn scrape(agent: &Agent) -> (String, Vec<Sample>) {
    let (head, body) = agent.get("/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let parsed = samples(&body).unwrap();
    (body, parsed)
}

/// Scrapes until the metrics output has applied more than `after` intervals; the
/// text, the samples and that count.
fn scrape_past(agent: &Agent, after: usize) -> (String, Vec<Sample>, usize) {
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (text, all) = scrape(agent);
        let applied = sum(&all, "greentop_agent_intervals_total", &[]) as usize;
        if applied > after {
            return (text, all, applied);
        }
        assert!(
            Instant::now() < deadline,
            "the metrics applied no interval past {after} in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn a_live_scrape_holds_what_the_intervals_measured_and_passes_promtool() {
    let _one = serial();
    let sysfs = powercap_copy("one-socket");
    let package = FifoCounter::serve(
        &energy_file(sysfs.path(), "intel-rapl:0"),
        at_watts(0, 30.0),
    );
    let dram_file = energy_file(sysfs.path(), "intel-rapl:0:2");
    let dram = FifoCounter::serve_with(&package, &dram_file, at_watts(0, 3.0));
    let config = empty_config(sysfs.path());
    let mut command = Command::new(agent_bin());
    command.args(["--no-gpu", "--interval-s", "0.3", "--intensity", "100"]);
    command.args(["--metrics-addr", "127.0.0.1:0", "--sysfs-root"]);
    command.arg(sysfs.path()).arg("--config").arg(&config);
    let agent = Agent::start(command);
    let mut intervals = vec![agent.interval()];
    // The first scrape after an interval reached the metrics sees every node counter
    // at 0 (held back until scraped once); an interval applied after it releases
    // what was held back. The metrics may run behind the JSON lines on a loaded
    // machine, so both are waited for by what the scrape says it applied.
    let (_, _, seen) = scrape_past(&agent, 0);
    let (text, all, applied) = scrape_past(&agent, seen);
    while intervals.len() < applied {
        intervals.push(agent.interval());
    }
    let measured = &intervals[..applied];
    let energy = "greentop_node_energy_joules_total";
    for kind in ["package", "dram"] {
        let got = sum(
            &all,
            energy,
            &[("domain", kind), ("source", "rapl-powercap")],
        );
        let want: f64 = measured
            .iter()
            .map(|i| domain_joules(i, kind, "rapl-powercap"))
            .sum();
        assert!(
            want > 0.0 && close(got, want),
            "{kind}: scraped {got} J, intervals {want} J"
        );
    }
    let co2: f64 = measured.iter().map(|i| i.system.gco2).sum();
    let got = sum(&all, "greentop_node_co2_grams_total", &[]);
    assert!(close(got, co2), "co2: scraped {got} g, intervals {co2} g");
    promtool_passes(&text);
    dashboard_metrics_exist(&all);
    // The metrics are an output like the others: a queue in system.sinks, and each
    // output's drop and error counters from the start.
    let last = intervals.last().unwrap();
    for output in ["json", "metrics"] {
        assert!(
            last.system.sinks.iter().any(|s| s.name == output),
            "{output} in system.sinks: {:?}",
            last.system.sinks
        );
        for counter in ["dropped_intervals", "errors"] {
            let name = format!("greentop_agent_sink_{counter}_total");
            let found = all
                .iter()
                .any(|s| s.name == name && s.label("sink") == output);
            assert!(found, "{name}{{sink=\"{output}\"}}");
        }
    }
    print_scrape_latency(&agent);
    drop(agent);
    drop((package, dram));
}

/// `promtool check metrics` (Debian's `prometheus`, installed by `cargo xtask setup`).
fn promtool_passes(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): `cargo xtask setup` installs Debian's prometheus")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    println!("promtool check metrics: {} {said}", out.status);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

/// Every `greentop_*` name in the dashboard's queries has samples in the scrape.
fn dashboard_metrics_exist(all: &[Sample]) {
    let path = repo_file("docs/deploy/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 8,
        "{} queries in {}",
        exprs.len(),
        path.display()
    );
    let scraped = names(all);
    let mut checked = 0;
    for expr in &exprs {
        for name in metric_names(expr) {
            assert!(
                scraped.contains(name.as_str()),
                "{name} (in {expr:?}) is not exported"
            );
            checked += 1;
        }
    }
    println!(
        "dashboard: {} queries, {checked} metric references, all exported",
        exprs.len()
    );
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// `greentop_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("greentop_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Scrape latency over loopback, median and worst of 25 (reported, not asserted).
fn print_scrape_latency(agent: &Agent) {
    let mut ms: Vec<f64> = (0..25)
        .map(|_| {
            let start = Instant::now();
            agent.get("/metrics");
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let (_, body) = agent.get("/metrics");
    let series = body.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "scrape latency: median {:.2} ms, worst {:.2} ms (25 scrapes of {series} series, {} bytes)",
        ms[12],
        ms[24],
        body.len()
    );
}

#[test]
fn metrics_stay_on_loopback_unless_remote_is_allowed() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = empty_config(dir.path());
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = Command::new(agent_bin())
            .args(["--no-gpu", "--metrics-addr", addr, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {err}");
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(err.contains("--metrics-allow-remote"), "{err}");
    }
    let file = dir.path().join("remote.toml");
    std::fs::write(&file, "[metrics]\naddr = \"0.0.0.0:0\"\n").unwrap();
    let out = Command::new(agent_bin())
        .args(["--no-gpu", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "from the config file too");
    let mut command = Command::new(agent_bin());
    command
        .args(["--no-gpu", "--interval-s", "0.5", "--config"])
        .arg(&config);
    command.args(["--metrics-addr", "0.0.0.0:0", "--metrics-allow-remote"]);
    let agent = Agent::start(command);
    let addr = agent.metrics.expect("serving");
    assert!(addr.ip().is_unspecified(), "{addr}");
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
    assert!(http_get(local, "/metrics").0.starts_with("HTTP/1.1 200"));
    drop(agent);
    let mut command = Command::new(agent_bin());
    command
        .args(["--no-gpu", "--interval-s", "0.5", "--config"])
        .arg(&config);
    let quiet = Agent::start(command);
    quiet.interval();
    assert!(quiet.metrics.is_none(), "off unless asked for");
    assert!(
        !quiet
            .stderr_lines()
            .iter()
            .any(|l| l.contains("metrics on"))
    );
}

#[test]
fn a_full_map_in_the_kernel_is_a_log_line_but_never_one_per_event() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = empty_config(dir.path());
    let mut command = Command::new(agent_bin());
    command.args([
        "--ledger",
        "ebpf",
        "--no-gpu",
        "--interval-s",
        "0.3",
        "--config",
    ]);
    command.arg(&config);
    command.args([
        "--ledger-table-slots",
        "2",
        "--ledger-overflow-entries",
        "4",
    ]);
    command.env("RUST_LOG", "agent=info,greentop_ebpf=warn");
    let mut agent = Agent::start(command);
    let line = agent.wait_stderr("ledger overflow map full");
    // Target greentop_ebpf (not printed: the agent's messages carry no target).
    assert!(line.trim_start().starts_with("WARN"), "{line}");
    let dropped: u64 = (0..5)
        .map(|_| agent.interval().system.ledger_health.dropped_slices)
        .sum();
    let logged = agent
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("ledger overflow map full"))
        .count() as u64;
    let cpus = std::thread::available_parallelism().map_or(64, |n| n.get()) as u64;
    // At the 1st, 2nd, 4th, … drop per CPU: at most log2(drops) + 1 lines each,
    // counting generously (×64) for drops while loading, which no interval reports.
    let bound = cpus * (64 - (dropped.max(1) * 64).leading_zeros() as u64 + 1);
    println!("{dropped} slices dropped in 5 intervals, {logged} log lines (bound {bound})");
    assert!(dropped > logged, "{dropped} drops, {logged} lines");
    assert!(logged <= bound, "{logged} lines > {bound}");
}
