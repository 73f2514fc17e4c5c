//! What changed between two JSON values, as a JSON value, so a recording
//! stores each snapshot as a patch against the one before it.
//!
//! A patch is one of:
//!
//! - `0` — unchanged;
//! - `[0, V]` — replaced by `V`;
//! - `[1, {KEY: PATCH, …}, [REMOVED KEY, …]]` — an object: each listed key
//!   is patched (a key not there before must be a `[0, V]`), the removed
//!   keys go (the third element is left out when none do);
//! - `[2, DROP, KEEP, [[I, PATCH], …], [PATCH, …]]` — an array: the first
//!   DROP elements go, the next KEEP stay (the rest go), element I of those
//!   is patched, then one element is appended per patch in the last list,
//!   each a patch against the element before it, or `[5, K, PATCH]`: against
//!   the element K places before it (K ≤ 4; before the first new element
//!   come the old array's elements). A rolling window (events, history) is a
//!   drop plus appends, and a run of similar new elements (calls that
//!   alternate, say) costs only their differences;
//! - `[3, N]` — an integer plus N (counters, timestamps);
//! - `[4, [N, …]]` — a string with the same text around its numbers, each
//!   number plus N (`in = 30049` after `in = 30048`).
//!
//! `apply(a, diff(a, b)) == b` exactly, for every pair of values. Applying
//! never panics on a hostile patch, and what it may copy is bounded by a
//! budget, so a small patch cannot grow a value without bound.

use serde::{Serialize, Serializer};
use serde_json::{Number, Value};

const SET: u64 = 0;
const OBJECT: u64 = 1;
const ARRAY: u64 = 2;
const ADD: u64 = 3;
const DIGITS: u64 = 4;
const BACK: u64 = 5;
/// How far back an appended element may look for its reference.
const MAX_BACK: usize = 4;

/// Arrays longer than this are diffed index by index, without looking for
/// a shift (which costs a comparison per pair of positions).
const SHIFT_SEARCH_MAX: usize = 512;

/// A patch as built: it borrows what it sets from the new value, so
/// diffing copies nothing. Serialises to the format above.
#[derive(Debug)]
pub enum Patch<'a> {
    Same,
    Set(&'a Value),
    Object(Vec<(&'a str, Patch<'a>)>, Vec<String>),
    Array {
        drop: usize,
        keep: usize,
        edits: Vec<(usize, Patch<'a>)>,
        appends: Vec<Patch<'a>>,
    },
    Add(Number),
    Digits(Vec<i64>),
    /// Only among an array's appends: against the element K places back.
    Back(usize, Box<Patch<'a>>),
}

impl Serialize for Patch<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Edits<'b, 'a>(&'b [(&'a str, Patch<'a>)]);
        impl Serialize for Edits<'_, '_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, p)| (k, p)))
            }
        }
        match self {
            Patch::Same => s.serialize_u64(0),
            Patch::Set(v) => (SET, v).serialize(s),
            Patch::Object(edits, removed) if removed.is_empty() => (OBJECT, Edits(edits)).serialize(s),
            Patch::Object(edits, removed) => (OBJECT, Edits(edits), removed).serialize(s),
            Patch::Array { drop, keep, edits, appends } => (ARRAY, drop, keep, edits, appends).serialize(s),
            Patch::Add(n) => (ADD, n).serialize(s),
            Patch::Digits(d) => (DIGITS, d).serialize(s),
            Patch::Back(k, p) => (BACK, k, p).serialize(s),
        }
    }
}

/// The patch that turns `a` into `b`.
pub fn diff<'a>(a: &Value, b: &'a Value) -> Patch<'a> {
    if a == b {
        Patch::Same
    } else {
        changed(a, b).0
    }
}

/// A patch and about how long it is as JSON: estimated bottom-up, so
/// choosing between two patches never serialises a subtree twice.
type Sized<'a> = (Patch<'a>, usize);

fn set(b: &Value) -> Sized<'_> {
    (Patch::Set(b), 5 + est_len(b, usize::MAX))
}

