//! The pipe's detail: what its panel shows beyond the common figures.

use serde::{Deserialize, Serialize};

use crate::model::figures::Channel;

/// What the pipe panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PipeDetail {
    /// The pipe's inode (`pipe:[N]` in both processes' fd tables).
    pub inode: Option<u64>,
    /// Processes holding each end open, from their fd tables.
    pub read_ends: Vec<String>,
    pub write_ends: Vec<String>,
    pub close_unused: bool,
    pub duplex: bool,
    /// Fill of the reply pipe, when duplex.
    pub reply: Option<Channel>,
    pub sigpipe: String,
    pub eof_seen: bool,
}
