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

#[derive(Deserialize)]
struct File {
    labels: HashMap<String, Entry>,
}

fn table() -> &'static HashMap<String, Entry> {
    static T: OnceLock<HashMap<String, Entry>> = OnceLock::new();
    T.get_or_init(|| {
        // Shipped inside the binary and checked by a unit test, so a parse
        // failure here is a build defect, shown as empty labels, not a crash.
        toml::from_str::<File>(include_str!("../assets/locales.toml")).map(|f| f.labels).unwrap_or_default()
    })
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

/// A probe's note in `lang`: notes are written in English by the probes
/// (they are observed data, recorded as such); Korean comes from
/// `assets/notes.ko.toml`, keyed by the English text. A note with figures
/// in it, or one not listed, stays in English.
pub fn note(lang: Lang, english: &str) -> &str {
    static KO: OnceLock<HashMap<String, String>> = OnceLock::new();
    match lang {
        Lang::En => english,
        Lang::Ko => KO
            .get_or_init(|| toml::from_str(include_str!("../assets/notes.ko.toml")).unwrap_or_default())
            .get(english)
            .map_or(english, String::as_str),
    }
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

    #[test]
    fn notes_translate_by_their_english_text() {
        let table: HashMap<String, String> = toml::from_str(include_str!("../assets/notes.ko.toml")).unwrap();
        assert!(table.len() >= 30);
        let eof = "consumer: read() returned 0 — end of file, every write end is closed";
        assert!(note(Lang::Ko, eof).contains("EOF") && note(Lang::Ko, eof).starts_with("소비자"));
        assert_eq!(note(Lang::En, eof), eof);
        assert_eq!(note(Lang::Ko, "7 messages were lost"), "7 messages were lost");
    }

    #[test]
    fn locale_detection() {
        assert_eq!(Lang::from_locale("ko_KR.UTF-8"), Lang::Ko);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("C"), Lang::En);
    }
}
