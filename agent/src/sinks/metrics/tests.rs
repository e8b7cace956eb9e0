//! The exporter on synthetic Intervals (real attribution, `log::synth`): the totals
//! add up in every scrape as PromQL's `increase()` would see them, no series ever
//! goes down, the series count stays bounded, and both formats encode.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::scrape::{Sample, samples, sum, types};
use super::*;
use crate::model::Interval;
use crate::sinks::log::synth::{Synth, Workload};

/// Synthetic intervals; with `own_jobs`, every process is its own job.
fn intervals(processes: usize, n: usize, own_jobs: bool) -> Vec<Interval> {
    let mut work = Workload::new(processes);
    work.threads = false;
    let mut synth = Synth::new(work);
    (0..n)
        .map(|_| {
            let mut interval = synth.next_interval();
            if own_jobs {
                for p in &mut interval.processes {
                    p.job = Some(format!("tree:{}:{}", p.comm, p.pid));
                }
            }
            interval
        })
        .collect()
}

fn scrape(metrics: &Metrics) -> Vec<Sample> {
    samples(&metrics.encode(Format::Prometheus)).unwrap()
}

type Series = BTreeMap<(String, Vec<(String, String)>), f64>;

fn series(samples: &[Sample], prefix: &str) -> Series {
    samples
        .iter()
        .filter(|s| s.name.starts_with(prefix))
        .map(|s| {
            let labels = s.labels.clone().into_iter().collect();
            ((s.name.clone(), labels), s.value)
        })
        .collect()
}

/// What `increase()` sees since the last scrape, summed over the series of `name`:
/// `seen` holds every series' last sample so far (a series may be gone for a while
/// and come back); a series never seen before must start at 0 (its first sample is
/// its base).
fn increase(seen: &Series, now: &Series, name: &str) -> f64 {
    increase_and_returns(seen, now, name, &Series::new()).0
}

