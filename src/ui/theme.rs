//! Colours and emphasis. Colour never carries meaning alone: every state
//! is also written out in words ("BLOCKED", "EXITED").

use ratatui::style::{Color, Modifier, Style};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    Default,
    Mono,
}

impl Theme {
    /// `NO_COLOR` set (to anything) means monochrome.
    pub fn from_env() -> Theme {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            Theme::Mono
        } else {
            Theme::Default
        }
    }

    fn fg(self, c: Color) -> Style {
        match self {
            Theme::Mono => Style::default(),
            Theme::Default => Style::default().fg(c),
        }
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn dim(self) -> Style {
        match self {
            Theme::Mono => Style::default(),
            Theme::Default => Style::default().fg(Color::DarkGray),
        }
    }
    pub fn label(self) -> Style {
        self.fg(Color::Gray)
    }
    pub fn value(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn selected_border(self) -> Style {
        match self {
            Theme::Mono => Style::default().add_modifier(Modifier::BOLD),
            Theme::Default => Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        }
    }
    pub fn gauge(self) -> Style {
        self.fg(Color::Blue)
    }
    pub fn gauge_full(self) -> Style {
        self.fg(Color::Red)
    }

    /// Style for a process by its state: blocked and stopped stand out.
    pub fn state(self, state: &str, wchan: &str) -> Style {
        match state {
            "R" => self.good(),
            "T" | "t" => self.fg(Color::Magenta).add_modifier(Modifier::BOLD),
            "-" | "Z" | "" => self.dim(),
            _ if crate::monitor::procfs::is_blocked(state, wchan) => self.warn(),
            _ => self.label(),
        }
    }
}
