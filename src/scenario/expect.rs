//! Expectations a scenario step checks against the live snapshot, in a
//! small language: `LEFT OP RIGHT`, where each side is a path into the
//! JSON snapshot (`pipe/channel/depth`, `pipe/processes/producer/wchan`)
//! or a literal (`0`, `"S"`, `S`). Operators: `==` `!=` `>=` `<=` `>` `<`,
//! `~` (contains) and `!~` (does not contain).
//!
//! A path starts with a mechanism kind; `processes/ROLE` picks a process
//! by its role, any other segment is an object key or array index.

use serde_json::Value;

use crate::i18n::{lookup, t, Lang};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Vec<String>),
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
    Contains,
    NotContains,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub left: Operand,
    pub op: Op,
    pub right: Operand,
    pub source: String,
    /// The lesson author's sentence for it, if given.
    pub label: Option<super::Text>,
}

const OPS: [(&str, Op); 8] = [
    ("==", Op::Eq),
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("!~", Op::NotContains),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("~", Op::Contains),
];

fn operand(s: &str, kinds: &[&str]) -> Result<Operand, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("missing operand".into());
    }
    if let Some(q) = s.strip_prefix('"') {
        return q.strip_suffix('"').map(|t| Operand::Text(t.into())).ok_or_else(|| format!("unclosed quote in {s}"));
    }
    if let Ok(n) = s.parse::<f64>() {
        return Ok(Operand::Number(n));
    }
    let segs: Vec<String> = s.split('/').map(str::to_string).collect();
    if segs.len() > 1 {
        if !kinds.contains(&segs[0].as_str()) {
            return Err(format!("path {s:?} must start with a mechanism ({})", kinds.join(", ")));
        }
        return Ok(Operand::Path(segs));
    }
    if s.contains(|c: char| c.is_whitespace() || "<>=!~".contains(c)) {
        return Err(format!("cannot read {s:?}: quote text with spaces or symbols, e.g. \"{s}\""));
    }
    Ok(Operand::Text(s.into()))
}

impl Expect {
    pub fn parse(src: &str, kinds: &[&str]) -> Result<Expect, String> {
        for (sym, op) in OPS {
            if let Some(i) = src.find(sym) {
                let left = operand(&src[..i], kinds)?;
                let right = operand(&src[i + sym.len()..], kinds)?;
                if !matches!(left, Operand::Path(_)) {
                    return Err(format!("{src:?}: the left side must be a path such as pipe/channel/depth"));
                }
                return Ok(Expect { left, op, right, source: src.into(), label: None });
            }
        }
        Err(format!("{src:?}: no operator (one of == != >= <= > < ~ !~)"))
    }

    /// What it observes, in `lang`: the author's sentence, or one made
    /// from its parts (`파이프: 분실 = 0`), never the JSON path.
    pub fn sentence(&self, lang: Lang) -> String {
        if let Some(l) = &self.label {
            return l.get(lang).to_string();
        }
        let left = words(&self.left, lang);
        let right = words(&self.right, lang);
        let mech = match &self.left {
            Operand::Path(segs) => crate::model::Kind::ALL
                .into_iter()
                .find(|k| k.name() == segs[0])
                .map(|k| t(lang, crate::ui::title_key(k))),
            _ => None,
        };
        let body = match (self.op, lang) {
            (Op::Contains, Lang::Ko) => format!("{left}에 {right} 포함"),
            (Op::NotContains, Lang::Ko) => format!("{left}에 {right} 없음"),
            (Op::Contains, Lang::En) => format!("{left} contains {right}"),
            (Op::NotContains, Lang::En) => format!("{left} does not contain {right}"),
            (op, _) => {
                let sym = match op {
                    Op::Eq => "=",
                    Op::Ne => "≠",
                    Op::Ge => "≥",
                    Op::Le => "≤",
                    Op::Gt => ">",
                    _ => "<",
                };
                format!("{left} {sym} {right}")
            }
        };
        match mech {
            Some(m) => format!("{m}: {body}"),
            None => body,
        }
    }

    /// Does the snapshot satisfy it? Err says what could not be found.
    pub fn check(&self, snap: &Snapshot) -> Result<bool, String> {
        let json = serde_json::to_value(snap).map_err(|e| e.to_string())?;
        let l = resolve(&self.left, &json)?;
        let r = resolve(&self.right, &json)?;
        Ok(compare(&l, self.op, &r))
    }
}

/// One side of a check in words: a field by its label (`field_NAME` in
/// assets/locales.toml) or, lacking one, its own name; a process's field
/// with the process's role; a figure as it is.
fn words(o: &Operand, lang: Lang) -> String {
    match o {
        Operand::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Operand::Number(n) => n.to_string(),
        Operand::Text(s) => format!("\"{s}\""),
        Operand::Path(segs) => {
            let field =
                |seg: &str| lookup(lang, &format!("field_{seg}")).map_or_else(|| seg.to_string(), str::to_string);
            // The last named segment (`blocked_senders/0/task` → `task`).
            let last = segs.iter().skip(1).rev().find(|s| s.parse::<usize>().is_err());
            let name = last.map_or_else(String::new, |s| field(s));
            match (segs.get(1).map(String::as_str), segs.get(2)) {
                (Some("processes"), Some(role)) if segs.len() > 3 && role.parse::<usize>().is_err() => {
                    format!("{} {name}", crate::ui::widgets::role_name(role, lang))
                }
                _ => name,
            }
        }
    }
}

