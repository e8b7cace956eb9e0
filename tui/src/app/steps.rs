//! What `update` does for the messages that take more than a line: moving,
//! sorting, editing the filter, the feed's news, the refresh step, the kill dialog.
use super::{App, Effect, InputMode, KillDialog, REFRESH_STEPS_S, Signal};
use crate::state::feed::{FeedControl, FeedEvent, FeedStatus};
use crate::state::procs::Processes;
use crate::state::rows::{Grouping, RowKind, SortKey, ViewOptions};
use crate::state::system::SystemState;

pub(super) fn navigate(app: &mut App, index: isize) -> Option<Effect> {
    app.move_to(index);
    None
}

pub(super) fn sort_by(app: &mut App, key: SortKey, flip_if_same: bool) -> Option<Effect> {
    if app.view.sort == key && flip_if_same {
        app.view.descending = !app.view.descending;
    } else {
        app.view.sort = key;
        app.view.descending = key.descending_by_default();
    }
    None
}

pub(super) fn edit_input(app: &mut App, edit: impl FnOnce(&mut String)) -> Option<Effect> {
    match app.input {
        Some(InputMode::Filter) => edit(&mut app.view.filter),
        Some(InputMode::JobFilter) => edit(&mut app.view.job_filter),
        None => {}
    }
    None
}

pub(super) fn toggle(app: &mut App, change: impl FnOnce(&mut ViewOptions)) -> Option<Effect> {
    change(&mut app.view);
    if app.view.grouping != Grouping::None {
        app.details = false;
    }
    None
}

/// The feed's news; after a replay's jump the data shown so far is dropped, so
/// "since seen" counts from the new position.
pub(super) fn feed_event(app: &mut App, event: FeedEvent) -> Option<Effect> {
    match event {
        FeedEvent::Connected { agent_pid } => {
            app.feed.status = FeedStatus::Live;
            if let Some(pid) = agent_pid {
                app.own_pid = pid;
            }
        }
        FeedEvent::Lost(why) => {
            app.feed.status = FeedStatus::Disconnected;
            app.say(why);
        }
        FeedEvent::Reset => {
            app.procs = Processes::default();
            app.system = SystemState::default();
            app.backlog.clear();
            app.feed.status = FeedStatus::Live;
        }
        FeedEvent::Ended => app.feed.status = FeedStatus::Ended,
    }
    None
}

pub(super) fn refresh_step(app: &mut App, step: isize) -> Option<Effect> {
    if app.feed.is_replay() {
        app.feed.speed = app.feed.speed_step(step);
        return Some(Effect::Feed(FeedControl::Speed(app.feed.speed)));
    }
    let now = app.refresh_s;
    let next = if step > 0 {
        REFRESH_STEPS_S.iter().copied().find(|s| *s > now + 1e-9)
    } else {
        REFRESH_STEPS_S
            .iter()
            .rev()
            .copied()
            .find(|s| *s < now - 1e-9)
    };
    let next = next?;
    app.refresh_s = next;
    Some(Effect::SetRefresh(next))
}

pub(super) fn ask_kill(app: &mut App) -> Option<Effect> {
    let Some(row) = app.selected_row() else {
        app.say("no process selected");
        return None;
    };
    let pid = match row.kind {
        RowKind::Process((pid, _)) => pid,
        RowKind::Thread { pid, .. } => pid,
        RowKind::Group { .. } => {
            app.say("select a process, not a group, to send a signal");
            return None;
        }
    };
    if pid <= 1 {
        app.say(format!("will not signal pid {pid}"));
        return None;
    }
    if row.fading {
        app.say(format!("process {pid} has exited"));
        return None;
    }
    let command = row.command.clone();
    app.kill = Some(KillDialog {
        pid,
        command,
        signal: Signal::Term,
    });
    None
}
