//! The details pane (`Enter`): the selected process's power sparkline, identity,
//! totals with everyday equivalents, GPUs and CUDA activity, and its threads' shares
//! of the energy (and of the CUDA calls).
use agent::carbon::equivalents::Equivalents;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use crate::app::App;
use crate::format::{
    format_duration, format_gco2, format_joules, format_pct, format_rate, format_watts, sparkline,
};
use crate::state::gpu_calls::GpuCallRates;
use crate::state::procs::ProcRow;
use crate::state::rows::RowKind;
use crate::view::theme::Theme;

/// A small quantity with a few significant digits: `0.0021`, `12.5`.
pub fn format_amount(value: f64) -> String {
    match value.abs() {
        0.0 => "0".to_string(),
        v if v < 0.001 => format!("{value:.1e}"),
        v if v < 1.0 => format!("{value:.4}"),
        v if v < 100.0 => format!("{value:.2}"),
        _ => format!("{value:.0}"),
    }
}

/// The process the selected row belongs to.
pub fn selected_process(app: &App) -> Option<&ProcRow> {
    match app.selected_row()?.kind {
        RowKind::Process(key) => app.procs.get(&key),
        RowKind::Thread { pid, .. } => app.procs.iter().find(|p| p.pid == pid && !p.exited()),
        RowKind::Group { .. } => None,
    }
}

pub fn detail_lines(p: &ProcRow, width: u16, theme: Theme) -> Vec<Line<'static>> {
    let label = |text: &str| Span::styled(text.to_string(), theme.label());
    let eq = Equivalents::from_grams(p.gco2_total);
    let gpus = if p.gpus.is_empty() {
        "none".to_string()
    } else {
        let list: Vec<String> = p.gpus.iter().map(|g| format!("GPU{g}")).collect();
        format!(
            "{} ({}% SM in all)",
            list.join(", "),
            p.gpu_pct.unwrap_or(0.0)
        )
    };
    let history = p.history.values();
    let peak = history.iter().copied().fold(0.0, f64::max);
    let mut lines = vec![
        Line::from(vec![
            label("power "),
            Span::raw(format!(
                "{} now, peak {} ",
                format_watts(p.watts),
                format_watts(peak)
            )),
            Span::styled(
                sparkline(&history, usize::from(width.saturating_sub(36))),
                theme.sparkline("CPU"),
            ),
        ]),
        Line::from(vec![
            label("job "),
            Span::raw(p.job.clone().unwrap_or_else(|| "-".into())),
            label("  cgroup "),
            Span::raw(p.cgroup.clone()),
        ]),
        Line::from(vec![
            label("user "),
            Span::raw(format!(
                "{}  ppid {}  seen for {}",
                p.user,
                p.ppid,
                format_duration(p.seen_s)
            )),
            label("  GPUs "),
            Span::raw(gpus),
        ]),
    ];
    if let Some(g) = p.gpu_calls {
        lines.push(Line::from(vec![
            label("CUDA "),
            Span::raw(cuda_summary(&g)),
        ]));
    }
    let cuda = p.gpu_calls.is_some();
    lines.extend([
        Line::from(vec![
            label("since seen "),
            Span::raw(format!(
                "{}  {} CO₂  ({}/h now)",
                format_joules(p.joules_total),
                format_gco2(p.gco2_total),
                format_gco2(p.gco2_per_h)
            )),
        ]),
        Line::from(vec![
            label("≈ "),
            Span::raw(format!(
                "driving {} by car · {} of a phone charge · {} of flight · {} of a tree's year",
                format_distance(eq.car_km * 1000.0),
                format_pct_of(eq.smartphone_charges),
                format_short_duration(eq.flight_hours * 3600.0),
                format_pct_of(eq.tree_years)
            )),
        ]),
    ]);
    lines.extend(thread_lines(p, cuda, theme));
    lines
}

/// The thread table: each thread's power, energy and share, and with CUDA activity its
/// launches per second and sync wait.
fn thread_lines(p: &ProcRow, cuda: bool, theme: Theme) -> Vec<Line<'static>> {
    let gpu_header = if cuda {
        format!(" {:>7} {:>6}", "LNCH/s", "SYNC%")
    } else {
        String::new()
    };
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{:>8} {:<16} {:>9} {:>9} {:>6}{gpu_header}",
            "TID", "THREAD", "W now", "J total", "share"
        ),
        theme.bar(),
    ))];
    let total: f64 = p.threads.values().map(|t| t.joules_total).sum();
    let mut threads: Vec<_> = p.threads.values().collect();
    threads.sort_by(|a, b| {
        b.joules_total
            .total_cmp(&a.joules_total)
            .then(a.tid.cmp(&b.tid))
    });
    for t in threads {
        let share = if total > 0.0 {
            100.0 * t.joules_total / total
        } else {
            0.0
        };
        let mut line = format!(
            "{:>8} {:<16} {:>9} {:>9} {:>5.1}%",
            t.tid,
            crate::format::truncate(&t.comm, 16),
            format_watts(t.watts),
            format_joules(t.joules_total),
            share
        );
        if cuda {
            let g = t.gpu_calls.unwrap_or_default();
            line.push_str(&format!(
                " {:>7} {:>6}",
                format_rate(g.launches_per_s),
                format_pct(g.sync_pct)
            ));
        }
        lines.push(if t.exited {
            Line::styled(line, theme.fading())
        } else {
            Line::from(line)
        });
    }
    if p.threads.is_empty() {
        lines.push(Line::from("no per-thread data yet"));
    }
    lines
}

