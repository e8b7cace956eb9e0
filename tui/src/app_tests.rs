//! `update` tests: sorting, filters, tree, grouping, selection, kill, pause, refresh.
use super::*;
use crate::fixtures::{OWN_PID, interval};
use crate::state::feed::{FeedSource, FeedStatus};
use crate::state::rows::Grouping;
use agent::model::ProcessEnergy;

fn app_with(ticks: u32) -> App {
    let mut app = App::new(1.0, OWN_PID, true);
    for tick in 1..=ticks {
        update(&mut app, Msg::Interval(Box::new(interval(tick, true))));
    }
    app
}

fn ids(app: &App) -> Vec<u32> {
    app.rows.iter().map(|r| r.id).collect()
}

#[test]
fn default_sort_is_watts_descending_and_keys_flip() {
    let mut app = app_with(1);
    assert_eq!(ids(&app)[..3], [2301, 2302, 3300]);
    update(&mut app, Msg::SortBy(SortKey::Watts));
    assert_eq!(ids(&app)[0], 1, "same key again flips");
    update(&mut app, Msg::SortBy(SortKey::Cpu));
    assert_eq!((app.view.sort, app.view.descending), (SortKey::Cpu, true));
    update(&mut app, Msg::SortStep(-1));
    assert_eq!(
        (app.view.sort, app.view.descending),
        (SortKey::Command, false)
    );
    assert_eq!(app.rows[0].command, "bash");
    update(&mut app, Msg::SortStep(-4));
    assert_eq!(app.view.sort, SortKey::Gco2PerHour, "wraps");
}

#[test]
fn filters_match_command_user_job_and_pid() {
    let mut app = app_with(1);
    update(&mut app, Msg::StartInput(InputMode::Filter));
    for c in "ALI".chars() {
        update(&mut app, Msg::InputChar(c));
    }
    assert_eq!(ids(&app).len(), 3, "user alice, case-insensitive");
    update(&mut app, Msg::InputBackspace);
    update(&mut app, Msg::InputAccept);
    assert_eq!((app.view.filter.as_str(), app.input), ("AL", None));
    update(&mut app, Msg::StartInput(InputMode::Filter));
    update(&mut app, Msg::InputCancel);
    assert_eq!(app.view.filter, "", "Esc clears");
    for (text, expect) in [("3300", vec![3300]), ("postg", vec![3100])] {
        app.view.filter = text.into();
        update(&mut app, Msg::Home);
        assert_eq!(ids(&app), expect, "{text}");
    }
    app.view.filter.clear();
    update(&mut app, Msg::StartInput(InputMode::JobFilter));
    for c in "train".chars() {
        update(&mut app, Msg::InputChar(c));
    }
    assert_eq!(ids(&app), vec![2301, 2302]);
}

#[test]
fn tree_indents_children_and_threads_follow_processes() {
    let mut app = app_with(1);
    update(&mut app, Msg::ToggleTree);
    let tree: Vec<(u32, usize)> = app.rows.iter().map(|r| (r.id, r.depth)).collect();
    assert_eq!(
        tree,
        vec![
            (1, 0),
            (3100, 1),
            (812, 1),
            (1200, 2),
            (2301, 3),
            (2302, 4),
            (3300, 3),
            (OWN_PID, 3)
        ]
    );
    update(&mut app, Msg::ToggleTree);
    update(&mut app, Msg::ToggleThreads);
    assert_eq!(ids(&app)[..4], [2301, 2301, 2305, 2302]);
    assert!(matches!(
        app.rows[1].kind,
        RowKind::Thread {
            pid: 2301,
            tid: 2301
        }
    ));
}

#[test]
fn grouping_cycles_and_sums() {
    let mut app = app_with(1);
    update(&mut app, Msg::CycleGrouping);
    assert_eq!(app.view.grouping, Grouping::Job);
    let train = app
        .rows
        .iter()
        .find(|r| r.command == "train-resnet")
        .unwrap();
    assert_eq!(train.kind, RowKind::Group { members: 2 });
    assert!((train.watts - (31.0 + 7.5) * (1.0 + 0.25 / 3.0)).abs() < 1e-9);
    for expect in [Grouping::Cgroup, Grouping::User, Grouping::None] {
        update(&mut app, Msg::CycleGrouping);
        assert_eq!(app.view.grouping, expect);
    }
}

