//! Colours and emphasis. Colour never carries meaning alone: every state
//! is also written out in words ("BLOCKED", "EXITED"), so the monochrome
//! theme (and `NO_COLOR`) loses nothing but colour.

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::BorderType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    Default,
    /// For a classroom projector: high contrast, bold, thick borders and
    /// gauges, big figures.
    Projector,
    /// Dark text for light terminal backgrounds.
    Light,
    Mono,
}

impl Theme {
    pub const ALL: [Theme; 4] = [Theme::Default, Theme::Projector, Theme::Light, Theme::Mono];

    /// `NO_COLOR` set (to anything) means monochrome.
    pub fn from_env() -> Theme {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            Theme::Mono
        } else {
            Theme::Default
        }
    }

    pub fn parse(s: &str) -> Option<Theme> {
        Theme::ALL.into_iter().find(|t| t.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Theme::Default => "default",
            Theme::Projector => "projector",
            Theme::Light => "light",
            Theme::Mono => "mono",
        }
    }

    pub fn next(self) -> Theme {
        let i = Theme::ALL.iter().position(|&t| t == self).unwrap_or(0);
        Theme::ALL[(i + 1) % Theme::ALL.len()]
    }

    /// Big, bold, high-contrast: the projector theme.
    pub fn is_projector(self) -> bool {
        self == Theme::Projector
    }

    fn fg(self, dark: Color, light: Color) -> Style {
        match self {
            Theme::Mono => Style::default(),
            Theme::Light => Style::default().fg(light),
            Theme::Projector => Style::default().fg(dark).add_modifier(Modifier::BOLD),
            Theme::Default => Style::default().fg(dark),
        }
    }

    pub fn title(self) -> Style {
        let s = match self {
            Theme::Projector => Style::default().fg(Color::LightCyan),
            _ => self.fg(Color::Cyan, Color::Blue),
        };
        s.add_modifier(Modifier::BOLD)
    }
    pub fn dim(self) -> Style {
        match self {
            Theme::Mono => Style::default(),
            Theme::Light => Style::default().fg(Color::Gray),
            // On a projector, grey washes out: keep it readable.
            Theme::Projector => Style::default().fg(Color::Gray),
            Theme::Default => Style::default().fg(Color::DarkGray),
        }
    }
    pub fn label(self) -> Style {
        match self {
            Theme::Projector => Style::default().fg(Color::White),
            _ => self.fg(Color::Gray, Color::Black),
        }
    }
    pub fn value(self) -> Style {
        match self {
            Theme::Projector => Style::default().fg(Color::LightYellow).add_modifier(Modifier::BOLD),
            _ => Style::default().add_modifier(Modifier::BOLD),
        }
    }
    pub fn good(self) -> Style {
        self.fg(Color::LightGreen, Color::Green)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::LightRed, Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow, Color::Magenta).add_modifier(Modifier::BOLD)
    }
    pub fn selected_border(self) -> Style {
        match self {
            Theme::Mono => Style::default().add_modifier(Modifier::BOLD),
            _ => self.title(),
        }
    }
    pub fn border(self) -> Style {
        match self {
            Theme::Projector => Style::default().fg(Color::White),
            _ => self.dim(),
        }
    }
    pub fn border_type(self, selected: bool) -> BorderType {
        match (self, selected) {
            (_, true) => BorderType::Thick,
            (Theme::Projector, false) => BorderType::Double,
            _ => BorderType::Plain,
        }
    }
    pub fn gauge(self) -> Style {
        self.fg(Color::LightBlue, Color::Blue)
    }
    pub fn gauge_full(self) -> Style {
        self.fg(Color::LightRed, Color::Red)
    }
    /// Rows a fill gauge takes: thicker on a projector.
    pub fn gauge_rows(self) -> u16 {
        if self.is_projector() {
            2
        } else {
            1
        }
    }

    /// Style of a process's part: a sender blocked on a full channel is
    /// the loudest thing on screen; waiting for data is normal.
    pub fn party(self, party: crate::model::figures::Party) -> Style {
        use crate::model::figures::Party;
        match party {
            Party::BlockedFull => self.bad().add_modifier(Modifier::REVERSED),
            Party::Paused => self.fg(Color::LightMagenta, Color::Magenta).add_modifier(Modifier::BOLD),
            Party::StepHeld | Party::WaitingPartner | Party::Stalled => self.warn(),
            Party::Running => self.good(),
            Party::Exited | Party::NotStarted => self.dim(),
            Party::WaitingData | Party::Pacing | Party::Idle => self.label(),
        }
    }

    /// Style for a process by its state: blocked and stopped stand out.
    pub fn state(self, p: &crate::model::figures::ProcessSnapshot) -> Style {
        use crate::model::figures::Wait;
        match p.waiting() {
            Wait::Running => self.good(),
            Wait::Stopped => self.fg(Color::LightMagenta, Color::Magenta).add_modifier(Modifier::BOLD),
            Wait::Exited | Wait::Zombie => self.dim(),
            _ if p.blocked() => self.warn(),
            _ => self.label(),
        }
    }
}