pub struct DetailsPane<'a>(pub &'a App);

impl Widget for DetailsPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::new(self.0.color);
        let Some(p) = selected_process(self.0) else {
            Paragraph::new("select a process (groups have no details)")
                .block(Block::default().borders(Borders::ALL))
                .render(area, buf);
            return;
        };
        let title = format!(" {} {} — Esc closes ", p.pid, p.comm);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(title, theme.label()));
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(detail_lines(p, inner.width, theme)).render(inner, buf);
    }
}

/// One line of CUDA activity: what the eBPF probes saw in the last interval.
fn cuda_summary(g: &GpuCallRates) -> String {
    format!(
        "{} launches/s · {} ctx switches/s · {}% sync wait · {} NVIDIA ioctls/s",
        format_rate(g.launches_per_s),
        format_rate(g.ctx_per_s),
        format_pct(g.sync_pct),
        format_rate(g.ioctls_per_s)
    )
}

/// Metres, in the unit a person would say: "12 mm", "3.4 m", "12 km".
fn format_distance(metres: f64) -> String {
    match metres {
        m if m >= 1000.0 => format!("{:.3} km", m / 1000.0),
        m if m >= 1.0 => format!("{m:.1} m"),
        m if m >= 0.001 => format!("{:.1} mm", m * 1000.0),
        m => format!("{:.1} µm", m * 1e6),
    }
}

/// Seconds, with milliseconds below one second.
fn format_short_duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        crate::format::format_duration(seconds)
    }
}

/// A fraction of one thing as a percentage, or a count when there are several.
fn format_pct_of(count: f64) -> String {
    if count >= 1.0 {
        format!("{count:.1}×")
    } else {
        format!("{} %", format_amount(count * 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Msg, update};
    use crate::fixtures::{OWN_PID, interval};

    #[test]
    fn equivalents_read_like_a_person_would_say_them() {
        for (metres, want) in [
            (12_345.0, "12.345 km"),
            (3.44, "3.4 m"),
            (0.0014, "1.4 mm"),
            (2e-7, "0.2 µm"),
        ] {
            assert_eq!(format_distance(metres), want);
        }
        for (count, want) in [
            (2.5, "2.5×"),
            (0.5, "50.00 %"),
            (0.0021, "0.2100 %"),
            (2e-8, "2.0e-6 %"),
        ] {
            assert_eq!(format_pct_of(count), want);
        }
    }

    #[test]
    fn amounts_table() {
        for (v, text) in [
            (0.0, "0"),
            (0.000_2, "2.0e-4"),
            (0.25, "0.2500"),
            (12.345, "12.35"),
            (250.0, "250"),
        ] {
            assert_eq!(format_amount(v), text);
        }
    }

    #[test]
    fn threads_share_the_process_energy() {
        let mut app = App::new(1.0, OWN_PID, false);
        update(&mut app, Msg::Interval(Box::new(interval(1, true))));
        let p = selected_process(&app).unwrap();
        assert_eq!(p.pid, 2301);
        let text: Vec<String> = detail_lines(p, 80, Theme::new(false))
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert!(text[2].contains("GPU0 (85% SM in all)"), "{text:?}");
        assert_eq!(
            text[3],
            "CUDA 2.07k launches/s · 4.00 ctx switches/s · 42.0% sync wait · 12.0 NVIDIA ioctls/s"
        );
        assert!(
            text[7].ends_with("60.0%   1.45k   12.0") && text[7].contains("python"),
            "{text:?}"
        );
        assert!(
            text[8].ends_with("40.0%     620   30.0") && text[8].contains("pt_autograd_0"),
            "{text:?}"
        );
        assert!(
            text[5].contains("by car") && text[5].contains("tree's year"),
            "{text:?}"
        );
    }

    #[test]
    fn without_cuda_activity_there_is_no_cuda_line() {
        let mut app = App::new(1.0, OWN_PID, false);
        update(&mut app, Msg::Interval(Box::new(interval(1, false))));
        let p = selected_process(&app).unwrap();
        let text: Vec<String> = detail_lines(p, 80, Theme::new(false))
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert!(text.iter().all(|l| !l.starts_with("CUDA")), "{text:?}");
        assert!(text[5].ends_with("share"), "no GPU call columns: {text:?}");
    }
}
