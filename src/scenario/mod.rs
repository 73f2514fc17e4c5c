//! Scripted lessons: a scenario is a sequence of steps, each setting knobs
//! and doing actions (stall the consumer, kill the reader, pause …) with a
//! caption in Korean and English, and the observations that should follow
//! (checked against the live snapshot, never assumed).
//!
//! ```toml
//! name = "pipe-blocking"
//! mechanisms = ["pipe"]
//! title = { en = "…", ko = "…" }
//! setup = ["producer.rate=200"]          # before the processes start
//!
//! [[step]]
//! caption = { en = "…", ko = "…" }
//! set = ["consumer.rate=0"]              # like --set
//! do = ["kill pipe"]                      # kill, restart, pause, resume, step-mode on|off, step
//! expect = ["pipe/channel/depth >= pipe/channel/capacity"]
//! seen = { en = "The buffer is full.", ko = "버퍼가 가득 찼습니다." }  # the bar's sentence
//! # or a sentence per observation:
//! # expect = [{ check = "pipe/integrity/lost == 0", en = "Nothing lost.", ko = "잃은 것 없음." }]
//! # (without either, the bar says each observation in generated words,
//! # never as its JSON path)
//! after_ms = 3000                         # advance by itself (else: on a key)
//! ```

pub mod coverage;
pub mod expect;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::i18n::Lang;
use crate::knobs::{self, KnobId, Knobs};
use crate::model::Kind;
use crate::session::{Command, Session};
use crate::snapshot::Snapshot;
pub use expect::Expect;

/// A lesson file larger than this is refused.
pub const MAX_LESSON_BYTES: u64 = 1 << 20;

/// Scenarios shipped inside the binary (one line each).
pub const SHIPPED: &[(&str, &str)] = &[
    ("pipe-blocking", include_str!("../../assets/scenarios/pipe-blocking.toml")),
    ("pipe-no-eof", include_str!("../../assets/scenarios/pipe-no-eof.toml")),
    ("mach-queue-full", include_str!("../../assets/scenarios/mach-queue-full.toml")),
    ("mach-reply-ports", include_str!("../../assets/scenarios/mach-reply-ports.toml")),
    ("mach-personality", include_str!("../../assets/scenarios/mach-personality.toml")),
    ("alpc-paths", include_str!("../../assets/scenarios/alpc-paths.toml")),
    ("fifo-outlives", include_str!("../../assets/scenarios/fifo-outlives.toml")),
    ("shm-unrelated", include_str!("../../assets/scenarios/shm-unrelated.toml")),
    ("mq-priorities", include_str!("../../assets/scenarios/mq-priorities.toml")),
    ("socket-ports", include_str!("../../assets/scenarios/socket-ports.toml")),
    ("socket-netns", include_str!("../../assets/scenarios/socket-netns.toml")),
    ("mach-messages", include_str!("../../assets/scenarios/mach-messages.toml")),
    ("alpc-rpc", include_str!("../../assets/scenarios/alpc-rpc.toml")),
    ("pipe-vs-fifo", include_str!("../../assets/scenarios/pipe-vs-fifo.toml")),
];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub en: String,
    pub ko: String,
}

impl Text {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::Ko => &self.ko,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    mechanisms: Vec<Spanned<String>>,
    title: Text,
    #[serde(default)]
    setup: Vec<Spanned<String>>,
    #[serde(rename = "step")]
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    caption: Text,
    #[serde(default)]
    set: Vec<Spanned<String>>,
    #[serde(default, rename = "do")]
    actions: Vec<Spanned<String>>,
    /// `"PATH OP VALUE"`, or `{ check = "…", en = "…", ko = "…" }`.
    #[serde(default)]
    expect: Vec<Spanned<toml::Value>>,
    seen: Option<Text>,
    after_ms: Option<u64>,
    #[serde(default)]
    show: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub caption: Text,
    pub set: Vec<(KnobId, u64)>,
    pub actions: Vec<Command>,
    pub expect: Vec<Expect>,
    /// What the expectations observe, as a sentence for the lesson bar
    /// (the bar never shows the JSON paths).
    pub seen: Option<Text>,
    pub after_ms: Option<u64>,
    /// What of the panel the step is about (`headers`, `calls`, …): a
    /// panel short of rows draws these first. Unknown words are ignored.
    pub show: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub title: Text,
    pub kinds: Vec<Kind>,
    pub setup: Knobs,
    pub steps: Vec<Step>,
}

