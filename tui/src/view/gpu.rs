//! The GPU panel: one line per device with power, energy this interval,
//! utilisation and the processes on it. Shown only when the interval has GPUs.
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::App;
use crate::format::{format_joules, format_watts};
use crate::view::theme::Theme;

fn pct(value: Option<u32>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v}%"))
}

/// One line per GPU; empty without GPUs.
pub fn gpu_lines(app: &App) -> Vec<Line<'static>> {
    let theme = Theme::new(app.color);
    let Some(sys) = app.system.summary.as_ref() else {
        return Vec::new();
    };
    let wall_s = app.system.interval_s.max(f64::MIN_POSITIVE);
    sys.gpus
        .iter()
        .map(|gpu| {
            let procs: Vec<String> = gpu
                .processes
                .iter()
                .map(|p| {
                    let comm = app
                        .procs
                        .iter()
                        .find(|r| r.pid == p.pid)
                        .map_or("?", |r| r.comm.as_str());
                    format!("{} {comm} {}", p.pid, pct(p.sm_util_pct))
                })
                .collect();
            let watts = gpu.power_w.unwrap_or(gpu.joules / wall_s);
            Line::from(vec![
                Span::styled(format!("GPU{} ", gpu.index), theme.label()),
                Span::raw(format!(
                    "{}  {}  {} this interval  util {} mem {}  procs: {}",
                    gpu.name,
                    format_watts(watts),
                    format_joules(gpu.joules),
                    pct(gpu.gpu_util_pct),
                    pct(gpu.mem_util_pct),
                    if procs.is_empty() {
                        "none".to_string()
                    } else {
                        procs.join(", ")
                    }
                )),
            ])
        })
        .collect()
}

pub struct GpuPanel<'a>(pub &'a App);

impl Widget for GpuPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Paragraph::new(gpu_lines(self.0)).render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Msg, update};
    use crate::fixtures::{OWN_PID, interval};

    #[test]
    fn one_line_per_gpu_with_its_processes() {
        let mut app = App::new(1.0, OWN_PID, false);
        assert!(gpu_lines(&app).is_empty());
        update(&mut app, Msg::Interval(Box::new(interval(1, true))));
        let mut buf = Buffer::empty(Rect::new(0, 0, 60, 1));
        GpuPanel(&app).render(buf.area, &mut buf);
        let mut expected =
            Buffer::with_lines(["GPU0 NVIDIA H100 80GB HBM3  212 W  212 J this interval  util"]);
        expected.set_style(Rect::new(0, 0, 5, 1), Theme::new(false).label());
        assert_eq!(buf, expected);
        let text = gpu_lines(&app)[0].to_string();
        assert!(text.ends_with("procs: 2301 python 85%"), "{text}");
    }
}
