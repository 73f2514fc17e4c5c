//! The snapshot's old path: its types live in [`crate::model::snapshot`].

pub use crate::model::snapshot::*;