#[test]
fn selection_is_clamped_and_follows_its_row() {
    let mut app = app_with(1);
    update(&mut app, Msg::Move(-5));
    assert_eq!(app.selected, 0);
    update(&mut app, Msg::End);
    assert_eq!(app.selected, app.rows.len() - 1);
    update(&mut app, Msg::PageDown);
    assert_eq!(app.selected, app.rows.len() - 1);
    update(&mut app, Msg::Home);
    update(&mut app, Msg::Move(1));
    let followed = app.rows[1].kind.clone();
    update(&mut app, Msg::SortBy(SortKey::Pid));
    assert_eq!(app.selected_row().map(|r| &r.kind), Some(&followed));
    app.view.filter = "nothing matches".into();
    update(&mut app, Msg::Move(1));
    assert_eq!((app.selected, app.selected_row()), (0, None));
    update(&mut app, Msg::OpenDetails);
    assert!(!app.details, "no details without a row");
}

#[test]
fn kill_asks_first_and_never_signals_init() {
    let mut app = app_with(1);
    update(&mut app, Msg::SortBy(SortKey::Pid));
    update(&mut app, Msg::Home);
    assert_eq!(app.selected_row().map(|r| r.id), Some(1));
    assert_eq!(update(&mut app, Msg::AskKill), None);
    assert!(app.kill.is_none());
    assert_eq!(app.message(), Some("will not signal pid 1"));
    app.kill = Some(KillDialog {
        pid: 1,
        command: "init".into(),
        signal: Signal::Kill,
    });
    assert_eq!(
        update(&mut app, Msg::KillConfirm),
        None,
        "even a forged dialog"
    );
    update(&mut app, Msg::Move(1));
    assert_eq!(update(&mut app, Msg::AskKill), None);
    let dialog = app.kill.clone().unwrap();
    assert_eq!((dialog.pid, dialog.signal), (812, Signal::Term));
    update(&mut app, Msg::Escape);
    assert!(app.kill.is_none(), "Esc cancels");
    update(&mut app, Msg::AskKill);
    update(&mut app, Msg::KillToggleSignal);
    assert_eq!(
        update(&mut app, Msg::KillConfirm),
        Some(Effect::Signal {
            pid: 812,
            signal: Signal::Kill
        })
    );
    update(&mut app, Msg::SignalResult(Err("kill 812: EPERM".into())));
    assert_eq!(app.message(), Some("kill 812: EPERM"));
    update(&mut app, Msg::CycleGrouping);
    update(&mut app, Msg::AskKill);
    assert!(app.kill.is_none(), "no signal to a group");
}

#[test]
fn pause_holds_the_display_and_catches_up() {
    let mut app = app_with(1);
    update(&mut app, Msg::TogglePause);
    update(&mut app, Msg::Interval(Box::new(interval(2, true))));
    update(&mut app, Msg::Interval(Box::new(interval(3, true))));
    assert_eq!((app.tick, app.backlog.len()), (1, 2));
    update(&mut app, Msg::TogglePause);
    assert_eq!((app.tick, app.backlog.len(), app.paused), (3, 0, false));
    let python = app.procs.get(&(2301, 1_002_301)).unwrap();
    assert_eq!(python.history.len(), 3, "no interval lost");
}

#[test]
fn refresh_is_bounded() {
    let mut app = App::new(0.1, 0, true);
    assert_eq!(app.refresh_s, 0.5, "clamped");
    assert_eq!(update(&mut app, Msg::RefreshStep(-1)), None);
    assert_eq!(
        update(&mut app, Msg::RefreshStep(1)),
        Some(Effect::SetRefresh(1.0))
    );
    for _ in 0..10 {
        update(&mut app, Msg::RefreshStep(1));
    }
    assert_eq!(app.refresh_s, 10.0);
    app.refresh_s = 1.5;
    assert_eq!(
        update(&mut app, Msg::RefreshStep(-1)),
        Some(Effect::SetRefresh(1.0))
    );
}

