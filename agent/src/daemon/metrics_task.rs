//! Prometheus metrics as an output: the exporter fed from its bounded queue (on the
//! blocking pool, like any synchronous sink) and `/metrics` served on the same
//! runtime, both until the agent stops. The tick side (tick durations, what each
//! output lost) is fed on the tick's thread: `sinks::metrics::{Timed, HealthSink}`.
use std::net::TcpListener;

use anyhow::Context;

use super::sink_task;
use crate::sinks::metrics::{Metrics, server};
use crate::sinks::queue::Inbox;

/// The exporter and its bound listener, ready before the capabilities are dropped.
pub struct MetricsOutput {
    pub metrics: Metrics,
    pub listener: TcpListener,
}

impl MetricsOutput {
    /// Binds `addr` (checked against the loopback rule by the options) and says
    /// where the metrics are.
    pub fn bind(
        addr: std::net::SocketAddr,
        options: crate::sinks::metrics::MetricsOptions,
    ) -> anyhow::Result<MetricsOutput> {
        let listener =
            server::bind(addr).with_context(|| format!("binding the metrics address {addr}"))?;
        let bound = listener.local_addr().context("the metrics address")?;
        tracing::info!("metrics on http://{bound}/metrics");
        Ok(MetricsOutput {
            metrics: Metrics::new(options),
            listener,
        })
    }
}

/// Runs until the queue closes (the agent stops); the server stops with it.
pub async fn run(listener: TcpListener, metrics: Metrics, inbox: Inbox) -> anyhow::Result<()> {
    tokio::select! {
        fed = sink_task(metrics.sink(), inbox) => fed,
        served = server::serve(listener, metrics.clone()) => served.context("serving /metrics"),
    }
}
