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
    /// The two descriptors `pipe()` returned: fd[0] the read end, fd[1]
    /// the write end. Fork copies the table, so the numbers are the same
    /// in parent and child.
    #[serde(default)]
    pub fd_pair: Option<[i32; 2]>,
    /// What each process holds of the pipe now (parent, then child), read
    /// from its fd table: the textbook's figure of the closed ends.
    #[serde(default)]
    pub holds: Vec<EndsHeld>,
}

/// The ends of the pipe one process holds open.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndsHeld {
    pub role: String,
    /// Its descriptors that are the read end now.
    pub read: Vec<i32>,
    /// Its descriptors that are the write end now.
    pub write: Vec<i32>,
}