/// One entry of `expect`: a check alone, or a check with its sentence in
/// both languages.
fn expectation(v: &toml::Value, names: &[&str]) -> Result<Expect, String> {
    match v {
        toml::Value::String(src) => Expect::parse(src, names),
        toml::Value::Table(t) => {
            let field = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
            if let Some(k) = t.keys().find(|k| !["check", "en", "ko"].contains(&k.as_str())) {
                return Err(format!("unknown field `{k}` in an expectation; use check, en, ko"));
            }
            let src = field("check").ok_or("an expectation table needs `check = \"PATH OP VALUE\"`")?;
            let label = match (field("en"), field("ko")) {
                (Some(en), Some(ko)) => Text { en, ko },
                _ => return Err(format!("{src:?}: give the sentence in both languages, en and ko")),
            };
            Ok(Expect { label: Some(label), ..Expect::parse(&src, names)? })
        }
        other => Err(format!("an expectation is a string or a table, not {}", other.type_str())),
    }
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

fn action(src: &str, kinds: &[Kind]) -> Result<Command, String> {
    let words: Vec<&str> = src.split_whitespace().collect();
    let target = |w: Option<&&str>| -> Result<Kind, String> {
        match w {
            None if kinds.len() == 1 => Ok(kinds[0]),
            None => Err(format!("{src:?}: name the mechanism, e.g. \"{} {}\"", words[0], kinds[0].name())),
            Some(name) => kinds
                .iter()
                .copied()
                .find(|k| k.name() == *name)
                .ok_or_else(|| format!("{src:?}: {name} is not one of this scenario's mechanisms")),
        }
    };
    Ok(match words.first().copied() {
        Some("kill") => Command::Kill(target(words.get(1))?),
        Some("restart") => Command::Restart(target(words.get(1))?),
        Some("pause") => Command::SetPaused(true),
        Some("resume") => Command::SetPaused(false),
        Some("step-mode") => match words.get(1) {
            Some(&"on") => Command::SetStepMode(true),
            Some(&"off") => Command::SetStepMode(false),
            _ => return Err(format!("{src:?}: step-mode on or step-mode off")),
        },
        Some("step") => Command::Step(words.get(1).map(|_| target(words.get(1))).transpose()?),
        _ => return Err(format!("{src:?}: unknown action; use kill, restart, pause, resume, step-mode on|off, step")),
    })
}

impl Scenario {
    /// Parse and check a scenario; errors name the file, the line and what
    /// is wrong.
    pub fn parse(file: &str, text: &str) -> Result<Scenario> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let msg = e.message().trim().to_string();
            match line {
                Some(l) => anyhow!("{file}:{l}: {msg}"),
                None => anyhow!("{file}: {msg}"),
            }
        })?;
        let at = |s: &Spanned<String>| format!("{file}:{}", line_of(text, s.span().start));
        let mut kinds = Vec::new();
        for m in &raw.mechanisms {
            let k = crate::registry::parse_list(m.get_ref()).map_err(|e| anyhow!("{}: {e}", at(m)))?;
            kinds.extend(k);
        }
        if kinds.is_empty() {
            bail!("{file}: `mechanisms` is empty");
        }
        kinds.sort();
        kinds.dedup();
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        let mut setup = Knobs::default();
        for s in &raw.setup {
            setup.set_str(s.get_ref()).map_err(|e| anyhow!("{}: {e}", at(s)))?;
        }
        if raw.steps.is_empty() {
            bail!("{file}: no [[step]]");
        }
        let mut steps = Vec::new();
        for st in raw.steps {
            let mut set = Vec::new();
            for s in &st.set {
                set.push(knobs::parse_assignment(s.get_ref()).map_err(|e| anyhow!("{}: {e}", at(s)))?);
            }
            let actions = st
                .actions
                .iter()
                .map(|a| action(a.get_ref(), &kinds).map_err(|e| anyhow!("{}: {e}", at(a))))
                .collect::<Result<Vec<_>>>()?;
            let expect = st
                .expect
                .iter()
                .map(|x| {
                    let at = format!("{file}:{}", line_of(text, x.span().start));
                    expectation(x.get_ref(), &names).map_err(|e| anyhow!("{at}: {e}"))
                })
                .collect::<Result<Vec<_>>>()?;
            steps.push(Step {
                caption: st.caption,
                set,
                actions,
                expect,
                seen: st.seen,
                after_ms: st.after_ms,
                show: st.show,
            });
        }
        Ok(Scenario { name: raw.name, title: raw.title, kinds, setup, steps })
    }

    /// A shipped scenario by name, or a scenario file by path (a regular
    /// file of at most `MAX_LESSON_BYTES`).
    pub fn find(name: &str) -> Result<Scenario> {
        if let Some((n, text)) = SHIPPED.iter().find(|(n, _)| *n == name) {
            return Scenario::parse(&format!("assets/scenarios/{n}.toml"), text);
        }
        let p = Path::new(name);
        if p.extension().is_some_and(|e| e == "toml") || p.exists() {
            // Never a FIFO or a device: those would block or never end.
            let text = crate::userfile::read_text(p, MAX_LESSON_BYTES)?;
            return Scenario::parse(name, &text);
        }
        let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        bail!("unknown lesson {name:?}; shipped lessons: {} (or give a .toml file)", names.join(", "))
    }

    /// Apply a step's knobs and actions to a running session.
    pub fn apply_step(&self, i: usize, session: &mut Session) -> Result<()> {
        let Some(step) = self.steps.get(i) else { return Ok(()) };
        for (k, v) in &step.set {
            session.apply(Command::SetKnob(*k, *v))?;
        }
        for a in &step.actions {
            session.apply(a.clone())?;
        }
        Ok(())
    }
}

