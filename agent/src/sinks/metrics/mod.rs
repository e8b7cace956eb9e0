//! The Prometheus sink: cumulative counters per process (top N), job and node, and
//! the agent's own health, kept from each Interval and encoded at scrape time by
//! prometheus-client (Prometheus text 0.0.4 or OpenMetrics). `server.rs` serves
//! them on `/metrics`; its options are `config::metrics`. Contract: docs/metrics.md.
mod collect;
mod labels;
#[cfg(any(test, feature = "testkit"))]
pub mod scrape;
pub mod server;
mod state;
mod table;
mod tick_side;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use labels::{JOB_NONE, OTHER};
pub use state::MetricsOptions;
pub use tick_side::{HealthSink, Timed};

use super::{Sink, SinkError};
use crate::model::Interval;
use collect::StateCollector;
use state::{State, lock};

/// Upper bounds of the tick-duration histogram, seconds.
const TICK_BUCKETS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Which exposition format a scrape gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): the default.
    Prometheus,
    /// OpenMetrics 1.0 text, for clients that ask for it in `Accept`.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics if the `Accept` header asks for it, else the Prometheus text format.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

/// The exporter: state shared by the sink (which feeds it Intervals), the driver
/// (tick durations, sink drops) and the HTTP server (which encodes it). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    registry: Registry,
    state: Arc<Mutex<State>>,
    tick_seconds: Histogram,
    sink_drops: Family<SinkLabels, Counter>,
    sink_errors: Family<SinkLabels, Counter>,
}

impl Metrics {
    pub fn new(opts: MetricsOptions) -> Metrics {
        let state = Arc::new(Mutex::new(State::new(opts)));
        let start_unix_s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StateCollector {
            state: state.clone(),
            start_unix_s,
        }));
        let tick_seconds = Histogram::new(TICK_BUCKETS_S);
        registry.register_with_unit(
            "greentop_agent_tick_duration",
            "Time to measure one interval (ledger, sources, attribution)",
            Unit::Seconds,
            tick_seconds.clone(),
        );
        let sink_drops = Family::<SinkLabels, Counter>::default();
        registry.register(
            "greentop_agent_sink_dropped_intervals",
            "Intervals an output did not get (its queue was full) or could not record",
            sink_drops.clone(),
        );
        let sink_errors = Family::<SinkLabels, Counter>::default();
        registry.register(
            "greentop_agent_sink_errors",
            "Intervals in which an output reported an error",
            sink_errors.clone(),
        );
        Metrics {
            inner: Arc::new(Shared {
                registry,
                state,
                tick_seconds,
                sink_drops,
                sink_errors,
            }),
        }
    }

    /// A sink that feeds this exporter.
    pub fn sink(&self) -> MetricsSink {
        MetricsSink {
            metrics: self.clone(),
        }
    }

    /// Adds one interval, seen at `now` (grace periods run on this clock).
    pub fn apply(&self, interval: &Interval, now: Instant) {
        lock(&self.inner.state).apply(interval, now);
    }

    /// One scrape: every metric in `format`. (A scrape is what lets a finished series
    /// go, and a new one start counting: see `table.rs`.)
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::with_capacity(64 << 10);
        let encoded = match format {
            Format::Prometheus => prometheus_text::encode(&mut out, &self.inner.registry),
            Format::OpenMetrics => text::encode(&mut out, &self.inner.registry),
        };
        // Writing to a String cannot fail, and every label value is escaped.
        debug_assert!(encoded.is_ok(), "encoding metrics: {encoded:?}");
        out
    }

    /// The time one tick took (the driver measures it).
    pub fn observe_tick(&self, took: Duration) {
        self.inner.tick_seconds.observe(took.as_secs_f64());
    }

    /// Makes a sink's drop and error counters exist at 0 from the start (a counter
    /// born at 1 would hide its first increase from `rate()`).
    pub fn register_sink(&self, sink: &str) {
        let labels = SinkLabels {
            sink: sink.to_string(),
        };
        let _ = self.inner.sink_drops.get_or_create(&labels);
        let _ = self.inner.sink_errors.get_or_create(&labels);
    }

    /// `intervals` a sink missed because its queue was full.
    pub fn count_sink_drops(&self, sink: &str, intervals: u64) {
        let labels = SinkLabels {
            sink: sink.to_string(),
        };
        self.inner
            .sink_drops
            .get_or_create(&labels)
            .inc_by(intervals);
    }

    /// An interval in which a sink reported an error (a failed write).
    pub fn count_sink_error(&self, sink: &str) {
        let labels = SinkLabels {
            sink: sink.to_string(),
        };
        self.inner.sink_errors.get_or_create(&labels).inc();
    }

    /// Processes and jobs with a series of their own now.
    pub fn series_counts(&self) -> (usize, usize) {
        let state = lock(&self.inner.state);
        (state.processes.active_count(), state.jobs.active_count())
    }
}

/// Feeds a [`Metrics`] exporter from the driver's Intervals.
pub struct MetricsSink {
    metrics: Metrics,
}

impl Sink for MetricsSink {
    fn name(&self) -> &str {
        "metrics"
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        self.metrics.apply(interval, Instant::now());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
