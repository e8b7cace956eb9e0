//! The header: provenance badges per domain, the platform apart from the CPU, and the
//! counters greentop does not believe.
use ratatui::style::Style;

use super::*;
use crate::app::{Msg, update};
use crate::fixtures::{OWN_PID, frozen_counter_interval, interval};

fn app_with(intervals: impl IntoIterator<Item = agent::model::Interval>) -> App {
    let mut app = App::new(1.0, OWN_PID, false);
    for interval in intervals {
        update(&mut app, Msg::Interval(Box::new(interval)));
    }
    app
}

fn text(app: &App, width: u16) -> Vec<String> {
    let area = Rect::new(0, 0, width, height(app));
    let mut buf = Buffer::empty(area);
    Header(app).render(area, &mut buf);
    (0..area.height)
        .map(|y| {
            let line: String = (0..area.width).map(|x| buf[(x, y)].symbol()).collect();
            line.trim_end().to_string()
        })
        .collect()
}

#[test]
fn meters_show_provenance_and_sparklines() {
    let app = app_with([interval(1, false), interval(2, false)]);
    let mut buf = Buffer::empty(Rect::new(0, 0, 40, 3));
    Paragraph::new(meter_lines(&app, 40)).render(buf.area, &mut buf);
    let mut expected = Buffer::with_lines([
        "CPU     65.0 W [estimated]            ▇█",
        "DRAM    9.00 W [estimated]            ██",
        "GPU          - none (none)              ",
    ]);
    let theme = Theme::new(false);
    expected.set_style(Rect::new(0, 0, 15, 3), theme.label());
    expected.set_style(Rect::new(15, 0, 11, 2), theme.estimated());
    expected.set_style(Rect::new(26, 0, 14, 2), Style::new());
    expected.set_style(Rect::new(15, 2, 25, 1), Style::new());
    assert_eq!(buf, expected);
}

#[test]
fn a_frozen_counter_is_said_and_the_platform_shown_apart() {
    let app = app_with([frozen_counter_interval(1), frozen_counter_interval(2)]);
    assert_eq!(height(&app), 7);
    let lines = text(&app, 120);
    assert!(
        lines[0].starts_with("CPU     65.0 W [estimated]"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("DRAM    9.00 W [estimated]"),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with("Plat    25.0 W [measured]"),
        "{lines:#?}"
    );
    assert!(
        lines[6].ends_with("Counters ⚠ intel-rapl:0 frozen: estimated"),
        "{lines:#?}"
    );
    // The platform is not in the total: CPU 65 + DRAM 9.
    assert!(lines[0].contains("Total 74.0 W"), "{lines:#?}");
}

#[test]
fn a_counter_asked_for_but_not_believed_is_untrusted() {
    let mut asked = frozen_counter_interval(1);
    let sys = &mut asked.system;
    sys.cpu_source = "rapl-powercap".into();
    let package = sys.energy.iter_mut().find(|d| d.kind == "package").unwrap();
    package.source = "rapl-powercap".into();
    package.name = "intel-rapl:0".into();
    package.measured = false;
    let app = app_with([asked]);
    let lines = text(&app, 120);
    assert!(
        lines[0].starts_with("CPU     60.0 W [untrusted]"),
        "{lines:#?}"
    );
    assert!(
        lines[6].ends_with("⚠ intel-rapl:0 frozen: shown, not trusted"),
        "{lines:#?}"
    );
    let mut recovered = frozen_counter_interval(3);
    recovered.system.counters[0].change = Some("recovered".into());
    recovered.system.counters[0].problem = None;
    let lines = text(&app_with([recovered]), 120);
    assert!(
        lines[6].ends_with("⚠ intel-rapl:0 counts again"),
        "{lines:#?}"
    );
    // Everything believed: no counters line, the usual height.
    assert_eq!(height(&app_with([interval(1, true)])), 6);
}

#[test]
fn pue_shows_only_when_it_changes_the_grams() {
    for (pue, text) in [
        (1.0, ""),
        (0.0, ""),
        (1.4, "  PUE 1.40"),
        (2.125, "  PUE 2.12"),
    ] {
        assert_eq!(pue_label(pue), text, "{pue}");
    }
    let mut tick = interval(1, false);
    tick.system.pue = 1.5;
    let app = app_with([tick]);
    let carbon = info_lines(&app)[2].to_string();
    assert!(carbon.ends_with("(table)  PUE 1.50"), "{carbon}");
}

#[test]
fn title_shows_modes() {
    let mut app = App::new(0.5, 0, true);
    app.view.tree = true;
    app.paused = true;
    let text = title_line(&app).to_string();
    assert!(
        text.contains("refresh 0.5 s  sort W▼  [tree]  [PAUSED]"),
        "{text}"
    );
}
