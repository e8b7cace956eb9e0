//! The process table: which columns fit the width, each row's cells, the sort
//! marker, fading exited rows and the selection in reverse video.
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Text};
use ratatui::widgets::{Cell, Row, StatefulWidget, Table, TableState, Widget};

use crate::app::App;
use crate::format::{format_gco2, format_joules, format_pct, format_rate, format_watts, truncate};
use crate::state::rows::{DisplayRow, Grouping, RowKind, SortKey};
use crate::view::theme::Theme;

/// Width of each column; COMMAND takes what is left, at least `COMMAND_MIN`.
fn width(key: SortKey) -> u16 {
    match key {
        SortKey::Pid => 7,
        SortKey::User => 8,
        SortKey::Job => 12,
        SortKey::Command => COMMAND_MIN,
        SortKey::Cpu => 6,
        SortKey::Gpu => 5,
        SortKey::GpuSync => 6,
        SortKey::GpuLaunches => 7,
        SortKey::Watts => 8,
        SortKey::Joules => 8,
        SortKey::Gco2 => 8,
        SortKey::Gco2PerHour => 8,
    }
}

const COMMAND_MIN: u16 = 14;

/// Most important first: the columns kept when the screen is narrow.
const PRIORITY: [SortKey; 12] = [
    SortKey::Pid,
    SortKey::Command,
    SortKey::Watts,
    SortKey::Cpu,
    SortKey::Gco2PerHour,
    SortKey::Gco2,
    SortKey::Joules,
    SortKey::Job,
    SortKey::User,
    SortKey::Gpu,
    SortKey::GpuSync,
    SortKey::GpuLaunches,
];

/// The columns that fit in `width`, in screen order: a prefix of `PRIORITY`.
pub fn visible_columns(area_width: u16) -> Vec<SortKey> {
    let mut used = 0u16;
    let mut kept = Vec::new();
    for key in PRIORITY {
        let need = width(key) + 1;
        if used + need > area_width && !kept.is_empty() {
            break;
        }
        used += need;
        kept.push(key);
    }
    SortKey::ALL
        .into_iter()
        .filter(|k| kept.contains(k))
        .collect()
}

fn numeric(key: SortKey) -> bool {
    key.descending_by_default() || key == SortKey::Pid
}

fn command_text(row: &DisplayRow) -> String {
    if row.depth == 0 {
        return row.command.clone();
    }
    let mark = if matches!(row.kind, RowKind::Thread { .. }) {
        "· "
    } else {
        "└ "
    };
    format!("{}{mark}{}", "  ".repeat(row.depth - 1), row.command)
}

/// The text of one cell.
pub fn cell_text(row: &DisplayRow, key: SortKey) -> String {
    match key {
        SortKey::Pid => row.id.to_string(),
        SortKey::User => truncate(&row.user, usize::from(width(key))),
        SortKey::Job => truncate(&row.job, usize::from(width(key))),
        SortKey::Command => command_text(row),
        SortKey::Cpu => format_pct(row.cpu_pct),
        SortKey::Gpu => row.gpu_pct.map(format_pct).unwrap_or_default(),
        SortKey::GpuSync => row
            .gpu_calls
            .map(|g| format_pct(g.sync_pct))
            .unwrap_or_default(),
        SortKey::GpuLaunches => row
            .gpu_calls
            .filter(|g| g.launches_per_s > 0.0)
            .map(|g| format_rate(g.launches_per_s))
            .unwrap_or_default(),
        SortKey::Watts => format_watts(row.watts),
        SortKey::Joules => format_joules(row.joules),
        SortKey::Gco2 => format_gco2(row.gco2),
        SortKey::Gco2PerHour => {
            if matches!(row.kind, RowKind::Thread { .. }) {
                String::new()
            } else {
                format_gco2(row.gco2_per_h)
            }
        }
    }
}

fn header_label(app: &App, key: SortKey) -> String {
    let name = if key == SortKey::Pid && app.view.grouping != Grouping::None {
        "PROCS"
    } else {
        key.label()
    };
    if key == app.view.sort {
        format!("{name}{}", if app.view.descending { "▼" } else { "▲" })
    } else {
        name.to_string()
    }
}

fn aligned(text: String, key: SortKey) -> Line<'static> {
    if numeric(key) {
        Line::from(text).right_aligned()
    } else {
        Line::from(text)
    }
}

pub struct ProcessTable<'a>(pub &'a App);

