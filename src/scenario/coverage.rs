//! The lecture notes' claims, each tied to the lesson step that makes it
//! happen (`assets/claims.toml`), and the check that the step's
//! observation holds **and** what it observes is drawn on screen at a
//! given size (`ipcscope lesson --coverage --check --size 80x24`).
//!
//! Words are looked for in the body of the frame only (panels and the
//! lesson pane), never in the lesson bar: a caption that names a thing
//! does not show it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

use super::{play_watched, Scenario, Text, SHIPPED};
use crate::i18n::Lang;
use crate::snapshot::Snapshot;
use crate::ui::{self, LessonBar, View};

/// The claim map shipped inside the binary.
pub const CLAIMS: &str = include_str!("../../assets/claims.toml");

/// How many claims the notes make.
pub const NOTES_CLAIMS: u32 = 39;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    claim: Vec<Claim>,
}

/// One claim of the notes and where a lesson shows it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub id: u32,
    pub text: Text,
    pub lesson: Option<String>,
    /// 1-based, as the lesson bar counts.
    pub step: Option<usize>,
    /// Words or figures that must be on screen, in either language.
    #[serde(default)]
    pub see: Vec<String>,
    #[serde(default)]
    pub see_en: Vec<String>,
    #[serde(default)]
    pub see_ko: Vec<String>,
    /// Why no step can show it yet (the row is ✗ whatever the step does).
    pub missing: Option<Text>,
}

impl Claim {
    /// The words to find on screen in `lang`.
    pub fn words(&self, lang: Lang) -> Vec<&str> {
        let own = match lang {
            Lang::En => &self.see_en,
            Lang::Ko => &self.see_ko,
        };
        self.see.iter().chain(own).map(String::as_str).collect()
    }

    /// `lesson:step`, or `-`.
    pub fn place(&self) -> String {
        match (&self.lesson, self.step) {
            (Some(l), Some(s)) => format!("{l}:{s}"),
            _ => "-".into(),
        }
    }
}

/// Read and check the map: ids 1..=39 once each, every lesson shipped,
/// every step inside its lesson, a claim without a step says why.
pub fn parse(text: &str) -> Result<Vec<Claim>> {
    let raw: RawMap = toml::from_str(text).map_err(|e| anyhow!("assets/claims.toml: {}", e.message().trim()))?;
    let mut claims = raw.claim;
    claims.sort_by_key(|c| c.id);
    let ids: Vec<u32> = claims.iter().map(|c| c.id).collect();
    if ids != (1..=NOTES_CLAIMS).collect::<Vec<_>>() {
        bail!("assets/claims.toml: claims must be 1..={NOTES_CLAIMS}, each once (found {ids:?})");
    }
    for c in &claims {
        match (&c.lesson, c.step) {
            (Some(l), Some(s)) => {
                let (n, text) = SHIPPED
                    .iter()
                    .find(|(n, _)| n == l)
                    .ok_or_else(|| anyhow!("claim {}: no shipped lesson {l:?}", c.id))?;
                let sc = Scenario::parse(n, text)?;
                if s == 0 || s > sc.steps.len() {
                    bail!("claim {}: {l} has steps 1..={}, not {s}", c.id, sc.steps.len());
                }
                if c.missing.is_none() && (c.words(Lang::En).is_empty() || c.words(Lang::Ko).is_empty()) {
                    bail!("claim {}: name what must be on screen (see = [...])", c.id);
                }
            }
            (None, None) if c.missing.is_some() => {}
            _ => bail!("claim {}: give lesson and step, or say why not (missing)", c.id),
        }
    }
    Ok(claims)
}

/// The shipped map.
pub fn shipped() -> Result<Vec<Claim>> {
    parse(CLAIMS)
}

/// A claim's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Mapped, not played (no `--check`).
    Unchecked,
    Shown,
    /// The step's observation did not hold, or its words were not on
    /// screen; the reason.
    NotShown(String),
    /// No step can show it yet; the map's reason.
    Missing(String),
}

impl Status {
    pub fn mark(&self) -> &'static str {
        match self {
            Status::Unchecked => "·",
            Status::Shown => "✓",
            Status::NotShown(_) | Status::Missing(_) => "✗",
        }
    }
}

/// What was seen of one claim: its status and the body of the last frame
/// looked at (for `--frames`).
#[derive(Debug, Clone)]
pub struct Seen {
    pub status: Status,
    pub frame: String,
}