/// Each expectation of a step with whether the snapshot meets it.
pub fn check_step(step: &Step, snap: &Snapshot) -> Vec<(String, bool)> {
    step.expect.iter().map(|e| (e.source.clone(), e.check(snap).unwrap_or(false))).collect()
}

/// What the lesson bar says about a step: the step's sentence and whether
/// everything it expects is observed now; without one, each observation's
/// own sentence (or one made from its check, never the JSON path) and
/// whether it holds.
pub fn bar_checks(step: &Step, snap: &Snapshot, lang: Lang) -> Vec<(String, bool)> {
    if step.expect.is_empty() {
        return Vec::new();
    }
    let checks = check_step(step, snap);
    if let Some(s) = &step.seen {
        return vec![(s.get(lang).to_string(), checks.iter().all(|(_, ok)| *ok))];
    }
    step.expect.iter().zip(checks).map(|(e, (_, ok))| (e.sentence(lang), ok)).collect()
}

/// The outcome of one step when a scenario is played headless.
#[derive(Debug)]
pub struct StepReport {
    pub step: usize,
    pub passed: bool,
    pub detail: String,
}

/// Play a scenario without a screen: apply each step, then wait (bounded)
/// until the snapshot shows what the step expects.
pub fn play_headless(sc: &Scenario, exe: std::path::PathBuf, timeout: Duration) -> Result<Vec<StepReport>> {
    play_watched(sc, exe, timeout, |_, _| true)
}