impl Widget for ProcessTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let theme = Theme::new(app.color);
        let columns = visible_columns(area.width);
        let header = Row::new(columns.iter().map(|&key| {
            let style = if key == app.view.sort {
                theme.sort_column()
            } else {
                Style::new()
            };
            Cell::from(aligned(header_label(app, key), key)).style(style)
        }))
        .style(theme.bar());
        let max_watts = app.rows.iter().map(|r| r.watts).fold(0.0, f64::max);
        // Only the rows on screen are formatted: with thousands of processes the
        // cells of the others would cost more than the whole rest of the frame.
        let (offset, visible) = window(app.rows.len(), app.selected, area.height.saturating_sub(1));
        let rows = app.rows[offset..offset + visible].iter().map(|row| {
            let cells = columns.iter().map(|&key| {
                let cell = Cell::from(Text::from(aligned(cell_text(row, key), key)));
                if key == SortKey::Watts && !row.fading && max_watts > 0.0 {
                    cell.style(theme.heat(row.watts / max_watts))
                } else {
                    cell
                }
            });
            let style = if row.fading {
                theme.fading()
            } else {
                Style::new()
            };
            Row::new(cells).style(style)
        });
        let widths = columns.iter().map(|&key| {
            if key == SortKey::Command {
                Constraint::Fill(1)
            } else {
                Constraint::Length(width(key))
            }
        });
        let table = Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .row_highlight_style(theme.selected());
        let selected = (!app.rows.is_empty()).then_some(app.selected.saturating_sub(offset));
        let mut state = TableState::default().with_selected(selected);
        StatefulWidget::render(table, area, buf, &mut state);
    }
}

/// First row shown and how many: the page that keeps `selected` on screen, scrolled
/// as little as possible from the top (what a fresh `TableState` would do).
fn window(len: usize, selected: usize, height: u16) -> (usize, usize) {
    let height = usize::from(height).max(1);
    let offset = selected
        .min(len.saturating_sub(1))
        .saturating_sub(height - 1);
    (offset, height.min(len - offset.min(len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Msg, update};
    use crate::fixtures::{OWN_PID, interval};

    #[test]
    fn only_the_page_around_the_selection_is_built() {
        for (len, selected, height, want) in [
            (0, 0, 10, (0, 0)),
            (5, 0, 10, (0, 5)),
            (2000, 0, 10, (0, 10)),
            (2000, 9, 10, (0, 10)),
            (2000, 10, 10, (1, 10)),
            (2000, 1999, 10, (1990, 10)),
            (3, 7, 10, (0, 3)),
            (2000, 5, 0, (5, 1)),
        ] {
            assert_eq!(
                window(len, selected, height),
                want,
                "{len} rows, selected {selected}, {height} high"
            );
        }
    }

    #[test]
    fn narrow_screens_drop_the_least_important_columns() {
        use SortKey::*;
        assert_eq!(
            visible_columns(120).len(),
            12,
            "the GPU call columns fit at 120"
        );
        assert_eq!(
            visible_columns(108),
            vec![
                Pid,
                User,
                Job,
                Command,
                Cpu,
                Gpu,
                GpuSync,
                Watts,
                Joules,
                Gco2,
                Gco2PerHour
            ]
        );
        assert_eq!(
            visible_columns(80),
            vec![Pid, Job, Command, Cpu, Watts, Joules, Gco2, Gco2PerHour]
        );
        assert_eq!(visible_columns(32), vec![Pid, Command, Watts]);
        assert_eq!(visible_columns(31), vec![Pid, Command]);
        assert_eq!(visible_columns(0), vec![Pid]);
    }

    #[test]
    fn renders_rows_with_marker_and_selection() {
        let mut app = App::new(1.0, OWN_PID, false);
        update(&mut app, Msg::Interval(Box::new(interval(1, true))));
        update(&mut app, Msg::SortBy(SortKey::Pid));
        let mut buf = Buffer::empty(Rect::new(0, 0, 36, 4));
        ProcessTable(&app).render(buf.area, &mut buf);
        let mut expected = Buffer::with_lines([
            "   PID▲ COMMAND                    W",
            "      1 systemd              21.7 mW",
            "    812 sshd                 54.2 mW",
            "   1200 bash                  119 mW",
        ]);
        let theme = Theme::new(false);
        expected.set_style(Rect::new(0, 0, 36, 1), theme.bar());
        expected.set_style(
            Rect::new(0, 0, 7, 1),
            theme.bar().patch(theme.sort_column()),
        );
        expected.set_style(Rect::new(0, 1, 36, 1), theme.selected());
        assert_eq!(buf, expected);
    }
}
