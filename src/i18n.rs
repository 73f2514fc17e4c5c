//! Korean and English labels. Short labels come from
//! `assets/locales.toml`; lessons (long text) live in their own files.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ko,
}

impl Lang {
    /// From `LANG` / `LC_ALL` / `LC_MESSAGES`: Korean if it says `ko`.
    pub fn from_env() -> Lang {
        for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
            if let Ok(v) = std::env::var(var) {
                if !v.is_empty() {
                    return Lang::from_locale(&v);
                }
            }
        }
        Lang::En
    }

    pub fn from_locale(s: &str) -> Lang {
        if s.to_ascii_lowercase().starts_with("ko") {
            Lang::Ko
        } else {
            Lang::En
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "ko" => Some(Lang::Ko),
            _ => None,
        }
    }

    pub fn toggle(self) -> Lang {
        match self {
            Lang::En => Lang::Ko,
            Lang::Ko => Lang::En,
        }
    }
}

#[derive(Deserialize)]
struct Entry {
    en: String,
    ko: String,
}

#[derive(Deserialize, Default)]
struct File {
    labels: Table,
    /// The probes' notes: `{name}` marks an argument.
    #[serde(default)]
    notes: Table,
}

fn file() -> &'static File {
    static T: OnceLock<File> = OnceLock::new();
    T.get_or_init(|| {
        // Shipped inside the binary and checked by a unit test, so a parse
        // failure here is a build defect, shown as empty labels, not a crash.
        toml::from_str::<File>(include_str!("../assets/locales.toml")).unwrap_or_default()
    })
}

/// Looked up a few hundred times per frame: a fast hash, not SipHash (no
/// one can choose these keys to attack it).
type Table = HashMap<String, Entry, foldhash::fast::FixedState>;

fn table() -> &'static Table {
    &file().labels
}

/// The label for `key` in `lang`; the key itself if there is none (so a
/// missing label is visible, not blank).
pub fn t(lang: Lang, key: &'static str) -> &'static str {
    match table().get(key) {
        Some(e) => match lang {
            Lang::En => &e.en,
            Lang::Ko => &e.ko,
        },
        None => key,
    }
}

/// The label for a key built at run time (`role_kernel`), if there is one.
pub fn lookup(lang: Lang, key: &str) -> Option<&'static str> {
    table().get(key).map(|e| match lang {
        Lang::En => e.en.as_str(),
        Lang::Ko => e.ko.as_str(),
    })
}

/// A probe's note in `lang`, built from its message key and arguments
/// (`[notes]` in assets/locales.toml). None when the key is not there.
pub fn note_msg(lang: Lang, msg: &str, args: &[(String, String)]) -> Option<String> {
    let e = file().notes.get(msg)?;
    Some(fill(if lang == Lang::Ko { &e.ko } else { &e.en }, args.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
}

/// The English sentence of a note, as the probe records it in `text`.
/// A missing key shows itself rather than a blank (a unit test checks
/// every key the probes use).
pub fn note_en(msg: &str, args: &[(&str, String)]) -> String {
    file().notes.get(msg).map_or_else(|| msg.to_string(), |e| fill(&e.en, args.iter().map(|(k, v)| (*k, v.as_str()))))
}

/// A note known only by its English text (a recording made before notes
/// had keys): Korean from the `[notes]` table when the text matches a
/// message without arguments; otherwise it stays in English.
pub fn note(lang: Lang, english: &str) -> &str {
    match lang {
        Lang::En => english,
        Lang::Ko => file().notes.values().find(|e| e.en == english).map_or(english, |e| &e.ko),
    }
}

fn fill<'a>(template: &str, args: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = template.to_string();
    for (name, value) in args {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}

/// A label with `{name}` placeholders filled in.
pub fn tf(lang: Lang, key: &'static str, args: &[(&str, String)]) -> String {
    let mut s = t(lang, key).to_string();
    for (name, value) in args {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_has_both_languages() {
        let f: File = toml::from_str(include_str!("../assets/locales.toml")).unwrap();
        assert!(f.labels.len() > 20);
        for (k, e) in &f.labels {
            assert!(!e.en.is_empty() && !e.ko.is_empty(), "{k} lacks a language");
        }
        assert_eq!(t(Lang::Ko, "producer"), "생산자");
        assert_eq!(t(Lang::En, "no-such-key"), "no-such-key");
    }

    /// Every note has both languages with the same `{name}` places, and
    /// one with figures is Korean too.
    #[test]
    fn notes_are_keys_with_arguments() {
        let f: File = toml::from_str(include_str!("../assets/locales.toml")).unwrap();
        assert!(f.notes.len() >= 30);
        let places = |s: &str| {
            let mut v: Vec<String> =
                s.split('{').skip(1).filter_map(|p| p.split_once('}')).map(|(n, _)| n.into()).collect();
            v.sort();
            v
        };
        for (k, e) in &f.notes {
            assert!(k.starts_with("note_") && !e.en.is_empty() && !e.ko.is_empty(), "{k}");
            assert_eq!(places(&e.en), places(&e.ko), "{k}: the languages take different arguments");
        }
        let args = [("n".to_string(), "7".to_string())];
        let ko = note_msg(Lang::Ko, "note_pipe_lost_in_pipe", &args).unwrap();
        assert!(ko.contains('7') && ko.contains("분실"), "{ko}");
        assert_eq!(
            note_en("note_pipe_lost_in_pipe", &[("n", "7".into())]),
            "7 messages were still in the pipe when the reader died: they are lost"
        );
        assert_eq!(note_msg(Lang::En, "no-such-note", &[]), None);
        // A recording from before the keys: found by its English text.
        let eof = "consumer: read() returned 0 — end of file, every write end is closed";
        assert!(note(Lang::Ko, eof).contains("EOF") && note(Lang::Ko, eof).starts_with("소비자"));
        assert_eq!(note(Lang::En, eof), eof);
    }

    /// Every message key a probe names is in the table (a missing one
    /// would show the bare key on screen).
    #[test]
    fn every_note_key_the_probes_use_exists() {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(std::fs::read_to_string(&p).unwrap());
                }
            }
        }
        let mut sources = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mechanisms"), &mut sources);
        let mut used = 0;
        for text in &sources {
            for piece in text.split("\"note_").skip(1) {
                let key: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                assert!(file().notes.contains_key(&format!("note_{key}")), "note_{key} is not in assets/locales.toml");
                used += 1;
            }
        }
        assert!(used >= 30, "found {used} note keys");
    }

    #[test]
    fn locale_detection() {
        assert_eq!(Lang::from_locale("ko_KR.UTF-8"), Lang::Ko);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("C"), Lang::En);
    }
}
