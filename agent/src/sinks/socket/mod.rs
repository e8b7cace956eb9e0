//! The live socket: Intervals streamed to every connected client, framed as in
//! the log — the preamble, a header record (host, agent pid), then metadata and
//! interval records from a fresh encoder per connection, so every client is sent
//! the process metadata it needs. A client that falls behind is disconnected and
//! counted; it never holds up the tick or the other clients. Protocol:
//! docs/agent.md.
pub mod listen;
pub mod stream;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::AbortHandle;

use super::frame;
use super::log::convert::Encoder;
use super::log::record::{self, FORMAT_VERSION, Record, SegmentHeader};
use super::log::writer::hostname;
use super::queue::Inbox;
use crate::model::Interval;
pub use listen::{SocketError, SocketFile, bind, group_id};

/// Intervals a client may have waiting (besides what the kernel buffers for it)
/// before it is disconnected.
pub const CLIENT_QUEUE: usize = 8;

struct Client {
    tx: mpsc::Sender<Arc<Interval>>,
    task: AbortHandle,
}

/// Serves `listener` until the inbox closes (the agent stops); `file` is removed
/// then. A new client is sent the last Interval at once.
pub async fn serve(
    listener: std::os::unix::net::UnixListener,
    file: SocketFile,
    mut inbox: Inbox,
) -> anyhow::Result<()> {
    let listener = tokio::net::UnixListener::from_std(listener)?;
    let mut clients: Vec<Client> = Vec::new();
    let mut last: Option<Arc<Interval>> = None;
    inbox.stats.set_clients(0);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    clients.push(start_client(stream, last.clone()));
                    inbox.stats.set_clients(clients.len() as u64);
                }
                Err(e) => {
                    // Out of file descriptors, say: try again shortly, keep serving.
                    tracing::warn!("socket {}: accepting a client: {e}", file.path.display());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            next = inbox.intervals.recv() => match next {
                Some(interval) => {
                    fan_out(&mut clients, &interval, &inbox);
                    last = Some(interval);
                }
                None => break,
            },
        }
    }
    drop(file);
    Ok(())
}

/// Queues the Interval for every client; one whose queue is full is dropped.
fn fan_out(clients: &mut Vec<Client>, interval: &Arc<Interval>, inbox: &Inbox) {
    clients.retain(|client| match client.tx.try_send(interval.clone()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            client.task.abort();
            inbox.stats.client_dropped();
            tracing::warn!(
                "socket: a client fell {CLIENT_QUEUE} intervals behind and was disconnected"
            );
            false
        }
        Err(TrySendError::Closed(_)) => false,
    });
    inbox.stats.set_clients(clients.len() as u64);
}

fn start_client(stream: UnixStream, last: Option<Arc<Interval>>) -> Client {
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    if let Some(interval) = last {
        let _ = tx.try_send(interval);
    }
    let task = tokio::spawn(async move {
        if let Err(e) = send_to(stream, rx).await {
            tracing::debug!("socket: a client left: {e}");
        }
    });
    Client {
        tx,
        task: task.abort_handle(),
    }
}

/// The stream's opening bytes: the preamble and a header naming this agent.
pub fn stream_header() -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    frame::write_preamble(&mut out, FORMAT_VERSION);
    let header = SegmentHeader {
        seq: 0,
        created_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        host: hostname(),
        writer_version: env!("CARGO_PKG_VERSION").to_string(),
        writer_pid: std::process::id(),
    };
    record::append(&mut out, &Record::SegmentHeader(header))?;
    Ok(out)
}

async fn send_to(
    mut stream: UnixStream,
    mut rx: mpsc::Receiver<Arc<Interval>>,
) -> std::io::Result<()> {
    let mut buf = stream_header().map_err(std::io::Error::other)?;
    stream.write_all(&buf).await?;
    let mut encoder = Encoder::default();
    while let Some(interval) = rx.recv().await {
        buf.clear();
        encoder
            .encode(&interval, &mut buf)
            .map_err(std::io::Error::other)?;
        stream.write_all(&buf).await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