/// `increase`, and how many series of `name` came back (absent from `last`, the
/// previous scrape, but seen before it).
fn increase_and_returns(seen: &Series, now: &Series, name: &str, last: &Series) -> (f64, usize) {
    let (mut total, mut returns) = (0.0, 0);
    for ((metric, labels), value) in now.range((name.to_string(), Vec::new())..) {
        if metric != name {
            break;
        }
        match seen.get(&(metric.clone(), labels.clone())) {
            Some(old) => {
                assert!(
                    value >= old,
                    "{metric}{labels:?} went down: {old} → {value}"
                );
                total += value - old;
                let key = (metric.clone(), labels.clone());
                returns += usize::from(!last.is_empty() && !last.contains_key(&key));
            }
            None => assert_eq!(*value, 0.0, "{metric}{labels:?} born at {value}, not 0"),
        }
    }
    (total, returns)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn totals_add_up_in_every_scrape_and_nothing_goes_down() {
    let opts = MetricsOptions {
        top_n: 5,
        grace: Duration::from_secs(3),
    };
    let metrics = Metrics::new(opts);
    let t0 = Instant::now();
    let first = scrape(&metrics);
    let mut seen = (
        series(&first, "greentop_process_"),
        series(&first, "greentop_job_"),
    );
    assert_eq!(seen.0.len(), 5, "only the `other` series, at 0");
    let mut node_before = 0.0;
    let mut applied = Vec::new();
    let (mut last, mut returns) = (Series::new(), 0);
    for (k, interval) in intervals(200, 60, true).iter().enumerate() {
        metrics.apply(interval, t0 + Duration::from_secs(k as u64));
        applied.push(interval.clone());
        if k % 3 != 2 {
            continue;
        }
        let all = scrape(&metrics);
        let now = (
            series(&all, "greentop_process_"),
            series(&all, "greentop_job_"),
        );
        for (process, job, field) in [
            ("cpu_joules", "cpu_joules", 0),
            ("dram_joules", "dram_joules", 1),
            ("co2_grams", "co2_grams", 2),
        ] {
            let p_name = format!("greentop_process_{process}_total");
            let j_name = format!("greentop_job_{job}_total");
            let by_process = increase(&seen.0, &now.0, &p_name);
            let by_job = increase(&seen.1, &now.1, &j_name);
            let want: f64 = applied
                .iter()
                .flat_map(|i| &i.processes)
                .map(|p| [p.cpu_joules, p.dram_joules, p.gco2][field])
                .sum();
            assert!(close(by_process, want), "{process}: {by_process} vs {want}");
            assert!(close(by_job, want), "{job}: {by_job} vs {want}");
        }
        let node = sum(&all, "greentop_node_attributed_joules_total", &[]);
        let want: f64 = applied
            .iter()
            .map(|i| i.system.balance.cpu.attributed_j + i.system.balance.dram.attributed_j)
            .sum();
        assert!(close(node - node_before, want), "node {node} vs {want}");
        let name = "greentop_process_cpu_joules_total";
        returns += increase_and_returns(&seen.0, &now.0, name, &last).1;
        last = now.0.clone();
        node_before = node;
        applied.clear();
        seen.0.extend(now.0);
        seen.1.extend(now.1);
    }
    let (processes, jobs) = metrics.series_counts();
    assert!(processes <= 10 && jobs <= 10, "{processes} {jobs}");
    let distinct = seen
        .0
        .keys()
        .filter(|(n, _)| n.ends_with("cpu_joules_total"))
        .count();
    assert!(distinct > 20, "series came and went: {distinct} seen");
    assert!(returns > 0, "some series went away and came back");
}

#[test]
fn node_energy_is_the_intervals_and_a_new_domain_waits_for_a_scrape() {
    let metrics = Metrics::new(MetricsOptions::default());
    let all = intervals(20, 4, false);
    let t0 = Instant::now();
    metrics.apply(&all[0], t0);
    let first = scrape(&metrics);
    let name = "greentop_node_energy_joules_total";
    let package = [("domain", "package"), ("source", "rapl-powercap")];
    assert_eq!(sum(&first, name, &package), 0.0, "new series start at 0");
    for interval in &all[1..] {
        metrics.apply(interval, t0);
    }
    let want: f64 = all
        .iter()
        .flat_map(|i| &i.system.energy)
        .filter(|d| d.kind == "package")
        .map(|d| d.joules)
        .sum();
    let got = sum(&scrape(&metrics), name, &package);
    assert!(close(got, want), "{got} vs {want}: held back, never lost");
    let measured = [("domain", "package"), ("measured", "true")];
    assert!(sum(&scrape(&metrics), name, &measured) > 0.0);
}

#[test]
fn a_thousand_processes_stay_within_bounded_series() {
    for (own_jobs, top_n) in [(true, 20), (false, 20), (true, 5)] {
        let metrics = Metrics::new(MetricsOptions {
            top_n,
            grace: Duration::from_secs(30),
        });
        let t0 = Instant::now();
        let (mut most, mut encode_ms) = (0, Vec::new());
        for (k, interval) in intervals(1000, 120, own_jobs).iter().enumerate() {
            metrics.apply(interval, t0 + Duration::from_secs(k as u64));
            let started = Instant::now();
            let text = metrics.encode(Format::Prometheus);
            encode_ms.push(started.elapsed().as_secs_f64() * 1e3);
            let lines = text.lines().filter(|l| !l.starts_with('#')).count();
            most = most.max(lines);
        }
        encode_ms.sort_by(f64::total_cmp);
        let (processes, jobs) = metrics.series_counts();
        // Per process or job label set: 5 metrics; plus one `other` per job with a
        // series, one global `other` each, and the node and health metrics.
        let bound = 5 * (2 * top_n + 2 * top_n + 1) + 5 * (2 * top_n + 1) + 120;
        println!(
            "1000 processes, own jobs {own_jobs}, top {top_n}: at most {most} series \
             ({processes} processes and {jobs} jobs with their own at the end); \
             encoding a scrape: median {:.2} ms",
            encode_ms[encode_ms.len() / 2]
        );
        assert!(processes <= 2 * top_n && jobs <= 2 * top_n);
        assert!(most <= bound, "{most} series > {bound}");
    }
}

#[test]
fn both_formats_encode_and_name_every_counter_total() {
    let metrics = Metrics::new(MetricsOptions::default());
    for interval in intervals(10, 3, false) {
        metrics.apply(&interval, Instant::now());
        metrics.observe_tick(Duration::from_millis(3));
    }
    metrics.register_sink("json");
    metrics.count_sink_drops("log", 2);
    metrics.count_sink_error("log");
    let text = metrics.encode(Format::Prometheus);
    let declared = types(&text);
    for (name, kind) in &declared {
        assert!(name.starts_with("greentop_"), "{name}");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name}: {kind}"
        );
    }
    for name in [
        "greentop_process_cpu_joules_total",
        "greentop_process_gpu_joules_total",
        "greentop_process_co2_grams_total",
        "greentop_job_cpu_seconds_total",
        "greentop_node_energy_joules_total",
        "greentop_agent_tick_duration_seconds",
        "greentop_agent_sink_dropped_intervals_total",
    ] {
        assert!(declared.contains_key(name), "{name} missing");
    }
    let all = samples(&text).unwrap();
    let drops = "greentop_agent_sink_dropped_intervals_total";
    assert_eq!(sum(&all, drops, &[("sink", "log")]), 2.0);
    let json = all
        .iter()
        .find(|s| s.name == drops && s.label("sink") == "json");
    assert_eq!(
        json.map(|s| s.value),
        Some(0.0),
        "registered sinks start at 0"
    );
    assert_eq!(
        sum(&all, "greentop_agent_tick_duration_seconds_count", &[]),
        3.0
    );
    assert_eq!(sum(&all, "greentop_agent_intervals_total", &[]), 3.0);
    let open = metrics.encode(Format::OpenMetrics);
    assert!(open.ends_with("# EOF\n"), "OpenMetrics ends with EOF");
    assert!(open.contains("# UNIT greentop_process_cpu_joules joules"));
    assert_eq!(Format::from_accept(None), Format::Prometheus);
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
    assert_eq!(Format::from_accept(Some(accept)), Format::OpenMetrics);
}

#[test]
fn exited_processes_leave_after_grace_and_labels_carry_the_job() {
    let metrics = Metrics::new(MetricsOptions {
        top_n: 3,
        grace: Duration::from_secs(5),
    });
    let mut interval = intervals(3, 1, false).remove(0);
    interval.processes[0].job = Some("slurm:7".into());
    let t0 = Instant::now();
    metrics.apply(&interval, t0);
    scrape(&metrics);
    interval.processes.iter_mut().for_each(|p| p.exited = true);
    metrics.apply(&interval, t0 + Duration::from_secs(1));
    let all = scrape(&metrics);
    let pid = interval.processes[0].pid.to_string();
    let name = "greentop_process_cpu_joules_total";
    let own = all
        .iter()
        .find(|s| s.name == name && s.label("pid") == pid)
        .expect("the exited process still has its series");
    assert_eq!(own.label("job"), "slurm:7");
    assert!(own.value > 0.0);
    metrics.apply(&Interval::default(), t0 + Duration::from_secs(7));
    let all = scrape(&metrics);
    assert!(
        !all.iter().any(|s| s.name == name && s.label("pid") == pid),
        "gone after the grace period"
    );
    assert_eq!(metrics.series_counts().0, 0);
}
