//! Things drawn over the screen: the help overlay listing every key and the `k`
//! confirmation dialog.
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use crate::app::{App, KillDialog, Signal};
use crate::keys::KEY_HELP;
use crate::view::theme::Theme;

/// A `width`×`height` rectangle centred in `area`, clipped to it.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

pub struct HelpOverlay<'a>(pub &'a App);

impl Widget for HelpOverlay<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = Theme::new(self.0.color);
        let lines: Vec<Line> = KEY_HELP
            .iter()
            .map(|(keys, what)| {
                Line::from(vec![
                    Span::styled(format!("{keys:<24}"), theme.key()),
                    Span::raw(*what),
                ])
            })
            .collect();
        let rect = centered(area, 70, lines.len() as u16 + 2);
        Clear.render(rect, buf);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(" greentop keys — Esc closes ", theme.label()));
        Paragraph::new(lines).block(block).render(rect, buf);
    }
}

pub struct KillConfirm<'a> {
    pub dialog: &'a KillDialog,
    pub theme: Theme,
}

impl Widget for KillConfirm<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let choice = |signal: Signal| {
            let text = format!(" {} ", signal.name());
            if self.dialog.signal == signal {
                Span::styled(format!("[{text}]"), self.theme.selected())
            } else {
                Span::raw(format!(" {text} "))
            }
        };
        let lines = vec![
            Line::from(format!(
                "Send a signal to {} ({})?",
                self.dialog.pid, self.dialog.command
            )),
            Line::from(""),
            Line::from(vec![
                Span::raw("   "),
                choice(Signal::Term),
                Span::raw("   "),
                choice(Signal::Kill),
            ]),
            Line::from(""),
            Line::from(Span::styled(
                "y/Enter send · n/Esc cancel · ←/→ choose",
                self.theme.note(),
            )),
        ];
        let rect = centered(area, 50, 7);
        Clear.render(rect, buf);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(Span::styled(" kill ", self.theme.warning()));
        Paragraph::new(lines).block(block).render(rect, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centered_is_clipped() {
        assert_eq!(
            centered(Rect::new(0, 0, 10, 4), 20, 2),
            Rect::new(0, 1, 10, 2)
        );
        assert_eq!(centered(Rect::new(2, 2, 0, 0), 5, 5), Rect::new(2, 2, 0, 0));
    }

    #[test]
    fn kill_dialog_marks_the_chosen_signal() {
        let dialog = KillDialog {
            pid: 812,
            command: "sshd".into(),
            signal: Signal::Term,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 50, 7));
        KillConfirm {
            dialog: &dialog,
            theme: Theme::new(false),
        }
        .render(buf.area, &mut buf);
        let mut expected = Buffer::with_lines([
            "┌ kill ──────────────────────────────────────────┐",
            "│Send a signal to 812 (sshd)?                    │",
            "│                                                │",
            "│   [ SIGTERM ]     SIGKILL                      │",
            "│                                                │",
            "│y/Enter send · n/Esc cancel · ←/→ choose        │",
            "└────────────────────────────────────────────────┘",
        ]);
        let theme = Theme::new(false);
        expected.set_style(Rect::new(1, 0, 6, 1), theme.warning());
        expected.set_style(Rect::new(4, 3, 11, 1), theme.selected());
        assert_eq!(buf, expected);
    }
}