/// `play_headless`, with `watch(step, snapshot)` asked about every
/// snapshot in which the step's expectations hold: a step moves on once
/// `watch` is also satisfied (or at the timeout, when the expectations
/// alone decide).
pub fn play_watched(
    sc: &Scenario,
    exe: std::path::PathBuf,
    timeout: Duration,
    mut watch: impl FnMut(usize, &Snapshot) -> bool,
) -> Result<Vec<StepReport>> {
    let mut session = Session::start_with_exe(exe, &sc.kinds, sc.setup.clone(), 20)?;
    let mut reports = Vec::new();
    for (i, step) in sc.steps.iter().enumerate() {
        if let Err(e) = sc.apply_step(i, &mut session) {
            reports.push(StepReport { step: i + 1, passed: false, detail: format!("{e:#}") });
            break;
        }
        let deadline = Instant::now() + timeout;
        let min_wait = Instant::now() + Duration::from_millis(step.after_ms.unwrap_or(0).min(2000));
        let mut last: Vec<(String, bool)> = Vec::new();
        // The expectations held while `watch` still waited: the step was
        // observed, whatever `watch` looks for.
        let mut held_unwatched = false;
        let passed = loop {
            if let Ok(s) = session.snapshots.recv_timeout(Duration::from_millis(200)) {
                last = check_step(step, &s);
                if last.iter().all(|(_, ok)| *ok) {
                    if watch(i, &s) {
                        if Instant::now() >= min_wait {
                            break true;
                        }
                    } else {
                        held_unwatched = true;
                    }
                }
            }
            if Instant::now() > deadline {
                break held_unwatched
                    || !last.is_empty() && last.iter().all(|(_, ok)| *ok)
                    || last.is_empty() && step.expect.is_empty();
            }
        };
        let failed: Vec<&str> = last.iter().filter(|(_, ok)| !ok).map(|(s, _)| s.as_str()).collect();
        let detail = if passed { "ok".to_string() } else { format!("never observed: {}", failed.join("; ")) };
        reports.push(StepReport { step: i + 1, passed, detail });
        if !passed {
            break;
        }
    }
    session.shutdown();
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses() {
        for (name, text) in SHIPPED {
            let sc = Scenario::parse(name, text).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(&sc.name, name);
            assert!(!sc.steps.is_empty());
            for st in &sc.steps {
                assert!(!st.caption.en.is_empty() && !st.caption.ko.is_empty());
            }
        }
    }

    /// An expectation may carry its sentence; without one (and without
    /// the step's `seen`) the bar makes one, never showing the path.
    #[test]
    fn the_bar_says_each_observation_in_words() {
        let text = "name = \"x\"\nmechanisms = [\"pipe\"]\ntitle = { en = \"a\", ko = \"b\" }\n\n[[step]]\n\
                    caption = { en = \"a\", ko = \"b\" }\nexpect = [\"pipe/channel/depth >= pipe/channel/capacity\", \
                    { check = \"pipe/integrity/lost == 0\", en = \"Nothing lost.\", ko = \"잃은 것 없음.\" }]\n";
        let sc = Scenario::parse("x.toml", text).unwrap_or_else(|e| panic!("{e:#}"));
        let snap = Snapshot::default();
        let ko = bar_checks(&sc.steps[0], &snap, Lang::Ko);
        assert_eq!(ko.len(), 2);
        assert_eq!(ko[0].0, "일반 파이프: 채운 양 ≥ 용량");
        assert_eq!(ko[1].0, "잃은 것 없음.");
        let en = bar_checks(&sc.steps[0], &snap, Lang::En);
        assert_eq!(en[1].0, "Nothing lost.");
        assert!(en.iter().chain(&ko).all(|(s, _)| !s.contains("pipe/")), "{en:?}");
        // A table without both languages, or with a stray field, is refused with its line.
        let bad = text.replace(", ko = \"잃은 것 없음.\"", "");
        let e = Scenario::parse("y.toml", &bad).unwrap_err().to_string();
        assert!(e.starts_with("y.toml:7:") && e.contains("both languages"), "{e}");
        let bad = text.replace("en = \"Nothing lost.\"", "en = \"x\", colour = \"red\"");
        let e = Scenario::parse("z.toml", &bad).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = "name = \"x\"\nmechanisms = [\"pipe\"]\ntitle = { en = \"a\", ko = \"b\" }\n\n[[step]]\ncaption = { en = \"a\", ko = \"b\" }\nset = [\"consumer.rate=fast\"]\n";
        let e = Scenario::parse("x.toml", bad).unwrap_err().to_string();
        assert!(e.starts_with("x.toml:7:"), "{e}");
        assert!(e.contains("consumer.rate"), "{e}");
        let e = Scenario::parse("y.toml", "name = \n").unwrap_err().to_string();
        assert!(e.starts_with("y.toml:1:"), "{e}");
        let e = Scenario::parse("z.toml", &bad.replace("set = [\"consumer.rate=fast\"]", "do = [\"explode\"]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("z.toml:7") && e.contains("unknown action"), "{e}");
        let e = Scenario::parse("w.toml", &bad.replace("set = [\"consumer.rate=fast\"]", "colour = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("w.toml:7") && e.contains("colour"), "{e}");
        let e = Scenario::parse("v.toml", &bad.replace("[\"pipe\"]", "[\"telegraph\"]")).unwrap_err().to_string();
        assert!(e.contains("v.toml:2") && e.contains("telegraph"), "{e}");
        // A misspelt knob in a step is caught when the file is read, not
        // applied as a silent no-op when the step runs.
        let e =
            Scenario::parse("u.toml", &bad.replace("consumer.rate=fast", "consumer.rat=0")).unwrap_err().to_string();
        assert!(e.starts_with("u.toml:7:") && e.contains("unknown knob \"consumer.rat\""), "{e}");
    }
}