#[test]
fn exited_rows_fade_then_go_and_pid_reuse_is_new() {
    let mut app = app_with(1);
    let mut next = interval(2, true);
    next.processes.retain(|p| p.pid != 3300);
    next.processes.push(ProcessEnergy {
        pid: 3300,
        start_ns: 9,
        comm: "make".into(),
        joules: 1.0,
        ..ProcessEnergy::default()
    });
    update(&mut app, Msg::Interval(Box::new(next.clone())));
    let makes: Vec<bool> = app
        .rows
        .iter()
        .filter(|r| r.id == 3300)
        .map(|r| r.fading)
        .collect();
    assert_eq!(makes.len(), 2);
    assert!(makes.contains(&true) && makes.contains(&false));
    let new_make = app.procs.get(&(3300, 9)).unwrap();
    assert_eq!(new_make.joules_total, 1.0, "pid reuse starts from zero");
    for tick in 3..=4 {
        update(&mut app, Msg::Interval(Box::new(next.clone())));
        assert_eq!(
            app.rows.iter().filter(|r| r.id == 3300).count(),
            2,
            "tick {tick}"
        );
    }
    update(&mut app, Msg::Interval(Box::new(next)));
    assert_eq!(app.rows.iter().filter(|r| r.id == 3300).count(), 1);
    let python = app.procs.get(&(2301, 1_002_301)).unwrap();
    let by_tick =
        interval(1, true).processes[3].joules + 4.0 * interval(2, true).processes[3].joules;
    assert!((python.joules_total - by_tick).abs() < 1e-9, "cumulative J");
}

#[test]
fn help_details_and_escape_order() {
    let mut app = app_with(1);
    update(&mut app, Msg::OpenDetails);
    update(&mut app, Msg::ToggleHelp);
    assert!(app.details && app.help);
    update(&mut app, Msg::Escape);
    assert!(app.details && !app.help);
    update(&mut app, Msg::Escape);
    assert!(!app.details);
    update(&mut app, Msg::Quit);
    assert!(app.quit);
}

#[test]
fn a_replay_seeks_pauses_and_steps_its_speed_through_effects() {
    let mut app = app_with(3);
    assert_eq!(
        update(&mut app, Msg::Seek(Seek::End)),
        None,
        "live: no seeking"
    );
    assert_eq!(update(&mut app, Msg::TogglePause), None);
    update(&mut app, Msg::TogglePause);
    app.feed.source = FeedSource::Replay { name: "log".into() };
    for seek in [Seek::By(-60), Seek::Start] {
        assert_eq!(
            update(&mut app, Msg::Seek(seek)),
            Some(Effect::Feed(FeedControl::Seek(seek)))
        );
    }
    assert_eq!(
        update(&mut app, Msg::TogglePause),
        Some(Effect::Feed(FeedControl::Pause(true)))
    );
    // Paused, a replay still shows what a seek brought.
    update(&mut app, Msg::Interval(Box::new(interval(4, true))));
    assert_eq!((app.tick, app.backlog.len()), (4, 0));
    assert_eq!(
        update(&mut app, Msg::RefreshStep(1)),
        Some(Effect::Feed(FeedControl::Speed(2.0)))
    );
    assert_eq!(
        app.refresh_s, 1.0,
        "the refresh is the pipeline's, untouched"
    );
    update(&mut app, Msg::Feed(FeedEvent::Reset));
    assert!(
        app.procs.is_empty() && app.system.summary.is_none(),
        "since seen restarts"
    );
    update(&mut app, Msg::Feed(FeedEvent::Ended));
    assert_eq!(app.feed.status, FeedStatus::Ended);
}

#[test]
fn a_connected_feed_says_its_agent_and_when_it_is_lost() {
    let mut app = app_with(1);
    app.feed.source = FeedSource::Agent {
        path: "/run/g.sock".into(),
    };
    update(
        &mut app,
        Msg::Feed(FeedEvent::Connected {
            agent_pid: Some(4242),
        }),
    );
    assert_eq!((app.own_pid, &app.feed.status), (4242, &FeedStatus::Live));
    update(
        &mut app,
        Msg::Feed(FeedEvent::Lost("the agent closed".into())),
    );
    assert_eq!(app.feed.status, FeedStatus::Disconnected);
    assert_eq!(app.message(), Some("the agent closed"));
    let title = crate::view::header::title_line(&app).to_string();
    assert!(
        title.contains("agent /run/g.sock DISCONNECTED, retrying"),
        "{title}"
    );
}
