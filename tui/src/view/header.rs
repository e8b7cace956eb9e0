//! The header: a title bar with the view's state, power per domain with sparklines
//! and provenance badges, and the machine's carbon, balance and overhead.
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::App;
use crate::format::{
    format_duration, format_gco2, format_joules, format_pct, format_refresh, format_watts,
    sparkline,
};
use crate::view::theme::Theme;

/// Lines of the meter block for this app.
pub fn height(app: &App) -> u16 {
    let gpus = app.system.gpu_w.len().max(1) as u16;
    (2 + gpus).max(6)
}

/// The top bar: time, refresh, sort and view modes.
pub fn title_line(app: &App) -> Line<'static> {
    let time = app.system.ts.get(11..19).unwrap_or("--:--:--");
    let arrow = if app.view.descending { "▼" } else { "▲" };
    let mut text = format!(
        " greentop  {time}  refresh {}  sort {}{arrow}",
        format_refresh(app.refresh_s),
        app.view.sort.label()
    );
    if app.view.tree {
        text.push_str("  [tree]");
    }
    if app.view.threads {
        text.push_str("  [threads]");
    }
    if app.view.grouping != crate::state::rows::Grouping::None {
        text.push_str(&format!("  [group: {}]", app.view.grouping.label()));
    }
    if !app.view.filter.is_empty() {
        text.push_str(&format!("  [filter: {}]", app.view.filter));
    }
    if !app.view.job_filter.is_empty() {
        text.push_str(&format!("  [job: {}]", app.view.job_filter));
    }
    if app.paused {
        text.push_str("  [PAUSED]");
    }
    text.push_str("  ?:help");
    Line::from(text).style(Theme::new(app.color).bar())
}

fn badge(measured: bool, theme: Theme) -> Span<'static> {
    if measured {
        Span::styled("[measured] ", theme.measured())
    } else {
        Span::styled("[estimated]", theme.estimated())
    }
}

fn meter(
    name: &str,
    watts: f64,
    badge: Span<'static>,
    history: &[f64],
    width: u16,
    theme: Theme,
) -> Line<'static> {
    let prefix = format!("{name:<5}{:>9} ", format_watts(watts));
    let used = prefix.chars().count() + badge.content.chars().count() + 1;
    let spark_width = usize::from(width).saturating_sub(used);
    Line::from(vec![
        Span::styled(prefix, theme.label()),
        badge,
        Span::raw(" "),
        Span::styled(sparkline(history, spark_width), theme.sparkline(name)),
    ])
}

/// Power per domain: CPU, DRAM and each GPU, newest watts and a sparkline.
pub fn meter_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let theme = Theme::new(app.color);
    let Some(sys) = app.system.summary.as_ref() else {
        return vec![Line::from(Span::styled(
            "waiting for the first interval…",
            theme.note(),
        ))];
    };
    let cpu_measured = !sys.cpu_source.starts_with("estimated");
    let dram_domain = sys.energy.iter().find(|d| d.kind == "dram");
    let mut lines = vec![meter(
        "CPU",
        app.system.cpu_w.last().unwrap_or(0.0),
        badge(cpu_measured, theme),
        &app.system.cpu_w.values(),
        width,
        theme,
    )];
    lines.push(match dram_domain {
        Some(domain) => meter(
            "DRAM",
            app.system.dram_w.last().unwrap_or(0.0),
            badge(domain.measured, theme),
            &app.system.dram_w.values(),
            width,
            theme,
        ),
        None => Line::from(vec![
            Span::styled(format!("{:<5}{:>9} ", "DRAM", "-"), theme.label()),
            Span::raw("no DRAM counter"),
        ]),
    });
    if app.system.gpu_w.is_empty() {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<5}{:>9} ", "GPU", "-"), theme.label()),
            Span::raw(format!("none ({})", sys.gpu_source)),
        ]));
    }
    for (index, history) in &app.system.gpu_w {
        let measured = sys.gpu_source.starts_with("nvml");
        lines.push(meter(
            &format!("GPU{index}"),
            history.last().unwrap_or(0.0),
            badge(measured, theme),
            &history.values(),
            width,
            theme,
        ));
    }
    lines
}

