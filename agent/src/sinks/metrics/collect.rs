//! Encodes the exporter's state at each scrape through prometheus-client's
//! `Collector`: every series from one consistent snapshot (the state is locked for
//! the whole scrape). Names, units and labels: docs/metrics.md.
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::labels::{DomainLabels, JobLabels, OTHER, ProcessLabels};
use super::state::{Energy, State, lock};

/// The shared state, encoded at each scrape.
#[derive(Debug)]
pub(super) struct StateCollector {
    pub state: Arc<Mutex<State>>,
    /// Unix time the exporter was created (the agent's start, for restarts).
    pub start_unix_s: f64,
}

/// One energy figure of [`Energy`] per metric: name, help, unit, field.
type EnergyMetric = (&'static str, &'static str, Unit, fn(&Energy) -> f64);

const ENERGY_METRICS: [EnergyMetric; 5] = [
    ("cpu", "CPU package energy", Unit::Joules, |e| e.cpu_joules),
    ("dram", "DRAM energy", Unit::Joules, |e| e.dram_joules),
    ("gpu", "GPU energy", Unit::Joules, |e| e.gpu_joules),
    ("co2", "Carbon of the energy, × PUE", Unit::Grams, |e| {
        e.co2_grams
    }),
    ("cpu", "On-CPU time", Unit::Seconds, |e| e.cpu_seconds),
];

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut state = lock(&self.state);
        // Counted before reading, under the same lock: a change made before this
        // point is in what this scrape reads.
        state.scrapes += 1;
        encode_processes(&state, &mut encoder)?;
        encode_jobs(&state, &mut encoder)?;
        encode_node(&state, &mut encoder)?;
        encode_health(&state, self.start_unix_s, &mut encoder)
    }
}

/// Counters `name` with one series per item.
fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    desc: (&str, &str, Option<&Unit>),
    series: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), fmt::Error> {
    family(encoder, desc, MetricType::Counter, series)
}

/// Gauges `name` with one series per item.
fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    desc: (&str, &str, Option<&Unit>),
    series: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), fmt::Error> {
    family(encoder, desc, MetricType::Gauge, series)
}

fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    (name, help, unit): (&str, &str, Option<&Unit>),
    kind: MetricType,
    series: impl IntoIterator<Item = (L, f64)>,
) -> Result<(), fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in series {
        let one = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(one)?,
            _ => ConstGauge::new(value).encode(one)?,
        }
    }
    Ok(())
}

/// A metric without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    desc: (&str, &str, Option<&Unit>),
    kind: MetricType,
    value: f64,
) -> Result<(), fmt::Error> {
    let metric = encoder.encode_descriptor(desc.0, desc.1, desc.2, kind)?;
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(metric),
        _ => ConstGauge::new(value).encode(metric),
    }
}

fn encode_processes(state: &State, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
    let mut series: Vec<(Cow<ProcessLabels>, &Energy)> = state
        .processes
        .active()
        .map(|(labels, energy)| (Cow::Borrowed(labels), energy))
        .collect();
    for (job, value) in state.jobs.active() {
        series.push((Cow::Owned(State::other_labels(job)), &value.other));
    }
    series.push((
        Cow::Owned(State::other_labels(OTHER)),
        &state.other_processes,
    ));
    for (what, help, unit, field) in ENERGY_METRICS {
        let name = format!("greentop_process_{what}");
        let help = format!("{help} attributed to the process since its series began");
        // Labels are cloned per series and metric: a scrape is rare and small.
        let values = series.iter().map(|(l, e)| (l.as_ref().clone(), field(e)));
        counters(encoder, (&name, &help, Some(&unit)), values)?;
    }
    Ok(())
}