fn changed<'a>(a: &Value, b: &'a Value) -> Sized<'a> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match int_delta(x, y) {
            Some(d) => {
                let n = num_len(&d);
                (Patch::Add(d), 4 + n)
            }
            None => set(b),
        },
        (Value::Object(x), Value::Object(y)) => {
            let mut edits = Vec::new();
            let mut len = 8;
            for (k, vb) in y {
                let (p, n) = match x.get(k) {
                    Some(va) if va == vb => continue,
                    Some(va) => changed(va, vb),
                    None => set(vb),
                };
                len += k.len() + 4 + n;
                edits.push((k.as_str(), p));
            }
            let removed: Vec<String> = x.keys().filter(|k| !y.contains_key(*k)).cloned().collect();
            len += removed.iter().map(|k| k.len() + 3).sum::<usize>();
            smaller((Patch::Object(edits, removed), len), b)
        }
        (Value::Array(x), Value::Array(y)) => smaller(diff_array(x, y), b),
        (Value::String(x), Value::String(y)) => match digits_delta(x, y) {
            Some(d) => {
                let n = 6 + d.len() + d.iter().map(|d| num_len(&Number::from(*d))).sum::<usize>();
                smaller((Patch::Digits(d), n), b)
            }
            None => set(b),
        },
        _ => set(b),
    }
}

/// The patch, or a plain replacement when that is no longer.
fn smaller<'a>(p: Sized<'a>, b: &'a Value) -> Sized<'a> {
    // Counting stops as soon as `b` is known to be longer than the patch.
    let bl = est_len(b, p.1);
    if bl + 5 < p.1 {
        (Patch::Set(b), bl + 5)
    } else {
        p
    }
}

fn diff_array<'a>(x: &[Value], y: &'a [Value]) -> Sized<'a> {
    let same_at = |d: usize| x[d..].iter().zip(y).filter(|(a, b)| a == b).count();
    // The shift that lines up the most equal elements.
    let (mut drop, mut best) = (0, same_at(0));
    if best < x.len().min(y.len()) && x.len() <= SHIFT_SEARCH_MAX {
        if let Some(first) = y.first() {
            for (d, e) in x.iter().enumerate().skip(1) {
                if e == first {
                    let m = same_at(d);
                    if m > best {
                        (drop, best) = (d, m);
                    }
                }
            }
        }
    }
    let by_index = array_patch(x, y, drop);
    if best > 0 || x.is_empty() || by_index.1 * 2 < est_items(y, by_index.1 * 2) {
        return by_index;
    }
    // Nothing in common and little saved: the new elements may still
    // resemble each other (a window of fresh events), so try all of them
    // as appends, each against the one before.
    let appended = array_patch(x, y, x.len());
    if appended.1 < by_index.1 {
        appended
    } else {
        by_index
    }
}

fn array_patch<'a>(x: &[Value], y: &'a [Value], drop: usize) -> Sized<'a> {
    let rest = &x[drop..];
    let keep = rest.len().min(y.len());
    let mut len = 16;
    let mut edits = Vec::new();
    for i in (0..keep).filter(|&i| rest[i] != y[i]) {
        let (p, n) = changed(&rest[i], &y[i]);
        len += n + 8;
        edits.push((i, p));
    }
    let mut appends = Vec::with_capacity(y.len() - keep);
    for j in keep..y.len() {
        // The cheapest of the few elements before it (the old array's
        // before the first new one).
        let mut best: Option<Sized> = None;
        for back in 1..=MAX_BACK {
            let r = if back <= j {
                &y[j - back]
            } else if back - j <= x.len() {
                &x[x.len() - (back - j)]
            } else {
                break;
            };
            let (p, n) = if r == &y[j] { (Patch::Same, 1) } else { changed(r, &y[j]) };
            let cand = if back == 1 { (p, n) } else { (Patch::Back(back, Box::new(p)), n + 6) };
            if best.as_ref().is_none_or(|b| cand.1 < b.1) {
                best = Some(cand);
            }
            if best.as_ref().is_some_and(|b| b.1 == 1) {
                break;
            }
        }
        let (p, n) = best.unwrap_or_else(|| set(&y[j]));
        len += n + 1;
        appends.push(p);
    }
    (Patch::Array { drop, keep, edits, appends }, len)
}

/// About how long `v` is as compact JSON, or some figure over `cap` once it
/// is known to be longer than that.
fn est_len(v: &Value, cap: usize) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(n) => num_len(n),
        Value::String(s) => s.len() + 2,
        Value::Array(a) => est_items(a, cap),
        Value::Object(m) => {
            let mut n = 2;
            for (k, e) in m {
                n += k.len() + 4 + est_len(e, cap.saturating_sub(n));
                if n > cap {
                    break;
                }
            }
            n
        }
    }
}

