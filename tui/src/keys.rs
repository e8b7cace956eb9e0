//! Terminal events to `Msg`s, with htop's key habits. Which keys mean what depends
//! on the mode: a dialog, text entry, the help overlay, or the table.
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};

use crate::app::{App, InputMode, Msg};
use crate::state::feed::Seek;
use crate::state::rows::SortKey;

/// Rows one mouse-wheel notch moves.
const WHEEL_ROWS: isize = 3;

/// Every key, for the help overlay and docs/tui.md: (keys, what they do).
pub const KEY_HELP: [(&str, &str); 22] = [
    (
        "↑ ↓ PgUp PgDn Home End",
        "move the selection (mouse wheel too)",
    ),
    ("< > F6", "sort by the column left / right"),
    ("P", "sort by CPU% (again: flip direction)"),
    ("W", "sort by watts now (again: flip)"),
    ("E", "sort by energy since seen (again: flip)"),
    ("C", "sort by gCO₂ since seen (again: flip)"),
    ("/", "filter: command, user, job or pid"),
    ("\\", "filter by job"),
    ("  Enter / Esc", "  keep the filter / clear it"),
    ("t", "tree view (children under parents)"),
    ("H", "show threads under processes"),
    ("g", "group: none → job → cgroup → user"),
    ("Enter", "details of the selected process"),
    ("Esc", "close details, help or dialog"),
    ("space", "pause the display (data still collected)"),
    ("+ -", "refresh longer / shorter (replay: speed)"),
    ("← → Home End", "replay: a minute back / on, start / end"),
    ("k", "send a signal to the selected process"),
    ("  ← → Tab", "  choose SIGTERM / SIGKILL"),
    ("  y Enter / n Esc", "  send / cancel"),
    ("? F1", "this help"),
    ("q F10 Ctrl-C", "quit"),
];

/// The message for a terminal event, if it means anything now.
pub fn event_to_msg(app: &App, event: &Event) -> Option<Msg> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => key_to_msg(app, key),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Msg::Move(-WHEEL_ROWS)),
            MouseEventKind::ScrollDown => Some(Msg::Move(WHEEL_ROWS)),
            _ => None,
        },
        Event::Resize(width, height) => Some(Msg::Resize {
            width: *width,
            height: *height,
        }),
        _ => None,
    }
}

pub fn key_to_msg(app: &App, key: &KeyEvent) -> Option<Msg> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Msg::Quit);
    }
    if app.kill.is_some() {
        return match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(Msg::KillConfirm),
            KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Msg::Escape),
            KeyCode::Left | KeyCode::Right | KeyCode::Tab | KeyCode::Up | KeyCode::Down => {
                Some(Msg::KillToggleSignal)
            }
            _ => None,
        };
    }
    if app.input.is_some() {
        return match key.code {
            KeyCode::Esc => Some(Msg::InputCancel),
            KeyCode::Enter => Some(Msg::InputAccept),
            KeyCode::Backspace => Some(Msg::InputBackspace),
            KeyCode::Char(c) => Some(Msg::InputChar(c)),
            _ => None,
        };
    }
    if app.help {
        return match key.code {
            KeyCode::Char('q') | KeyCode::F(10) => Some(Msg::Quit),
            _ => Some(Msg::Escape),
        };
    }
    table_key(app, key)
}