fn encode_jobs(state: &State, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
    let mut series: Vec<(JobLabels, &Energy)> = state
        .jobs
        .active()
        .map(|(job, value)| (JobLabels { job: job.clone() }, &value.total))
        .collect();
    let other = JobLabels {
        job: OTHER.to_string(),
    };
    series.push((other, &state.other_jobs));
    for (what, help, unit, field) in ENERGY_METRICS {
        let name = format!("greentop_job_{what}");
        let help = format!("{help} attributed to the job's processes since its series began");
        let values = series.iter().map(|(l, e)| (l.clone(), field(e)));
        counters(encoder, (&name, &help, Some(&unit)), values)?;
    }
    Ok(())
}

fn encode_node(state: &State, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
    let node = &state.node;
    let domain = |(kind, index, source, measured): &(String, u32, String, bool)| DomainLabels {
        domain: kind.clone(),
        index: index.to_string(),
        source: source.clone(),
        measured: measured.to_string(),
    };
    let joules = Some(&Unit::Joules);
    let energy = node.energy_joules.iter().map(|(k, c)| (domain(k), c.value));
    let help = "Energy read per domain (package, core, uncore, dram, psys, gpu) and source";
    counters(encoder, ("greentop_node_energy", help, joules), energy)?;
    let power = node.power_watts.iter().map(|(k, w)| (domain(k), *w));
    let help = "Power per domain over the last interval";
    gauges(encoder, ("greentop_node_power_watts", help, None), power)?;
    let names = ["cpu", "dram", "gpu"];
    let by_domain = |values: &[f64; 3]| {
        names
            .iter()
            .zip(values.iter())
            .map(|(d, v)| ([("domain", *d)], *v))
            .collect::<Vec<_>>()
    };
    let help = "Energy attributed to processes, per balance domain";
    let attributed = by_domain(&node.attributed_joules);
    counters(
        encoder,
        ("greentop_node_attributed", help, joules),
        attributed,
    )?;
    let help = "Energy left to the idle row by the idle policy, per balance domain";
    counters(
        encoder,
        ("greentop_node_idle", help, joules),
        by_domain(&node.idle_joules),
    )?;
    let help = "Largest |measured − attributed − idle| of the last interval";
    let residual = ("greentop_node_balance_residual", help, joules);
    single(encoder, residual, MetricType::Gauge, node.residual_joules)?;
    let help = "Carbon of all measured energy (CPU, DRAM, GPU), × PUE";
    let co2 = ("greentop_node_co2", help, Some(&Unit::Grams));
    single(encoder, co2, MetricType::Counter, node.co2_grams)?;
    let seconds = Some(&Unit::Seconds);
    let help = "On-CPU time of all threads, summed over CPUs";
    let busy = ("greentop_node_cpu_busy", help, seconds);
    single(encoder, busy, MetricType::Counter, node.cpu_seconds)?;
    let help = "Idle CPU time, summed over CPUs";
    let idle = ("greentop_node_cpu_idle", help, seconds);
    single(encoder, idle, MetricType::Counter, node.idle_seconds)?;
    encode_carbon_and_trust(state, encoder)
}

fn encode_carbon_and_trust(
    state: &State,
    encoder: &mut DescriptorEncoder,
) -> Result<(), fmt::Error> {
    let node = &state.node;
    let intensity = node.intensity.iter().map(|((region, source), g)| {
        let labels = [("region", region.as_str()), ("source", source.as_str())];
        (labels, *g)
    });
    let help = "Grid carbon intensity used for the last interval, gCO₂ per kWh";
    let name = "greentop_carbon_intensity_grams_per_kwh";
    gauges(encoder, (name, help, None), intensity)?;
    let help = "Power usage effectiveness applied to every gCO₂ figure";
    let pue = ("greentop_pue_ratio", help, None);
    single(encoder, pue, MetricType::Gauge, node.pue)?;
    let trusted = node
        .counters
        .iter()
        .map(|((name, kind, index, source), ok)| {
            let labels = [
                ("meter", name.clone()),
                ("kind", kind.clone()),
                ("index", index.to_string()),
                ("source", source.clone()),
            ];
            (labels, if *ok { 1.0 } else { 0.0 })
        });
    let help = "1 while greentop believes the energy counter, 0 while it does not";
    let name = "greentop_node_energy_meter_trusted";
    gauges(encoder, (name, help, None), trusted)
}

