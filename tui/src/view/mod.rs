//! Rendering: the whole screen as a pure function of `App`. Each part is a widget
//! in its own module; `Screen` lays them out and drops panels that do not fit.
pub mod banner;
pub mod details;
pub mod gpu;
pub mod header;
pub mod overlay;
pub mod table;
pub mod theme;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::App;
use theme::Theme;

/// Rows the table keeps before optional panels are dropped.
const MIN_TABLE_ROWS: u16 = 6;

/// Where each part goes; zero-height parts are not drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    pub title: Rect,
    pub header: Rect,
    pub banner: Rect,
    pub gpu: Rect,
    pub table: Rect,
    pub details: Rect,
    pub footer: Rect,
}

pub fn layout(app: &App, area: Rect) -> Areas {
    let mut budget = area.height.saturating_sub(2 + MIN_TABLE_ROWS);
    let mut take = |want: u16| {
        let got = want.min(budget);
        budget -= got;
        got
    };
    let header = take(header::height(app));
    let banner = take(u16::from(banner::banner_line(app).is_some()));
    let gpus = app
        .system
        .summary
        .as_ref()
        .map_or(0, |s| s.gpus.len() as u16);
    let gpu = take(gpus);
    let [title, header, banner, gpu, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(header),
        Constraint::Length(banner),
        Constraint::Length(gpu),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let (table, details) = if !app.details {
        (body, Rect::default())
    } else if body.width >= 140 {
        let [t, d] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(body);
        (t, d)
    } else {
        let table_pct = if body.height < 20 { 35 } else { 45 };
        let [t, d] =
            Layout::vertical([Constraint::Percentage(table_pct), Constraint::Fill(1)]).areas(body);
        (t, d)
    };
    Areas {
        title,
        header,
        banner,
        gpu,
        table,
        details,
        footer,
    }
}

/// The whole screen.
pub struct Screen<'a>(pub &'a App);

impl Widget for Screen<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let app = self.0;
        let areas = layout(app, area);
        Paragraph::new(header::title_line(app))
            .style(Theme::new(app.color).bar())
            .render(areas.title, buf);
        header::Header(app).render(areas.header, buf);
        if let Some(line) = banner::banner_line(app) {
            Paragraph::new(line).render(areas.banner, buf);
        }
        gpu::GpuPanel(app).render(areas.gpu, buf);
        table::ProcessTable(app).render(areas.table, buf);
        if app.details {
            details::DetailsPane(app).render(areas.details, buf);
        }
        Paragraph::new(banner::footer_line(app)).render(areas.footer, buf);
        if app.help {
            overlay::HelpOverlay(app).render(area, buf);
        }
        if let Some(dialog) = &app.kill {
            overlay::KillConfirm {
                dialog,
                theme: Theme::new(app.color),
            }
            .render(area, buf);
        }
    }
}
