//! The data every layer shares: what a mechanism is called, and the
//! snapshot the monitor fills and the UI draws. Plain types; this module
//! imports nothing else of ours, so any layer may import it.

pub mod detail;
pub mod figures;
pub mod kind;
pub mod knob;
pub mod measured;
pub mod snapshot;

pub use kind::Kind;
