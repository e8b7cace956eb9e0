//! The header: a title bar with the view's state, power per domain with sparklines
//! and provenance badges, and the machine's carbon, balance and overhead.
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use agent::model::SystemSummary;

use crate::app::App;
use crate::format::{
    format_duration, format_gco2, format_joules, format_pct, format_refresh, format_watts,
    sparkline,
};
use crate::view::theme::Theme;

/// Lines of the meter block for this app.
pub fn height(app: &App) -> u16 {
    let gpus = app.system.gpu_w.len().max(1) as u16;
    let platform = u16::from(has_platform(app));
    let counters = u16::from(counters_line(app).is_some());
    (2 + gpus + platform).max(6 + counters)
}

fn has_platform(app: &App) -> bool {
    app.system
        .summary
        .as_ref()
        .is_some_and(|s| s.energy.iter().any(|d| d.kind == "psys"))
}

/// The top bar: time, the feed (or the refresh), sort and view modes. A replay
/// shows the date too.
pub fn title_line(app: &App) -> Line<'static> {
    let time = match app.feed.is_replay() {
        true => app.system.ts.get(..19).map(|t| t.replacen('T', " ", 1)),
        false => app.system.ts.get(11..19).map(str::to_string),
    };
    let time = time.unwrap_or_else(|| "--:--:--".to_string());
    let arrow = if app.view.descending { "▼" } else { "▲" };
    let feed = app
        .feed
        .label()
        .unwrap_or_else(|| format!("refresh {}", format_refresh(app.refresh_s)));
    let mut text = format!(
        " greentop  {time}  {feed}  sort {}{arrow}",
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

/// How far a domain's figure can be believed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    Measured,
    Estimated,
    /// A counter greentop does not believe, shown because `--source` asked for it.
    Untrusted,
}

impl Provenance {
    /// Of the energy domains of one kind (`package`, `dram`, `psys`): estimated if any
    /// is an estimate, untrusted if any counter is not believed, else measured.
    pub fn of(sys: &SystemSummary, kind: &str) -> Provenance {
        let domains = sys.energy.iter().filter(|d| d.kind == kind);
        let mut out = Provenance::Measured;
        for d in domains {
            if d.source.starts_with("estimated") {
                return Provenance::Estimated;
            }
            if !d.measured {
                out = Provenance::Untrusted;
            }
        }
        out
    }
}

fn badge(provenance: Provenance, theme: Theme) -> Span<'static> {
    match provenance {
        Provenance::Measured => Span::styled("[measured] ", theme.measured()),
        Provenance::Estimated => Span::styled("[estimated]", theme.estimated()),
        Provenance::Untrusted => Span::styled("[untrusted]", theme.warning()),
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
    let cpu = match Provenance::of(sys, "package") {
        _ if sys.cpu_source.starts_with("estimated") => Provenance::Estimated,
        provenance => provenance,
    };
    let mut lines = vec![meter(
        "CPU",
        app.system.cpu_w.last().unwrap_or(0.0),
        badge(cpu, theme),
        &app.system.cpu_w.values(),
        width,
        theme,
    )];
    lines.push(match sys.energy.iter().any(|d| d.kind == "dram") {
        true => meter(
            "DRAM",
            app.system.dram_w.last().unwrap_or(0.0),
            badge(Provenance::of(sys, "dram"), theme),
            &app.system.dram_w.values(),
            width,
            theme,
        ),
        false => Line::from(vec![
            Span::styled(format!("{:<5}{:>9} ", "DRAM", "-"), theme.label()),
            Span::raw("no DRAM counter"),
        ]),
    });
    if has_platform(app) {
        // psys: the whole platform, shown apart and never added to the CPU.
        lines.push(meter(
            "Plat",
            app.system.platform_w.last().unwrap_or(0.0),
            badge(Provenance::of(sys, "psys"), theme),
            &app.system.platform_w.values(),
            width,
            theme,
        ));
    }
    if app.system.gpu_w.is_empty() {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<5}{:>9} ", "GPU", "-"), theme.label()),
            Span::raw(format!("none ({})", sys.gpu_source)),
        ]));
    }
    for (index, history) in &app.system.gpu_w {
        let provenance = match sys.gpu_source.starts_with("nvml") {
            true => Provenance::Measured,
            false => Provenance::Estimated,
        };
        lines.push(meter(
            &format!("GPU{index}"),
            history.last().unwrap_or(0.0),
            badge(provenance, theme),
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
    let mut lines = vec![
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
    ];
    lines.extend(counters_line(app));
    lines
}

/// The counters greentop does not believe now, and what it does instead; None when
/// it believes them all.
pub fn counters_line(app: &App) -> Option<Line<'static>> {
    let theme = Theme::new(app.color);
    let sys = app.system.summary.as_ref()?;
    let untrusted: Vec<String> = sys
        .counters
        .iter()
        .filter(|c| !c.trusted)
        .map(|c| {
            let problem = c.problem.as_deref().unwrap_or("recovering");
            let shown = sys.energy.iter().any(|d| d.name == c.name);
            let instead = match (c.change.as_deref(), shown, c.kind.as_str()) {
                (Some("recovered"), _, _) => "counts again",
                (_, true, _) => "shown, not trusted",
                (_, false, "psys") => "left out",
                (_, false, _) => "estimated",
            };
            match c.change.as_deref() {
                Some("recovered") => format!("{} {instead}", c.name),
                _ => format!("{} {problem}: {instead}", c.name),
            }
        })
        .collect();
    (!untrusted.is_empty()).then(|| {
        Line::from(vec![
            Span::styled("Counters ".to_string(), theme.label()),
            Span::styled(format!("⚠ {}", untrusted.join("; ")), theme.warning()),
        ])
    })
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
#[path = "header_tests.rs"]
mod tests;
