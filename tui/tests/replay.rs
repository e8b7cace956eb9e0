//! Replay reproduces what the live view showed: the same Intervals fed to the view
//! directly (as the in-process or socket feed does) and written to a binary log
//! and replayed through the replay feed give the same screen, but for the title
//! bar's feed words. The replayed screen is a snapshot (tests/snapshots/,
//! `UPDATE_SNAPSHOTS=1` rewrites it). Then seeks: back to the start, to the end.
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use agent::sinks::Sink;
use agent::sinks::log::{LogOptions, LogWriter};
use greentop_tui::app::{App, Msg, update};
use greentop_tui::feed::{Feed, FeedKind, ReplayOptions};
use greentop_tui::fixtures::{OWN_PID, interval};
use greentop_tui::state::feed::{FeedControl, FeedEvent, Seek};
use greentop_tui::view::Screen;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

mod common;

const TICKS: u32 = 6;

fn screen(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(Screen(app), frame.area()))
        .unwrap();
    let buf = terminal.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
            line.trim_end().to_string()
        })
        .collect()
}

/// Applies what the feed sends until `until` says stop.
fn apply_until(app: &mut App, rx: &Receiver<Msg>, until: impl Fn(&Msg) -> bool) {
    loop {
        let msg = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the replay feed sent the message");
        let stop = until(&msg);
        update(app, msg);
        if stop {
            return;
        }
    }
}

#[test]
fn replay_of_a_recorded_log_shows_the_screen_the_live_view_showed() {
    let intervals: Vec<_> = (1..=TICKS).map(|tick| interval(tick, true)).collect();
    let mut live = App::new(1.0, OWN_PID, true);
    for i in &intervals {
        update(&mut live, Msg::Interval(Box::new(i.clone())));
    }

    let dir = tempfile::tempdir().unwrap();
    let mut writer = LogWriter::open(LogOptions::new(dir.path().join("log"))).unwrap();
    for i in &intervals {
        writer.write(i).unwrap();
    }
    writer.close().unwrap();
    let kind = FeedKind::Replay(ReplayOptions {
        inputs: vec![dir.path().join("log")],
        speed: 4096.0,
        from: None,
    });
    let mut replayed = App::new(1.0, OWN_PID, true);
    replayed.feed = kind.state();
    let (tx, rx) = channel();
    let feed = Feed::start(kind, 1.0, Box::new(move |msg| tx.send(msg).is_ok())).unwrap();
    apply_until(&mut replayed, &rx, |m| *m == Msg::Feed(FeedEvent::Ended));
    assert_eq!(replayed.tick, u64::from(TICKS));

    let (want, got) = (screen(&live), screen(&replayed));
    assert_eq!(got[1..], want[1..], "the same screen below the title bar");
    assert!(
        want[0].starts_with(" greentop  12:00:06  refresh 1 s  sort W▼"),
        "{}",
        want[0]
    );
    assert!(
        got[0].starts_with(" greentop  2025-03-01 12:00:06  replay log ×4096 [END]  sort W▼"),
        "{}",
        got[0]
    );
    common::snapshot_text("replay_120x40.txt", &format!("{}\n", got.join("\n")));

    // Home: back to the first interval, "since seen" counting from there.
    feed.control(FeedControl::Pause(true));
    feed.control(FeedControl::Seek(Seek::Start));
    apply_until(&mut replayed, &rx, |m| matches!(m, Msg::Interval(_)));
    let mut first = App::new(1.0, OWN_PID, true);
    update(&mut first, Msg::Interval(Box::new(intervals[0].clone())));
    assert_eq!(screen(&replayed)[1..], screen(&first)[1..]);
    // End: the last interval alone.
    feed.control(FeedControl::Seek(Seek::End));
    apply_until(&mut replayed, &rx, |m| *m == Msg::Feed(FeedEvent::Ended));
    assert_eq!(replayed.system.ts, intervals[TICKS as usize - 1].ts);
    assert_eq!(
        replayed.procs.iter().map(|p| p.joules_total).sum::<f64>(),
        {
            let last = &intervals[TICKS as usize - 1];
            last.processes.iter().map(|p| p.joules).sum::<f64>()
        }
    );
}
