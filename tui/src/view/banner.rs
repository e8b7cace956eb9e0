//! The one-line banner (messages, ledger losses, reduced fidelity and energy notes)
//! and the footer (key hints, or the filter being typed).
use ratatui::text::{Line, Span};

use crate::app::{App, InputMode};
use crate::view::theme::Theme;

/// The banner, if there is anything to say.
pub fn banner_line(app: &App) -> Option<Line<'static>> {
    let theme = Theme::new(app.color);
    let mut spans = Vec::new();
    if let Some(message) = app.message() {
        spans.push(Span::styled(format!("{message}  "), theme.warning()));
    }
    if let Some(sys) = app.system.summary.as_ref() {
        let health = &sys.ledger_health;
        if health.dropped_slices > 0 || health.lost_events > 0 {
            spans.push(Span::styled(
                format!(
                    "⚠ ledger lost {} events, dropped {} slices ({:.2} s)  ",
                    health.lost_events, health.dropped_slices, health.dropped_cpu_seconds
                ),
                theme.warning(),
            ));
        }
        for note in sys.notes() {
            spans.push(Span::styled(format!("⚠ {note}  "), theme.note()));
        }
    }
    (!spans.is_empty()).then(|| Line::from(spans))
}

const HINTS: [(&str, &str); 11] = [
    ("F1", "Help"),
    ("/", "Filter"),
    ("\\", "Job"),
    ("t", "Tree"),
    ("H", "Threads"),
    ("g", "Group"),
    ("PWEC", "Sort"),
    ("Enter", "Details"),
    ("k", "Kill"),
    ("space", "Pause"),
    ("q", "Quit"),
];

/// Key hints, or the prompt while a filter is typed.
pub fn footer_line(app: &App) -> Line<'static> {
    let theme = Theme::new(app.color);
    match app.input {
        Some(mode) => {
            let (name, text) = match mode {
                InputMode::Filter => ("Filter", &app.view.filter),
                InputMode::JobFilter => ("Job", &app.view.job_filter),
            };
            Line::from(vec![
                Span::styled(format!("{name}: "), theme.key()),
                Span::raw(format!("{text}_")),
                Span::styled("   Enter keep · Esc clear", theme.note()),
            ])
        }
        None => Line::from(
            HINTS
                .iter()
                .flat_map(|(key, what)| {
                    [
                        Span::styled(*key, theme.bar()),
                        Span::raw(format!("{what} ")),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Msg, update};
    use crate::fixtures::interval;

    #[test]
    fn banner_says_why_fidelity_is_reduced() {
        let mut app = App::new(1.0, 0, true);
        assert_eq!(banner_line(&app), None);
        let mut iv = interval(1, false);
        iv.system.ledger_health.lost_events = 5;
        update(&mut app, Msg::Interval(Box::new(iv)));
        let text = banner_line(&app).map(|l| l.to_string()).unwrap_or_default();
        assert!(text.starts_with("⚠ ledger lost 5 events"), "{text}");
        assert!(text.contains("⚠ lower fidelity /proc sampling"), "{text}");
    }

    #[test]
    fn footer_prompts_while_typing() {
        let mut app = App::new(1.0, 0, true);
        assert!(footer_line(&app).to_string().starts_with("F1Help /Filter"));
        update(&mut app, Msg::StartInput(InputMode::Filter));
        update(&mut app, Msg::InputChar('s'));
        assert_eq!(
            footer_line(&app).to_string(),
            "Filter: s_   Enter keep · Esc clear"
        );
    }
}
