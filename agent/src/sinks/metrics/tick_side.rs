//! The exporter's two hooks on the tick's thread, both cheap and lock-light so the
//! tick never waits on a scrape: [`Timed`] measures each tick, and [`HealthSink`]
//! counts what every output lost (the Interval's `system.sinks`) — the metrics
//! output's own drops included, which its queue could not carry when it is full.
use std::time::Instant;

use super::Metrics;
use crate::driver::Source;
use crate::model::Interval;
use crate::probes::LedgerError;
use crate::sinks::{Sink, SinkError};

/// A source whose ticks are timed into `greentop_agent_tick_duration_seconds`.
pub struct Timed<S> {
    pub source: S,
    metrics: Option<Metrics>,
}

impl<S> Timed<S> {
    /// `metrics: None`: not timed (the agent serves no metrics).
    pub fn new(source: S, metrics: Option<Metrics>) -> Timed<S> {
        Timed { source, metrics }
    }
}

impl<S: Source> Source for Timed<S> {
    fn tick(&mut self, threads: bool) -> Result<Interval, LedgerError> {
        let started = Instant::now();
        let ticked = self.source.tick(threads);
        if let Some(metrics) = &self.metrics {
            metrics.observe_tick(started.elapsed());
        }
        ticked
    }
}

/// Counts each output's dropped Intervals and reported errors from `system.sinks`
/// into `greentop_agent_sink_dropped_intervals_total` and `…_sink_errors_total`.
pub struct HealthSink {
    metrics: Metrics,
}

impl HealthSink {
    pub fn new(metrics: Metrics) -> HealthSink {
        HealthSink { metrics }
    }
}

impl Sink for HealthSink {
    fn name(&self) -> &str {
        "metrics-health"
    }

    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        for sink in &interval.system.sinks {
            if sink.dropped > 0 {
                self.metrics.count_sink_drops(&sink.name, sink.dropped);
            }
            if sink.error.is_some() {
                self.metrics.count_sink_error(&sink.name);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Driver;
    use crate::model::SinkHealthJson;
    use crate::sinks::metrics::scrape::{samples, sum};
    use crate::sinks::metrics::{Format, MetricsOptions};
    use crate::sinks::queue::queue;

    #[test]
    fn a_full_metrics_queue_is_in_system_sinks_and_counted_without_waiting() {
        let metrics = Metrics::new(MetricsOptions::default());
        let source = Timed::new(
            |_threads: bool| Ok(Interval::default()),
            Some(metrics.clone()),
        );
        // A queue of one that nobody reads: the metrics output fallen behind.
        let (stuck, _inbox) = queue("metrics", 1);
        metrics.register_sink("metrics");
        let mut driver = Driver::new(source).optional_sink(HealthSink::new(metrics.clone()));
        driver.push(Box::new(stuck), true);
        let mut reported = Vec::new();
        for _ in 0..4 {
            let interval = driver.tick().unwrap().unwrap();
            let entry = interval.system.sinks.iter().find(|s| s.name == "metrics");
            reported.push(entry.map_or(0, |s| s.dropped));
        }
        // Tick 1 queues, ticks 2..4 drop; each drop is reported by the next tick.
        assert_eq!(reported, [0, 0, 1, 1]);
        let all = samples(&metrics.encode(Format::Prometheus)).unwrap();
        let dropped = "greentop_agent_sink_dropped_intervals_total";
        assert_eq!(sum(&all, dropped, &[("sink", "metrics")]), 2.0);
        let ticks = "greentop_agent_tick_duration_seconds_count";
        assert_eq!(sum(&all, ticks, &[]), 4.0);
    }

    #[test]
    fn errors_and_drops_of_every_output_are_counted() {
        let metrics = Metrics::new(MetricsOptions::default());
        let mut sink = HealthSink::new(metrics.clone());
        let mut interval = Interval::default();
        interval.system.sinks = vec![
            SinkHealthJson {
                name: "log".into(),
                dropped: 2,
                error: Some("No space left on device".into()),
                ..SinkHealthJson::default()
            },
            SinkHealthJson {
                name: "json".into(),
                ..SinkHealthJson::default()
            },
        ];
        sink.write(&interval).unwrap();
        sink.write(&interval).unwrap();
        let all = samples(&metrics.encode(Format::Prometheus)).unwrap();
        let dropped = "greentop_agent_sink_dropped_intervals_total";
        let errors = "greentop_agent_sink_errors_total";
        assert_eq!(sum(&all, dropped, &[("sink", "log")]), 4.0);
        assert_eq!(sum(&all, errors, &[("sink", "log")]), 2.0);
        assert_eq!(sum(&all, errors, &[("sink", "json")]), 0.0);
    }
}