/// Totals, carbon, the books and greentop's own cost.
pub fn info_lines(app: &App) -> Vec<Line<'static>> {
    let theme = Theme::new(app.color);
    let Some(sys) = app.system.summary.as_ref() else {
        return Vec::new();
    };
    let s = &app.system;
    let health = &sys.ledger_health;
    let label = |text: &str| Span::styled(text.to_string(), theme.label());
    let mut overhead = vec![
        label("greentop "),
        Span::raw(format!(
            "{}% CPU  {:.0} sw/s",
            format_pct(s.own_cpu_pct),
            s.switches_per_s()
        )),
    ];
    if let Some(ns) = health.ns_per_switch {
        overhead.push(Span::raw(format!("  eBPF {ns:.0} ns/switch")));
    }
    if health.dropped_slices > 0 || health.lost_events > 0 {
        overhead.push(Span::styled(
            format!(
                "  LOST {} ev, DROPPED {} slices",
                health.lost_events, health.dropped_slices
            ),
            theme.warning(),
        ));
    }
    vec![
        Line::from(vec![
            label("Total "),
            Span::raw(format!(
                "{}  attributed to processes {}",
                format_watts(s.total_w()),
                format_watts(s.attributed_w)
            )),
        ]),
        Line::from(vec![
            label("Idle "),
            Span::raw(format!(
                "{}  policy {}",
                format_watts(s.idle_w()),
                sys.idle_policy
            )),
        ]),
        Line::from(vec![
            label("Carbon "),
            Span::raw(format!(
                "{:.0} gCO₂/kWh  {}  ({}){}",
                sys.intensity_g_per_kwh,
                sys.region,
                sys.intensity_source,
                pue_label(sys.pue)
            )),
        ]),
        Line::from(vec![
            label("Machine "),
            Span::raw(format!(
                "{}/h  since start {} ({})",
                format_gco2(s.gco2_per_h()),
                format_gco2(s.gco2_total),
                format_duration(s.seconds_total)
            )),
        ]),
        Line::from(vec![
            label("Ledger "),
            Span::raw(format!(
                "{}  residual {}",
                sys.ledger,
                format_joules(sys.balance.residual_joules)
            )),
        ]),
        Line::from(overhead),
    ]
}

/// `  PUE 1.40` when a PUE other than 1 multiplies the grams; empty otherwise.
fn pue_label(pue: f64) -> String {
    if pue > 1.0 {
        format!("  PUE {pue:.2}")
    } else {
        String::new()
    }
}

/// Meters on the left, facts on the right.
pub struct Header<'a>(pub &'a App);

impl Widget for Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let left_width = if area.width >= 100 {
            area.width / 2
        } else {
            area.width.min(34)
        };
        let [left, right] =
            Layout::horizontal([Constraint::Length(left_width), Constraint::Fill(1)]).areas(area);
        Paragraph::new(meter_lines(self.0, left.width.saturating_sub(1))).render(left, buf);
        Paragraph::new(info_lines(self.0)).render(right, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Msg, update};
    use crate::fixtures::{OWN_PID, interval};
    use ratatui::style::Style;

    #[test]
    fn meters_show_provenance_and_sparklines() {
        let mut app = App::new(1.0, OWN_PID, false);
        update(&mut app, Msg::Interval(Box::new(interval(1, false))));
        update(&mut app, Msg::Interval(Box::new(interval(2, false))));
        let mut buf = Buffer::empty(Rect::new(0, 0, 40, 3));
        Paragraph::new(meter_lines(&app, 40)).render(buf.area, &mut buf);
        let mut expected = Buffer::with_lines([
            "CPU     65.0 W [estimated]            ▇█",
            "DRAM         - no DRAM counter          ",
            "GPU          - none (none)              ",
        ]);
        expected.set_style(Rect::new(0, 0, 15, 3), Theme::new(false).label());
        expected.set_style(Rect::new(15, 0, 11, 1), Theme::new(false).estimated());
        expected.set_style(Rect::new(15, 1, 25, 2), Style::new());
        assert_eq!(buf, expected);
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
        let mut app = App::new(1.0, OWN_PID, false);
        let mut tick = interval(1, false);
        tick.system.pue = 1.5;
        update(&mut app, Msg::Interval(Box::new(tick)));
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
}
