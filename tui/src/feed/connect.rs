//! The feed from a running greentop-agent's socket: Intervals as the agent sends
//! them. When the agent goes away (or drops this client for falling behind) the
//! view says so and the feed connects again every second.
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent::cli::UsageError;
use agent::sinks::socket::stream::IntervalStream;

use super::Deliver;
use crate::app::Msg;
use crate::state::feed::FeedEvent;

/// Between two attempts to connect.
const RETRY: Duration = Duration::from_secs(1);

/// Connects once (a path that is no socket, or one this user may not open, is
/// the user's mistake: said at once), then follows the agent on a thread.
pub fn start(path: PathBuf, deliver: Deliver) -> anyhow::Result<()> {
    let first = UnixStream::connect(&path).map_err(|e| refused(&path, &e))?;
    std::thread::Builder::new()
        .name("feed-connect".into())
        .spawn(move || follow_agent(&path, first, &deliver))
        .map_err(|e| anyhow::anyhow!("starting the socket reader: {e}"))?;
    Ok(())
}

/// Why the first connection failed, as one line.
fn refused(path: &Path, err: &std::io::Error) -> anyhow::Error {
    let hint = match err.kind() {
        ErrorKind::PermissionDenied => {
            " (the socket is open to its owner and group: ask to be added to the group given by greentop-agent --socket-group)"
        }
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => {
            " (is greentop-agent running with --socket here?)"
        }
        _ => "",
    };
    UsageError(format!("cannot connect to {}: {err}{hint}", path.display())).into()
}

fn follow_agent(path: &Path, first: UnixStream, deliver: &Deliver) {
    let mut next = Some(first);
    loop {
        let stream = match next.take() {
            Some(stream) => stream,
            None => match UnixStream::connect(path) {
                Ok(stream) => stream,
                Err(_) => {
                    std::thread::sleep(RETRY);
                    continue;
                }
            },
        };
        let Some(why) = read(stream, deliver) else {
            return; // the view is gone
        };
        if !deliver(Msg::Feed(FeedEvent::Lost(why))) {
            return;
        }
        std::thread::sleep(RETRY);
    }
}

/// Passes on every Interval of one connection; returns why it ended, or `None`
/// when the view is gone.
fn read(stream: UnixStream, deliver: &Deliver) -> Option<String> {
    let mut intervals = match IntervalStream::open(stream) {
        Ok(intervals) => intervals,
        Err(err) => return Some(format!("agent: {:#}", anyhow::Error::new(err))),
    };
    let mut told = false;
    loop {
        match intervals.next_interval() {
            Ok(Some(interval)) => {
                if !told {
                    let agent_pid = intervals.header().map(|h| h.writer_pid);
                    if !deliver(Msg::Feed(FeedEvent::Connected { agent_pid })) {
                        return None;
                    }
                    told = true;
                }
                if !deliver(Msg::Interval(Box::new(interval))) {
                    return None;
                }
            }
            Ok(None) => {
                return Some(
                    "the agent closed the connection (stopped, or this view fell behind)".into(),
                );
            }
            Err(err) => return Some(format!("agent: {:#}", anyhow::Error::new(err))),
        }
    }
}
