//! The palette. Every meaning also has a modifier (bold, reverse, dim, underline) so
//! the screen reads in monochrome; with NO_COLOR only the modifiers remain.
use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn paint(self, style: Style, fg: Color) -> Style {
        if self.color { style.fg(fg) } else { style }
    }

    /// The top bar and the table's header row.
    pub fn bar(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    pub fn label(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Cyan)
    }

    pub fn measured(self) -> Style {
        self.paint(Style::new(), Color::Green)
    }

    /// Estimated numbers: bold so that they stand out even without colour.
    pub fn estimated(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Yellow)
    }

    pub fn warning(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Red)
    }

    pub fn note(self) -> Style {
        self.paint(Style::new(), Color::Yellow)
    }

    /// The selected row: reverse video, never colour alone.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }

    /// Exited processes on their way out.
    pub fn fading(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::DIM), Color::DarkGray)
    }

    pub fn sort_column(self) -> Style {
        Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD)
    }

    pub fn sparkline(self, domain: &str) -> Style {
        let color = match domain {
            "CPU" => Color::Green,
            "DRAM" => Color::Blue,
            _ => Color::Magenta,
        };
        self.paint(Style::new(), color)
    }

    /// The W cell by its share of the hungriest row: the top stands out.
    pub fn heat(self, share: f64) -> Style {
        if share >= 0.5 {
            self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Red)
        } else if share >= 0.1 {
            self.paint(Style::new(), Color::Yellow)
        } else {
            Style::new()
        }
    }

    pub fn key(self) -> Style {
        self.paint(Style::new().add_modifier(Modifier::BOLD), Color::Cyan)
    }
}