/// The text around a string's numbers and the numbers; None if a number
/// would not print back the same (a leading zero, more than 18 digits).
fn split_digits(s: &str) -> Option<(Vec<&str>, Vec<u64>)> {
    let b = s.as_bytes();
    let (mut text, mut nums) = (Vec::new(), Vec::new());
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let j = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let run = &s[i..j];
        if run.len() > 18 || (run.len() > 1 && run.starts_with('0')) {
            return None;
        }
        text.push(&s[start..i]);
        nums.push(run.parse().ok()?);
        (start, i) = (j, j);
    }
    text.push(&s[start..]);
    Some((text, nums))
}

fn digits_delta(a: &str, b: &str) -> Option<Vec<i64>> {
    let (ta, na) = split_digits(a)?;
    let (tb, nb) = split_digits(b)?;
    if na.is_empty() || ta != tb {
        return None;
    }
    Some(na.iter().zip(&nb).map(|(x, y)| *y as i64 - *x as i64).collect())
}

fn num_len(n: &Number) -> usize {
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) => u.checked_ilog10().unwrap_or(0) as usize + 1,
        (None, Some(i)) => i.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 2,
        _ => 12,
    }
}

fn int_of(n: &Number) -> Option<i128> {
    n.as_u64().map(i128::from).or_else(|| n.as_i64().map(i128::from))
}

fn int_delta(x: &Number, y: &Number) -> Option<Number> {
    let d = int_of(y)? - int_of(x)?;
    i64::try_from(d).map(Number::from).or_else(|_| u64::try_from(d).map(Number::from)).ok()
}

fn est_items(a: &[Value], cap: usize) -> usize {
    let mut n = 2;
    for e in a {
        n += est_len(e, cap.saturating_sub(n)) + 1;
        if n > cap {
            break;
        }
    }
    n
}

/// About how much memory a value takes: what the budget counts.
pub fn weight(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => 24 + s.len(),
        Value::Array(a) => 24 + a.iter().map(weight).sum::<usize>(),
        Value::Object(m) => 48 + m.iter().map(|(k, v)| 24 + k.len() + weight(v)).sum::<usize>(),
    }
}

/// What `apply` may still copy, in `weight` units.
pub struct Budget(pub usize);

impl Budget {
    pub fn charge(&mut self, w: usize) -> Result<(), String> {
        self.0 = self.0.checked_sub(w).ok_or("the patches grow a snapshot past the size limit")?;
        Ok(())
    }
}