fn resolve(o: &Operand, snap: &Value) -> Result<Value, String> {
    match o {
        Operand::Number(n) => Ok(Value::from(*n)),
        Operand::Text(t) => Ok(Value::from(t.clone())),
        Operand::Path(segs) => {
            let mech = snap["mechanisms"]
                .as_array()
                .and_then(|ms| ms.iter().find(|m| m["kind"] == segs[0].as_str()))
                .ok_or_else(|| format!("no {} in this run", segs[0]))?;
            let mut v = mech;
            let mut i = 1;
            while i < segs.len() {
                let seg = &segs[i];
                v = if seg == "processes" && i + 1 < segs.len() && segs[i + 1].parse::<usize>().is_err() {
                    i += 1;
                    v["processes"]
                        .as_array()
                        .and_then(|ps| ps.iter().find(|p| p["role"] == segs[i].as_str()))
                        .ok_or_else(|| format!("no process with role {} in {}", segs[i], segs[0]))?
                } else if let (Some(a), Ok(k)) = (v.as_array(), seg.parse::<usize>()) {
                    a.get(k).ok_or_else(|| format!("{}: no element {k}", segs.join("/")))?
                } else {
                    v.get(seg.as_str()).ok_or_else(|| format!("{}: no field {seg}", segs.join("/")))?
                };
                i += 1;
            }
            Ok(v.clone())
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn compare(l: &Value, op: Op, r: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Bool(b) => Some(*b as u8 as f64),
        _ => v.as_f64().or_else(|| text(v).parse().ok()),
    };
    match op {
        Op::Contains => text(l).contains(&text(r)),
        Op::NotContains => !text(l).contains(&text(r)),
        _ => match (num(l), num(r)) {
            (Some(a), Some(b)) => match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Ge => a >= b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                Op::Lt => a < b,
                _ => false,
            },
            _ => match op {
                Op::Eq => text(l) == text(r),
                Op::Ne => text(l) != text(r),
                _ => false,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanisms::Kind;
    use crate::snapshot::*;

    fn snap() -> Snapshot {
        let m = MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Pipe,
            processes: vec![ProcessSnapshot {
                role: "producer".into(),
                state: "S".into(),
                wchan: "anon_pipe_write".into(),
                ..Default::default()
            }],
            channel: Channel { depth: 65536, capacity: 65536, unit: crate::model::figures::Unit::Bytes, over: 0 },
            integrity: Integrity::default(),
            history: vec![],
            notes: vec![],
            knobs: vec![],
            detail: Detail::Pipe(Default::default()),
        };
        Snapshot { mechanisms: vec![m], ..Default::default() }
    }

    fn check(src: &str) -> bool {
        Expect::parse(src, &["pipe"]).unwrap().check(&snap()).unwrap()
    }

    #[test]
    fn paths_ops_and_literals() {
        assert!(check("pipe/channel/depth >= pipe/channel/capacity"));
        assert!(check("pipe/channel/depth == 65536"));
        assert!(!check("pipe/channel/depth < 10"));
        assert!(check("pipe/processes/producer/wchan ~ pipe_write"));
        assert!(check("pipe/processes/producer/state == \"S\""));
        assert!(check("pipe/processes/0/state == S"));
        assert!(check("pipe/detail/pipe/eof_seen == false"));
        assert!(check("pipe/processes/producer/wchan !~ read"));
    }

    /// The bar's words for a check: the author's sentence, else one made
    /// of field labels, never the path.
    #[test]
    fn sentences_are_words_not_paths() {
        let e = |s: &str| Expect::parse(s, &["pipe"]).unwrap();
        let ko = e("pipe/integrity/lost == 0").sentence(Lang::Ko);
        assert_eq!(ko, "일반 파이프: 분실 = 0");
        assert_eq!(e("pipe/integrity/lost == 0").sentence(Lang::En), "ordinary pipe: lost = 0");
        let ko = e("pipe/channel/depth >= pipe/channel/capacity").sentence(Lang::Ko);
        assert!(!ko.contains('/') && ko.contains('≥'), "{ko}");
        let ko = e("pipe/processes/producer/wchan ~ pipe_write").sentence(Lang::Ko);
        assert!(ko.starts_with("일반 파이프: 생산자 ") && ko.ends_with("\"pipe_write\" 포함"), "{ko}");
        let labelled = Expect {
            label: Some(crate::scenario::Text { en: "Nothing lost.".into(), ko: "잃은 것 없음.".into() }),
            ..e("pipe/integrity/lost == 0")
        };
        assert_eq!(labelled.sentence(Lang::Ko), "잃은 것 없음.");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(Expect::parse("pipe/channel/depth", &["pipe"]).unwrap_err().contains("no operator"));
        assert!(Expect::parse("fifo/channel/depth > 0", &["pipe"]).unwrap_err().contains("must start with"));
        assert!(Expect::parse("3 > 2", &["pipe"]).unwrap_err().contains("left side"));
        assert!(Expect::parse("pipe/channel/depth >>> 3", &["pipe"]).unwrap_err().contains("cannot read"));
        let e = Expect::parse("pipe/processes/reader/state == S", &["pipe"]).unwrap();
        assert!(e.check(&snap()).unwrap_err().contains("role reader"));
    }
}
