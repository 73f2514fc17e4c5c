//! Colours and emphasis. Colour never carries meaning alone: every state
//! is also written out in words ("BLOCKED", "EXITED"), so the monochrome
//! theme (and `NO_COLOR`) loses nothing but colour.

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::BorderType;
use serde::{Deserialize, Serialize};

/// The light theme's colours, for a white background: each has a WCAG
/// contrast ratio of at least 4.5:1 against white (`tests` computes it).
mod light {
    use ratatui::style::Color;
    pub const BLACK: Color = Color::Rgb(0, 0, 0);
    pub const TEXT: Color = Color::Rgb(0x1a, 0x1a, 0x1a);
    pub const GREY: Color = Color::Rgb(0x59, 0x59, 0x59);
    pub const BLUE: Color = Color::Rgb(0x00, 0x50, 0xa0);
    pub const GREEN: Color = Color::Rgb(0x1b, 0x6e, 0x20);
    pub const RED: Color = Color::Rgb(0xb7, 0x1c, 0x1c);
    pub const ORANGE: Color = Color::Rgb(0x8a, 0x4b, 0x00);
    pub const PURPLE: Color = Color::Rgb(0x7b, 0x1f, 0xa2);
}

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

    /// `dark` on a dark terminal (the 16 ANSI colours only: the terminal's
    /// own palette, which the user chose readable); `light` (RGB, checked
    /// for contrast against white by a test) on a light one.
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
            _ => self.fg(Color::Cyan, light::BLUE),
        };
        s.add_modifier(Modifier::BOLD)
    }
    pub fn dim(self) -> Style {
        match self {
            Theme::Mono => Style::default(),
            // ANSI grey (7) is nearly invisible on white: a dark grey.
            Theme::Light => Style::default().fg(light::GREY),
            // On a projector, grey washes out: keep it readable.
            Theme::Projector => Style::default().fg(Color::Gray),
            Theme::Default => Style::default().fg(Color::DarkGray),
        }
    }
    pub fn label(self) -> Style {
        match self {
            Theme::Projector => Style::default().fg(Color::White),
            _ => self.fg(Color::Gray, light::TEXT),
        }
    }
    /// Plain body text (the event log's calls).
    pub fn text(self) -> Style {
        match self {
            Theme::Projector => Style::default().fg(Color::White),
            Theme::Light => Style::default().fg(light::TEXT),
            _ => Style::default(),
        }
    }
    pub fn value(self) -> Style {
        match self {
            Theme::Projector => Style::default().fg(Color::LightYellow).add_modifier(Modifier::BOLD),
            Theme::Light => Style::default().fg(light::BLACK).add_modifier(Modifier::BOLD),
            _ => Style::default().add_modifier(Modifier::BOLD),
        }
    }
    pub fn good(self) -> Style {
        self.fg(Color::LightGreen, light::GREEN)
    }
    pub fn bad(self) -> Style {
        self.fg(Color::LightRed, light::RED).add_modifier(Modifier::BOLD)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow, light::ORANGE).add_modifier(Modifier::BOLD)
    }
    /// Stopped (paused, SIGSTOP): apart from warnings.
    pub fn stopped(self) -> Style {
        self.fg(Color::LightMagenta, light::PURPLE).add_modifier(Modifier::BOLD)
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
        self.fg(Color::LightBlue, light::BLUE)
    }
    pub fn gauge_full(self) -> Style {
        self.fg(Color::LightRed, light::RED)
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
            Party::Paused => self.stopped(),
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
            Wait::Stopped => self.stopped(),
            Wait::Exited | Wait::Zombie => self.dim(),
            _ if p.blocked() => self.warn(),
            _ => self.label(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figures::Party;

    const PARTIES: [Party; 10] = [
        Party::BlockedFull,
        Party::WaitingData,
        Party::WaitingPartner,
        Party::StepHeld,
        Party::Paused,
        Party::Pacing,
        Party::Running,
        Party::Idle,
        Party::Exited,
        Party::NotStarted,
    ];

    /// Every style a theme hands out (what panels and the frame draw with).
    fn styles(th: Theme) -> Vec<(String, Style)> {
        let mut v = vec![
            ("title".into(), th.title()),
            ("dim".into(), th.dim()),
            ("label".into(), th.label()),
            ("value".into(), th.value()),
            ("text".into(), th.text()),
            ("good".into(), th.good()),
            ("bad".into(), th.bad()),
            ("warn".into(), th.warn()),
            ("stopped".into(), th.stopped()),
            ("selected_border".into(), th.selected_border()),
            ("border".into(), th.border()),
            ("gauge".into(), th.gauge()),
            ("gauge_full".into(), th.gauge_full()),
        ];
        v.extend(PARTIES.iter().map(|&p| (format!("party {p:?}"), th.party(p))));
        v
    }

    /// WCAG 2 relative luminance of an sRGB colour.
    fn luminance(c: Color) -> f64 {
        let Color::Rgb(r, g, b) = c else { panic!("{c:?} is not RGB: its contrast depends on the terminal") };
        let lin = |v: u8| {
            let v = v as f64 / 255.0;
            if v <= 0.04045 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }

    fn contrast(a: Color, b: Color) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    #[test]
    fn contrast_formula_matches_known_pairs() {
        let white = Color::Rgb(255, 255, 255);
        assert!((contrast(Color::Rgb(0, 0, 0), white) - 21.0).abs() < 0.01);
        // #767676 is the lightest grey that passes AA on white.
        assert!((contrast(Color::Rgb(0x76, 0x76, 0x76), white) - 4.54).abs() < 0.01);
    }

    /// Every text colour of the light theme on its white background (and
    /// reversed, white on it: the same pair) reaches WCAG AA, 4.5:1.
    #[test]
    fn light_theme_pairs_reach_wcag_aa_on_white() {
        let white = Color::Rgb(255, 255, 255);
        for (name, st) in styles(Theme::Light) {
            let fg = st.fg.unwrap_or_else(|| panic!("light {name} has no colour of its own"));
            let bg = st.bg.unwrap_or(white);
            let r = contrast(fg, bg);
            assert!(r >= 4.5, "light {name}: {fg:?} on {bg:?} has contrast {r:.2} < 4.5");
        }
    }

    /// The default and projector themes use the terminal's 16 ANSI colours
    /// only; mono uses none.
    #[test]
    fn default_palettes_are_the_16_ansi_colours() {
        use Color::*;
        let ansi = [
            Black,
            Red,
            Green,
            Yellow,
            Blue,
            Magenta,
            Cyan,
            Gray,
            DarkGray,
            LightRed,
            LightGreen,
            LightYellow,
            LightBlue,
            LightMagenta,
            LightCyan,
            White,
        ];
        for th in [Theme::Default, Theme::Projector] {
            for (name, st) in styles(th) {
                for c in [st.fg, st.bg].into_iter().flatten() {
                    assert!(ansi.contains(&c), "{} {name}: {c:?} is not one of the 16 ANSI colours", th.name());
                }
            }
        }
        for (name, st) in styles(Theme::Mono) {
            assert!(st.fg.is_none() && st.bg.is_none(), "mono {name} has a colour");
        }
    }
}