fn table_key(app: &App, key: &KeyEvent) -> Option<Msg> {
    if app.feed.is_replay() {
        let seek = match key.code {
            KeyCode::Left => Some(Seek::By(-60)),
            KeyCode::Right => Some(Seek::By(60)),
            KeyCode::Home => Some(Seek::Start),
            KeyCode::End => Some(Seek::End),
            _ => None,
        };
        if let Some(seek) = seek {
            return Some(Msg::Seek(seek));
        }
    }
    let msg = match key.code {
        KeyCode::Up => Msg::Move(-1),
        KeyCode::Down => Msg::Move(1),
        KeyCode::PageUp => Msg::PageUp,
        KeyCode::PageDown => Msg::PageDown,
        KeyCode::Home => Msg::Home,
        KeyCode::End => Msg::End,
        KeyCode::Char('<') => Msg::SortStep(-1),
        KeyCode::Char('>') | KeyCode::F(6) => Msg::SortStep(1),
        KeyCode::Char('P') => Msg::SortBy(SortKey::Cpu),
        KeyCode::Char('W') => Msg::SortBy(SortKey::Watts),
        KeyCode::Char('E') => Msg::SortBy(SortKey::Joules),
        KeyCode::Char('C') => Msg::SortBy(SortKey::Gco2),
        KeyCode::Char('/') => Msg::StartInput(InputMode::Filter),
        KeyCode::Char('\\') => Msg::StartInput(InputMode::JobFilter),
        KeyCode::Char('t') => Msg::ToggleTree,
        KeyCode::Char('H') => Msg::ToggleThreads,
        KeyCode::Char('g') => Msg::CycleGrouping,
        KeyCode::Enter => Msg::OpenDetails,
        KeyCode::Esc => Msg::Escape,
        KeyCode::Char(' ') => Msg::TogglePause,
        KeyCode::Char('+' | '=') => Msg::RefreshStep(1),
        KeyCode::Char('-') => Msg::RefreshStep(-1),
        KeyCode::Char('k') => Msg::AskKill,
        KeyCode::Char('?') | KeyCode::F(1) => Msg::ToggleHelp,
        KeyCode::Char('q') | KeyCode::F(10) => Msg::Quit,
        _ => return None,
    };
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_depend_on_the_mode() {
        let mut app = App::new(1.0, 0, true);
        assert_eq!(
            key_to_msg(&app, &key(KeyCode::Char('P'))),
            Some(Msg::SortBy(SortKey::Cpu))
        );
        assert_eq!(
            key_to_msg(&app, &key(KeyCode::F(6))),
            Some(Msg::SortStep(1))
        );
        assert_eq!(key_to_msg(&app, &key(KeyCode::Char('x'))), None);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        app.input = Some(InputMode::Filter);
        assert_eq!(
            key_to_msg(&app, &key(KeyCode::Char('q'))),
            Some(Msg::InputChar('q'))
        );
        assert_eq!(key_to_msg(&app, &ctrl_c), Some(Msg::Quit));
        app.input = None;
        app.help = true;
        assert_eq!(
            key_to_msg(&app, &key(KeyCode::Char('x'))),
            Some(Msg::Escape)
        );
        app.help = false;
        app.kill = Some(crate::app::KillDialog {
            pid: 5,
            command: "x".into(),
            signal: crate::app::Signal::Term,
        });
        assert_eq!(key_to_msg(&app, &key(KeyCode::Char('q'))), None);
        assert_eq!(
            key_to_msg(&app, &key(KeyCode::Char('y'))),
            Some(Msg::KillConfirm)
        );
        assert_eq!(
            key_to_msg(&app, &key(KeyCode::Tab)),
            Some(Msg::KillToggleSignal)
        );
    }

    #[test]
    fn arrows_home_and_end_seek_in_a_replay_only() {
        let mut app = App::new(1.0, 0, true);
        assert_eq!(key_to_msg(&app, &key(KeyCode::Home)), Some(Msg::Home));
        assert_eq!(key_to_msg(&app, &key(KeyCode::Left)), None);
        app.feed.source = crate::state::feed::FeedSource::Replay { name: "x".into() };
        for (code, seek) in [
            (KeyCode::Left, Seek::By(-60)),
            (KeyCode::Right, Seek::By(60)),
            (KeyCode::Home, Seek::Start),
            (KeyCode::End, Seek::End),
        ] {
            assert_eq!(key_to_msg(&app, &key(code)), Some(Msg::Seek(seek)));
        }
        assert_eq!(key_to_msg(&app, &key(KeyCode::Down)), Some(Msg::Move(1)));
    }

    #[test]
    fn wheel_and_resize() {
        use ratatui::crossterm::event::{MouseEvent, MouseEventKind};
        let app = App::new(1.0, 0, true);
        let wheel = Event::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        });
        assert_eq!(event_to_msg(&app, &wheel), Some(Msg::Move(3)));
        assert_eq!(
            event_to_msg(&app, &Event::Resize(100, 30)),
            Some(Msg::Resize {
                width: 100,
                height: 30
            })
        );
    }
}
