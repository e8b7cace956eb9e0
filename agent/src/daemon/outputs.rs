//! The daemon's outputs: each one a bounded queue from the tick (a `QueueSink` the
//! driver writes to) and a task that consumes it until the agent stops.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::AgentConfig;
use crate::sinks::Sink;
use crate::sinks::queue::{Inbox, QueueSink, queue};

/// The agent's options after each reload (SIGHUP), for outputs that follow them.
pub type Reloaded = Arc<AgentConfig>;

/// Longest wait for the outputs to finish once the tick has stopped.
const CLOSING: Duration = Duration::from_secs(30);

pub struct Outputs {
    sinks: Vec<QueueSink>,
    tasks: JoinSet<(String, anyhow::Result<()>)>,
    reload: watch::Receiver<Reloaded>,
}

impl Outputs {
    pub fn new(reload: watch::Receiver<Reloaded>) -> Outputs {
        Outputs {
            sinks: Vec::new(),
            tasks: JoinSet::new(),
            reload,
        }
    }

    /// Adds an output named `name`: a queue of `capacity` Intervals from the tick
    /// to `task`, spawned now. The task gets the queue's end (and its counters) and
    /// the reloaded options; it runs until the queue closes. An error it returns
    /// stops the agent.
    pub fn spawn<F, Fut>(&mut self, name: &str, capacity: usize, task: F)
    where
        F: FnOnce(Inbox, watch::Receiver<Reloaded>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (sink, inbox) = queue(name, capacity);
        self.sinks.push(sink);
        let name = name.to_string();
        let future = task(inbox, self.reload.clone());
        self.tasks.spawn(async move { (name, future.await) });
    }

    /// The queues, for the driver.
    pub fn take_sinks(&mut self) -> Vec<QueueSink> {
        std::mem::take(&mut self.sinks)
    }

    /// The error of the next output that fails; `None` once none is left.
    pub async fn failed(&mut self) -> Option<anyhow::Error> {
        loop {
            match self.tasks.join_next().await? {
                Ok((_, Ok(()))) => continue,
                Ok((name, Err(err))) => return Some(err.context(format!("output {name}"))),
                Err(join) => return Some(anyhow::anyhow!("an output's task: {join}")),
            }
        }
    }

    /// Waits for every output to finish (their queues are closed by now).
    pub async fn join(mut self) -> anyhow::Result<()> {
        let all = async {
            let mut first = Ok(());
            while let Some(err) = self.failed().await {
                if first.is_ok() {
                    first = Err(err);
                }
            }
            first
        };
        tokio::time::timeout(CLOSING, all)
            .await
            .context("the outputs did not finish within 30 s")?
    }
}

/// A synchronous sink (stdout JSON lines, …) as an output: each Interval written
/// on the blocking pool, closed at the end; a failed write ends it.
pub async fn sink_task<S: Sink + Send + 'static>(sink: S, mut inbox: Inbox) -> anyhow::Result<()> {
    let mut sink = sink;
    while let Some(interval) = inbox.intervals.recv().await {
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = sink.write(&interval);
            (sink, result)
        })
        .await?;
        sink = back;
        result?;
    }
    tokio::task::spawn_blocking(move || sink.close()).await??;
    Ok(())
}