fn encode_health(
    state: &State,
    start_unix_s: f64,
    encoder: &mut DescriptorEncoder,
) -> Result<(), fmt::Error> {
    let h = &state.health;
    let (ledger, policy, cpu, gpu) = &h.info;
    let info = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("ledger", ledger.as_str()),
        ("idle_policy", policy.as_str()),
        ("cpu_source", cpu.as_str()),
        ("gpu_source", gpu.as_str()),
    ];
    let help = "Always 1: the agent's version, ledger, idle policy and energy sources";
    gauges(encoder, ("greentop_agent_info", help, None), [(info, 1.0)])?;
    let seconds = Some(&Unit::Seconds);
    let gauge_s = |name, help, v| ((name, help, seconds), MetricType::Gauge, v);
    let counter = |name, help, unit, v| ((name, help, unit), MetricType::Counter, v);
    let mut plain = vec![
        gauge_s(
            "greentop_agent_start_time",
            "Unix time the agent started",
            start_unix_s,
        ),
        gauge_s(
            "greentop_agent_last_interval_timestamp",
            "Unix time of the last interval",
            h.last_interval_unix_s,
        ),
        counter(
            "greentop_agent_intervals",
            "Intervals measured",
            None,
            h.intervals as f64,
        ),
        counter(
            "greentop_agent_sched_switches",
            "Context switches the eBPF ledger handled",
            None,
            h.switches as f64,
        ),
        counter(
            "greentop_agent_ledger_overflow_charges",
            "Slices charged through the ledger's overflow map (table neighbourhood full)",
            None,
            h.overflow_charges as f64,
        ),
        counter(
            "greentop_agent_dropped_slices",
            "CPU slices the ledger could not record (overflow map full)",
            None,
            h.dropped_slices as f64,
        ),
        counter(
            "greentop_agent_dropped_cpu",
            "CPU time the ledger could not record",
            seconds,
            h.dropped_cpu_seconds,
        ),
        counter(
            "greentop_agent_lost_events",
            "Lifecycle events lost (ring buffer full)",
            None,
            h.lost_events as f64,
        ),
        counter(
            "greentop_agent_gpu_dropped_hits",
            "GPU probe hits lost to a full per-thread map",
            None,
            h.gpu_dropped_hits as f64,
        ),
        counter(
            "greentop_agent_gpu_untimed_syncs",
            "CUDA sync calls not timed (too many in flight)",
            None,
            h.gpu_untimed_syncs as f64,
        ),
        counter(
            "greentop_agent_source_errors",
            "Energy source reads that failed or degraded (energy_notes lines)",
            None,
            h.source_errors as f64,
        ),
        counter(
            "greentop_agent_ebpf_cpu",
            "CPU time of the sched_switch program (needs kernel.bpf_stats_enabled)",
            seconds,
            h.ebpf_seconds,
        ),
        counter(
            "greentop_agent_cpu",
            "CPU time of the agent process (getrusage)",
            seconds,
            own_cpu_seconds(),
        ),
        counter(
            "greentop_agent_energy",
            "Energy attributed to the agent's own process",
            Some(&Unit::Joules),
            h.self_joules,
        ),
    ];
    if let Some(ns) = h.ns_per_switch {
        let help = "Mean run time of the sched_switch program per switch, last interval";
        let name = "greentop_agent_ebpf_seconds_per_switch";
        plain.push(((name, help, None), MetricType::Gauge, ns / 1e9));
    }
    for (desc, kind, value) in plain {
        single(encoder, desc, kind, value)?;
    }
    let tables = [
        (
            [("table", "process")],
            state.processes.active_count() as f64,
        ),
        ([("table", "job")], state.jobs.active_count() as f64),
    ];
    let help = "Processes and jobs with a series of their own (bounded by 2 × top N)";
    gauges(encoder, ("greentop_agent_series", help, None), tables)
}

/// User + system CPU time of this process, seconds.
fn own_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let s = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    s(usage.ru_utime) + s(usage.ru_stime)
}
