//! The bridge from the tick to an output that runs as a task (greentop-agent's log
//! writer, socket server, stdout): a sink that puts each Interval in a bounded
//! queue and never waits. A full queue drops the Interval and counts it; what the
//! output lost (dropped Intervals, failed writes, dropped clients) is reported in
//! the next Interval's `system.sinks` and warned about on stderr.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, error::TrySendError};

use super::{Sink, SinkError};
use crate::model::{Interval, SinkHealthJson};

/// What an output lost since the driver last asked; shared by its queue (the
/// tick's side) and its task.
#[derive(Debug, Default)]
pub struct QueueStats {
    dropped: AtomicU64,
    /// Clients connected now, plus one (0: the output has no clients).
    clients: AtomicU64,
    clients_dropped: AtomicU64,
    error: Mutex<Option<String>>,
}

impl QueueStats {
    /// An Interval the task could not record (a failed write).
    pub fn lost(&self, error: impl Into<String>) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.error.lock() {
            *last = Some(error.into());
        }
    }

    pub fn set_clients(&self, connected: u64) {
        self.clients.store(connected + 1, Ordering::Relaxed);
    }

    pub fn client_dropped(&self) {
        self.clients_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The task's end of a queue.
pub struct Inbox {
    pub name: String,
    pub intervals: mpsc::Receiver<Arc<Interval>>,
    pub stats: Arc<QueueStats>,
}

/// The tick's end of a queue.
pub struct QueueSink {
    name: String,
    tx: mpsc::Sender<Arc<Interval>>,
    capacity: usize,
    stats: Arc<QueueStats>,
}

/// A queue of `capacity` Intervals (at least 1) named `name`.
pub fn queue(name: &str, capacity: usize) -> (QueueSink, Inbox) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let stats = Arc::new(QueueStats::default());
    let sink = QueueSink {
        name: name.to_string(),
        tx,
        capacity,
        stats: stats.clone(),
    };
    let inbox = Inbox {
        name: name.to_string(),
        intervals: rx,
        stats,
    };
    (sink, inbox)
}

impl Sink for QueueSink {
    fn name(&self) -> &str {
        &self.name
    }

    /// Never waits: a full queue drops the Interval (counted); a closed one (its
    /// task ended) is an error.
    fn write(&mut self, interval: &Interval) -> Result<(), SinkError> {
        match self.tx.try_send(Arc::new(interval.clone())) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                let before = self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if before == 0 {
                    tracing::warn!(
                        "{} fell behind: {} intervals queued, the interval ending {} was dropped",
                        self.name,
                        self.capacity,
                        interval.ts
                    );
                }
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(SinkError::Stream {
                what: "to an output whose task ended",
                source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
            }),
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn health(&mut self) -> Option<SinkHealthJson> {
        let stats = &self.stats;
        let clients = stats.clients.load(Ordering::Relaxed);
        Some(SinkHealthJson {
            name: self.name.clone(),
            dropped: stats.dropped.swap(0, Ordering::Relaxed),
            queued: (self.capacity - self.tx.capacity()) as u64,
            clients: clients.checked_sub(1),
            clients_dropped: stats.clients_dropped.swap(0, Ordering::Relaxed),
            error: stats.error.lock().ok().and_then(|mut e| e.take()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_and_never_waits() {
        let (mut sink, mut inbox) = queue("slow", 2);
        let interval = |s: f64| Interval {
            interval_s: s,
            ..Interval::default()
        };
        for s in 1..=5 {
            sink.write(&interval(f64::from(s))).unwrap();
        }
        let health = sink.health().unwrap();
        assert_eq!((health.dropped, health.queued), (3, 2));
        assert_eq!(inbox.intervals.try_recv().unwrap().interval_s, 1.0);
        inbox.stats.lost("disk full");
        inbox.stats.set_clients(2);
        inbox.stats.client_dropped();
        let health = sink.health().unwrap();
        assert_eq!(
            (
                health.dropped,
                health.queued,
                health.clients,
                health.clients_dropped
            ),
            (1, 1, Some(2), 1)
        );
        assert_eq!(health.error.as_deref(), Some("disk full"));
        assert_eq!(sink.health().unwrap().dropped, 0, "counts are per interval");
        drop(inbox);
        assert!(sink.write(&interval(6.0)).is_err(), "the task is gone");
    }
}
