//! The binary log as an output: each Interval appended on the blocking pool. A
//! failed write (a full disk) is said once on stderr, counted in `system.sinks`,
//! and retried with the next Interval, which resumes writing once there is room.
//! A reload (SIGHUP) closes the segment and opens a new one with the new options.
use tokio::sync::watch;

use super::Reloaded;
use crate::model::Interval;
use crate::sinks::Sink;
use crate::sinks::log::{LogOptions, LogWriter};
use crate::sinks::queue::{Inbox, QueueStats};

/// The writer and what it is doing, moved to the blocking pool for each write.
struct Log {
    writer: Option<LogWriter>,
    opts: LogOptions,
    /// Intervals lost since the last one written (0: all is well).
    lost: u64,
}

pub async fn run(
    writer: LogWriter,
    mut inbox: Inbox,
    mut reload: watch::Receiver<Reloaded>,
) -> anyhow::Result<()> {
    let opts = writer.options().clone();
    let mut log = Log {
        writer: Some(writer),
        opts,
        lost: 0,
    };
    loop {
        tokio::select! {
            next = inbox.intervals.recv() => {
                let Some(interval) = next else { break };
                let stats = inbox.stats.clone();
                log = blocking(log, move |log| log.write(&interval, &stats)).await?;
            }
            Ok(()) = reload.changed() => {
                let agent = reload.borrow_and_update().clone();
                log = blocking(log, move |log| log.reopen(agent.log_options().ok().flatten())).await?;
            }
        }
    }
    let log = blocking(log, Log::close).await?;
    drop(log);
    Ok(())
}

async fn blocking(log: Log, work: impl FnOnce(&mut Log) + Send + 'static) -> anyhow::Result<Log> {
    let mut log = log;
    Ok(tokio::task::spawn_blocking(move || {
        work(&mut log);
        log
    })
    .await?)
}

impl Log {
    fn write(&mut self, interval: &Interval, stats: &QueueStats) {
        let written = match self.writer.as_mut() {
            Some(writer) => writer.write(interval),
            // The writer could not be opened again (a reload): try now.
            None => LogWriter::open(self.opts.clone()).and_then(|mut writer| {
                let written = writer.write(interval);
                self.writer = Some(writer);
                written
            }),
        };
        match written {
            Ok(()) => {
                if self.lost > 0 {
                    tracing::info!("log: writing resumed ({} intervals were lost)", self.lost);
                    self.lost = 0;
                }
                tracing::debug!(target: "greentop::log", ts = %interval.ts, "interval written");
            }
            Err(err) => {
                if self.lost == 0 {
                    tracing::error!("log: {err}");
                }
                self.lost += 1;
                stats.lost(err.to_string());
            }
        }
    }

    /// Closes the segment; the next one is opened with `opts` (else the same).
    fn reopen(&mut self, opts: Option<LogOptions>) {
        self.close();
        if let Some(opts) = opts {
            self.opts = opts;
        }
        match LogWriter::open(self.opts.clone()) {
            Ok(writer) => self.writer = Some(writer),
            Err(err) => {
                tracing::error!("log: reopening: {err}; trying again with the next interval")
            }
        }
    }

    fn close(&mut self) {
        if let Some(mut writer) = self.writer.take()
            && let Err(err) = writer.close()
        {
            tracing::error!("log: closing the segment: {err}");
        }
    }
}