/// Apply `p` to `v` in place.
pub fn apply(v: &mut Value, p: &Value, budget: &mut Budget) -> Result<(), String> {
    if p.as_u64() == Some(0) {
        return Ok(());
    }
    let Some(op) = p.as_array() else { return Err(format!("bad patch {}", short(p))) };
    let arg = |i: usize| op.get(i).ok_or_else(|| format!("patch too short: {}", short(p)));
    match op.first().and_then(Value::as_u64) {
        Some(SET) if op.len() == 2 => {
            *v = op[1].clone();
            Ok(())
        }
        Some(OBJECT) if op.len() <= 3 => {
            let Value::Object(m) = v else { return Err("an object patch on a non-object".into()) };
            let Value::Object(edits) = arg(1)? else { return Err("an object patch without a map".into()) };
            for (k, pk) in edits {
                match m.get_mut(k) {
                    Some(t) => apply(t, pk, budget)?,
                    None => {
                        let mut t = Value::Null;
                        set_only(&mut t, pk)?;
                        m.insert(k.clone(), t);
                    }
                }
            }
            if let Some(removed) = op.get(2) {
                let Value::Array(removed) = removed else { return Err("removed keys are not a list".into()) };
                for k in removed {
                    let k = k.as_str().ok_or("a removed key is not a string")?;
                    m.remove(k).ok_or_else(|| format!("removes a key {k:?} that is not there"))?;
                }
            }
            Ok(())
        }
        Some(ARRAY) if op.len() == 5 => {
            let Value::Array(a) = v else { return Err("an array patch on a non-array".into()) };
            let (Some(drop), Some(keep)) = (op[1].as_u64(), op[2].as_u64()) else {
                return Err("array patch counts are not numbers".into());
            };
            let (Value::Array(edits), Value::Array(appends)) = (&op[3], &op[4]) else {
                return Err("array patch lists are not lists".into());
            };
            if drop > a.len() as u64 || keep > a.len() as u64 - drop {
                return Err(format!("array patch drops {drop} and keeps {keep} of {}", a.len()));
            }
            let (drop, keep) = (drop as usize, keep as usize);
            // How far into the old array the appends look back.
            let mut refs = Vec::with_capacity(appends.len());
            let mut need = 0;
            for (idx, pa) in appends.iter().enumerate() {
                let (back, inner) = match pa.as_array().map(Vec::as_slice) {
                    Some([op, _]) if op.as_u64() == Some(SET) => (0, pa),
                    Some([op, k, inner]) if op.as_u64() == Some(BACK) => match k.as_u64() {
                        Some(k @ 2..=4) => (k as usize, inner),
                        _ => return Err("appends against an element too far back".into()),
                    },
                    _ => (1, pa),
                };
                need = need.max(back.saturating_sub(keep + idx));
                refs.push((back, inner));
            }
            if need > a.len() {
                return Err("appends against an element that is not there".into());
            }
            let old_tail = a[a.len() - need..].to_vec();
            budget.charge(old_tail.iter().map(weight).sum())?;
            a.drain(..drop);
            a.truncate(keep);
            for e in edits {
                let (Some(i), Some(pe)) = (e.get(0).and_then(Value::as_u64), e.get(1)) else {
                    return Err("bad array element patch".into());
                };
                let t = a.get_mut(i as usize).ok_or_else(|| format!("patches element {i} of {keep}"))?;
                apply(t, pe, budget)?;
            }
            for (back, inner) in refs {
                let pos = a.len();
                let mut t = if back == 0 {
                    Value::Null
                } else {
                    let r = if back <= pos { &a[pos - back] } else { &old_tail[old_tail.len() - (back - pos)] };
                    budget.charge(weight(r))?;
                    r.clone()
                };
                apply(&mut t, inner, budget)?;
                a.push(t);
            }
            Ok(())
        }
        Some(ADD) if op.len() == 2 => {
            let (Value::Number(x), Value::Number(d)) = (&*v, &op[1]) else {
                return Err("an integer patch on a non-number".into());
            };
            let sum = int_of(x).zip(int_of(d)).map(|(x, d)| x + d).ok_or("an integer patch on a non-integer")?;
            let n = u64::try_from(sum)
                .map(Number::from)
                .or_else(|_| i64::try_from(sum).map(Number::from))
                .map_err(|_| "an integer patch overflows")?;
            *v = Value::Number(n);
            Ok(())
        }
        Some(DIGITS) if op.len() == 2 => {
            let (Value::String(x), Value::Array(d)) = (&*v, &op[1]) else {
                return Err("a number-in-text patch on a non-string".into());
            };
            let (text, nums) = split_digits(x).ok_or("a number-in-text patch on odd text")?;
            if nums.len() != d.len() {
                return Err("a number-in-text patch with the wrong count".into());
            }
            let mut out = String::with_capacity(x.len() + 8);
            for (i, (n, d)) in nums.iter().zip(d).enumerate() {
                let d = d.as_i64().ok_or("a number-in-text patch that is not integers")?;
                let m = (*n as i128 + d as i128).clamp(-1, 1_000_000_000_000_000_000);
                if !(0..1_000_000_000_000_000_000).contains(&m) {
                    return Err("a number-in-text patch out of range".into());
                }
                out.push_str(text[i]);
                out.push_str(&m.to_string());
            }
            out.push_str(text[nums.len()]);
            *v = Value::String(out);
            Ok(())
        }
        _ => Err(format!("bad patch {}", short(p))),
    }
}

/// Where nothing was before, only a replacement makes sense.
fn set_only(t: &mut Value, p: &Value) -> Result<(), String> {
    match p.as_array().map(Vec::as_slice) {
        Some([op, v]) if op.as_u64() == Some(SET) => {
            *t = v.clone();
            Ok(())
        }
        _ => Err("patches a key that is not there".into()),
    }
}

