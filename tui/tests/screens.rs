//! Whole-screen snapshots at 80×24 and 120×40 from hand-built Intervals, compared to
//! the text files in tests/snapshots/ (`UPDATE_SNAPSHOTS=1` rewrites them), plus
//! renders at odd sizes that must not panic and a NO_COLOR check on cell styles.
mod common;

use greentop_tui::app::{App, Msg, update};
use greentop_tui::fixtures::{OWN_PID, frozen_counter_interval, interval};
use greentop_tui::view::Screen;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::widgets::Widget;

fn app(ticks: u32, gpu: bool, color: bool) -> App {
    let mut app = App::new(1.0, OWN_PID, color);
    for tick in 1..=ticks {
        update(&mut app, Msg::Interval(Box::new(interval(tick, gpu))));
    }
    app
}

fn render(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(Screen(app), frame.area()))
        .unwrap();
    terminal.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snapshot(name: &str, app: &App, width: u16, height: u16) {
    let actual = text(&render(app, width, height));
    common::snapshot_text(&format!("{name}_{width}x{height}.txt"), &actual);
}

#[test]
fn live_with_gpu() {
    let app = app(6, true, true);
    snapshot("gpu", &app, 80, 24);
    snapshot("gpu", &app, 120, 40);
}

#[test]
fn proc_fallback_with_estimated_cpu() {
    let app = app(6, false, true);
    snapshot("procfs", &app, 80, 24);
    snapshot("procfs", &app, 120, 40);
}

#[test]
fn frozen_counter_and_platform() {
    let mut app = App::new(1.0, OWN_PID, true);
    for tick in 1..=6 {
        update(
            &mut app,
            Msg::Interval(Box::new(frozen_counter_interval(tick))),
        );
    }
    snapshot("frozen_counter", &app, 80, 24);
    snapshot("frozen_counter", &app, 120, 40);
}

#[test]
fn details_pane() {
    let mut app = app(6, true, true);
    update(&mut app, Msg::OpenDetails);
    snapshot("details", &app, 80, 24);
    snapshot("details", &app, 120, 40);
}

#[test]
fn tree_with_threads_and_grouping() {
    let mut app = app(3, true, true);
    update(&mut app, Msg::ToggleTree);
    update(&mut app, Msg::ToggleThreads);
    snapshot("tree_threads", &app, 120, 40);
    update(&mut app, Msg::CycleGrouping);
    snapshot("group_job", &app, 80, 24);
}

#[test]
fn help_and_kill_dialog() {
    let mut app = app(2, true, true);
    update(&mut app, Msg::ToggleHelp);
    snapshot("help", &app, 80, 24);
    update(&mut app, Msg::Escape);
    update(&mut app, Msg::AskKill);
    snapshot("kill", &app, 80, 24);
}

#[test]
fn filter_prompt_and_pause() {
    let mut app = app(2, true, true);
    update(
        &mut app,
        Msg::StartInput(greentop_tui::app::InputMode::Filter),
    );
    for c in "py".chars() {
        update(&mut app, Msg::InputChar(c));
    }
    update(&mut app, Msg::TogglePause);
    snapshot("filter", &app, 80, 24);
}

#[test]
fn odd_sizes_and_empty_data_do_not_panic() {
    let mut full = app(3, true, true);
    update(&mut full, Msg::OpenDetails);
    update(&mut full, Msg::ToggleHelp);
    let empty = App::new(1.0, 0, true);
    for app in [&full, &empty] {
        for (width, height) in [(0, 0), (1, 1), (0, 10), (10, 0), (2, 3), (80, 1), (5, 24)] {
            render(app, width, height);
        }
        for width in (1..=130).step_by(7) {
            for height in (1..=45).step_by(4) {
                render(app, width, height);
            }
        }
    }
    // A widget given an area outside its buffer draws nothing rather than panicking.
    let mut buf = Buffer::empty(Rect::new(0, 0, 4, 4));
    Screen(&full).render(Rect::new(10, 10, 20, 20), &mut buf);
    assert!(text(&render(&empty, 80, 24)).contains("waiting for the first interval"));
}

#[test]
fn no_color_means_modifiers_only() {
    let mut app = app(4, true, false);
    update(&mut app, Msg::Move(1));
    let mut shown = Vec::new();
    for setup in [Msg::Escape, Msg::OpenDetails, Msg::ToggleHelp] {
        update(&mut app, setup);
        let buf = render(&app, 120, 40);
        for cell in buf.content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
            shown.push(cell.modifier);
        }
    }
    assert!(
        shown.contains(&(Modifier::REVERSED | Modifier::BOLD)),
        "selection in reverse video"
    );
    let colored = render(&self::app(4, true, true), 120, 40);
    assert!(
        colored.content().iter().any(|c| c.fg != Color::Reset),
        "colour when allowed"
    );
}
