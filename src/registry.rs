//! The only list of the mechanisms this build has. Whatever needs a
//! mechanism by its kind (the session starting one, the worker process
//! running a role, the command line naming them) asks here, from above;
//! nothing below imports this file.

use crate::mechanisms::{self, Info};
use crate::model::Kind;

/// The mechanisms this build has.
pub static REGISTRY: &[&Info] = &[
    &mechanisms::pipe::INFO,
    &mechanisms::fifo::INFO,
    &mechanisms::shm::INFO,
    &mechanisms::mq::INFO,
    &mechanisms::mach::INFO,
    &mechanisms::alpc::INFO,
    &mechanisms::socket::INFO,
];

/// A kind's entry, if this build has it.
pub fn info(kind: Kind) -> Option<&'static Info> {
    REGISTRY.iter().copied().find(|i| i.kind == kind)
}

/// Split a comma-separated list given on the command line: an empty item
/// (`pipe,,fifo`, a trailing comma) or one named twice is refused, so a
/// typo is said rather than silently dropped. `what` names the list.
pub fn split_list<'a>(s: &'a str, what: &str) -> Result<Vec<&'a str>, String> {
    let mut out: Vec<&str> = Vec::new();
    for (i, item) in s.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            return Err(format!("empty item {} in {what} {s:?}", i + 1));
        }
        if out.contains(&item) {
            return Err(format!("{item:?} is named twice in {what} {s:?}"));
        }
        out.push(item);
    }
    Ok(out)
}

/// Parse `pipe,fifo` (or `all`) into kinds this build has; the error names
/// the valid choices.
pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
    let valid = || REGISTRY.iter().map(|i| i.kind.name()).collect::<Vec<_>>().join(", ");
    if s.trim() == "all" {
        return Ok(REGISTRY.iter().map(|i| i.kind).collect());
    }
    if s.trim().is_empty() {
        return Err(format!("no mechanism given; choose from: {}, all", valid()));
    }
    let mut out = Vec::new();
    for name in split_list(s, "--mechanisms")? {
        let info = REGISTRY
            .iter()
            .find(|i| i.kind.name() == name)
            .ok_or_else(|| format!("unknown mechanism {name:?}; choose from: {}, all", valid()))?;
        out.push(info.kind);
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_refuse_empty_items_and_repeats() {
        assert_eq!(parse_list("fifo, pipe"), Ok(vec![Kind::Pipe, Kind::Fifo]));
        assert!(parse_list("pipe,pipe").unwrap_err().contains("twice"));
        assert!(parse_list("pipe,,fifo").unwrap_err().contains("empty item 2"));
        assert!(parse_list("pipe,").unwrap_err().contains("empty item 2"));
        assert!(parse_list(" ").unwrap_err().contains("no mechanism"));
    }

    #[test]
    fn every_knob_is_common_or_one_mechanisms_own() {
        use crate::knobs::KnobId;
        let mut ids: Vec<KnobId> = KnobId::COMMON.to_vec();
        for info in REGISTRY {
            ids.extend(info.knobs);
        }
        ids.sort();
        assert_eq!(ids, KnobId::ALL);
    }
}