fn short(p: &Value) -> String {
    let s = p.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn roundtrip(a: &Value, b: &Value) {
        let p = diff(a, b);
        // Through text, as a recording stores it.
        let p: Value = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        let mut v = a.clone();
        apply(&mut v, &p, &mut Budget(usize::MAX)).unwrap();
        assert_eq!(&v, b, "patch {p}");
    }

    #[test]
    fn rolling_windows_and_counters() {
        let a = json!({"n": 5, "h": [1, 2, 3, 4], "ev": [{"t": 1, "x": "a"}, {"t": 2, "x": "b"}], "gone": true});
        let b = json!({"n": 7, "h": [3, 4, 5, 6], "ev": [{"t": 9, "x": "a"}, {"t": 10, "x": "a"}, {"t": 11, "x": "b"}], "new": null});
        roundtrip(&a, &b);
        roundtrip(&b, &a);
        roundtrip(&json!([]), &json!([1, 2]));
        roundtrip(&json!([1, 2]), &json!([]));
        roundtrip(&json!(u64::MAX), &json!(i64::MIN));
        roundtrip(&json!(1.5), &json!(2));
        roundtrip(&json!(2), &json!(2.0));
        for (a, b) in [
            ("in = 30048", "in = 30049"),
            ("slot[15] ← 256 bytes", "slot[0] ← 256 bytes"),
            ("x007", "x008"),
            ("a1b2", "a10b0"),
            ("n 999999999999999999", "n 0"),
            ("n 1", "n 1000000000000000000"),
            ("é1", "é2"),
        ] {
            roundtrip(&json!(a), &json!(b));
        }
        assert_eq!(serde_json::to_string(&diff(&json!("in = 30048"), &json!("in = 30049"))).unwrap(), "[4,[1]]");
        // Alternating calls: each new one against the one two back.
        let send = |n: u32| format!("mach_msg(SEND, dest=0x703 COPY_SEND, id=1000) = MACH_MSG_SUCCESS (seq {n})");
        let recv = |n: u32| format!("mach_msg(RCV, rcv_name=0x303) = MACH_MSG_SUCCESS (id 1100, seq {n})");
        let a = json!([send(1), recv(1)]);
        let b = json!([send(2), recv(2), send(3), recv(3)]);
        roundtrip(&a, &b);
        let p = serde_json::to_string(&diff(&a, &b)).unwrap();
        assert_eq!(p, "[2,0,2,[[0,[4,[0,0,0,1]]],[1,[4,[0,0,0,1]]]],[[5,2,[4,[0,0,0,1]]],[5,2,[4,[0,0,0,1]]]]]");
    }

    #[test]
    fn hostile_patches_fail_without_panicking() {
        let bad = [
            json!(1),
            json!([9]),
            json!([2, 5, 0, [], []]),
            json!([2, 0, 1, [[7, [0, 1]]], []]),
            json!([2, 0, 0, [], [0]]),
            json!([1, {"k": [3, 1]}]),
            json!([3, 1]),
            json!([1, {}, ["nope"]]),
        ];
        for p in bad {
            let mut v = json!({"a": [1]});
            let mut w = json!([]);
            let _ = apply(&mut v, &p, &mut Budget(1 << 20));
            let _ = apply(&mut w, &p, &mut Budget(1 << 20));
        }
        // A few bytes that would copy a big element many times.
        let mut v = json!(["x".repeat(1000)]);
        let p = json!([2, 0, 1, [], vec![0; 10_000]]);
        assert!(apply(&mut v, &p, &mut Budget(1 << 20)).is_err());
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            (0u64..20).prop_map(Value::from),
            "[a-c]{0,3}".prop_map(Value::from),
            "[a0-9 ]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                prop::collection::btree_map("[a-e]", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn patch_reproduces_exactly(a in value(), b in value()) {
            roundtrip(&a, &b);
        }

        #[test]
        fn patch_reproduces_a_shifted_window(a in prop::collection::vec(value(), 0..12), d in 0usize..12, tail in prop::collection::vec(value(), 0..6)) {
            let mut b: Vec<Value> = a.iter().skip(d).cloned().collect();
            b.extend(tail);
            roundtrip(&Value::from(a.clone()), &Value::from(b.clone()));
            roundtrip(&Value::from(b), &Value::from(a));
        }

        #[test]
        fn any_patch_applies_or_fails_cleanly(a in value(), p in value()) {
            let mut v = a;
            let _ = apply(&mut v, &p, &mut Budget(1 << 20));
        }
    }
}