/// The body rows of the frame a student sees during step `step` (0-based)
/// of `sc`: the lesson bar is drawn (it takes its rows) but left out of
/// the text returned.
pub fn body_text(sc: &Scenario, step: usize, snap: &Snapshot, lang: Lang, size: (u16, u16)) -> String {
    let st = &sc.steps[step];
    let bar = LessonBar {
        title: sc.title.get(lang).to_string(),
        step: step + 1,
        total: sc.steps.len(),
        caption: st.caption.get(lang).to_string(),
        checks: super::bar_checks(st, snap, lang),
        over: false,
        show: st.show.clone(),
    };
    let view = View { lang, lesson: Some(bar), ..View::default() };
    let text = ui::render_text(snap, &view, size.0, size.1);
    let body = ui::screen(ratatui::layout::Rect::new(0, 0, size.0, size.1), &view).body;
    text.lines().skip(body.y as usize).take(body.height as usize).collect::<Vec<_>>().join("\n")
}

/// The words of `words` not drawn whole on a row of `body`; a word listed
/// n times must be drawn n times (both processes' mapping, say).
fn absent<'a>(body: &str, words: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for w in words {
        let want = words.iter().filter(|x| *x == w).count();
        let have: usize = body.lines().map(|l| l.matches(w).count()).sum();
        if have < want && !out.contains(w) {
            out.push(w);
        }
    }
    out
}

/// Check the claims: play each lesson once, and at each mapped step wait
/// (bounded) for a frame in which the observation holds and the claim's
/// words are drawn. `only` limits it to the claims of one lesson.
pub fn check(
    claims: &[Claim],
    exe: PathBuf,
    size: (u16, u16),
    lang: Lang,
    timeout: Duration,
) -> Result<BTreeMap<u32, Seen>> {
    let mut out = BTreeMap::new();
    let mut by_lesson: BTreeMap<&str, Vec<&Claim>> = BTreeMap::new();
    for c in claims {
        match (&c.missing, &c.lesson) {
            (Some(why), _) => {
                out.insert(c.id, Seen { status: Status::Missing(why.get(lang).to_string()), frame: String::new() });
            }
            (None, Some(l)) => by_lesson.entry(l.as_str()).or_default().push(c),
            (None, None) => {}
        }
    }
    for (lesson, cs) in by_lesson {
        let sc = Scenario::find(lesson)?;
        let mut seen: BTreeMap<u32, Seen> = BTreeMap::new();
        let reports = play_watched(&sc, exe.clone(), timeout, |i, snap| {
            let here: Vec<&&Claim> = cs.iter().filter(|c| c.step == Some(i + 1)).collect();
            if here.is_empty() {
                return true;
            }
            let body = body_text(&sc, i, snap, lang, size);
            let mut all = true;
            for c in here {
                if matches!(seen.get(&c.id), Some(Seen { status: Status::Shown, .. })) {
                    continue;
                }
                let gone = absent(&body, &c.words(lang));
                let status = if gone.is_empty() {
                    Status::Shown
                } else {
                    all = false;
                    Status::NotShown(format!("not on screen at {}x{}: {}", size.0, size.1, gone.join(", ")))
                };
                seen.insert(c.id, Seen { status, frame: body.clone() });
            }
            all
        })?;
        for c in cs {
            let step = c.step.unwrap_or(0);
            let r = reports.iter().find(|r| r.step == step);
            let s = match (r, seen.remove(&c.id)) {
                (Some(r), _) if !r.passed => Seen { status: Status::NotShown(r.detail.clone()), frame: String::new() },
                (Some(_), Some(s)) => s,
                _ => Seen {
                    status: Status::NotShown("the lesson stopped before this step".into()),
                    frame: String::new(),
                },
            };
            out.insert(c.id, s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_map_names_every_claim_once() {
        let claims = shipped().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(claims.len(), NOTES_CLAIMS as usize);
        for c in &claims {
            assert!(!c.text.en.is_empty() && !c.text.ko.is_empty(), "claim {}", c.id);
        }
    }

    #[test]
    fn a_bad_map_says_what_is_wrong() {
        let one = |extra: &str| {
            let mut s = String::new();
            for id in 1..=NOTES_CLAIMS {
                s += &format!("[[claim]]\nid = {id}\ntext = {{ en = \"c\", ko = \"c\" }}\nmissing = {{ en = \"m\", ko = \"m\" }}\n");
            }
            s + extra
        };
        assert!(parse(&one("")).is_ok());
        let e = parse(&one("[[claim]]\nid = 3\ntext = { en = \"c\", ko = \"c\" }\n")).unwrap_err().to_string();
        assert!(e.contains("each once"), "{e}");
        let bad = one("").replace(
            "id = 5\ntext = { en = \"c\", ko = \"c\" }\nmissing = { en = \"m\", ko = \"m\" }",
            "id = 5\ntext = { en = \"c\", ko = \"c\" }\nlesson = \"pipe-blocking\"\nstep = 99\nsee = [\"x\"]",
        );
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("claim 5") && e.contains("not 99"), "{e}");
    }
}
