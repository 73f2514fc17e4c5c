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
    /// The consumer's parent (/proc/PID/stat) is the producer: the pipe
    /// joins a parent and the child it forked. None until both were seen.
    #[serde(default)]
    pub parent_child: Option<bool>,
    /// Both processes have exited: no end is held, so the kernel has
    /// freed the pipe and its buffer (nothing is left to measure).
    #[serde(default)]
    pub freed: bool,
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

impl PipeDetail {
    /// The four design questions, answered from what was observed: a
    /// process holding only the read end and one holding only the write
    /// end (fdinfo flags), the consumer's parent (/proc stat), the pipe's
    /// `pipe:[N]` inode on pipefs.
    pub fn design_answers(&self) -> Vec<super::Answer> {
        use super::Answer::*;
        let mut out = Vec::new();
        let reads = self.holds.iter().any(|h| !h.read.is_empty());
        let writes = self.holds.iter().any(|h| !h.write.is_empty());
        if reads && writes {
            out.push(OneWay);
            out.push(if self.duplex { TwoPipes } else { HalfDuplex });
        }
        if self.parent_child == Some(true) {
            out.push(ParentChild);
        }
        if self.inode.is_some() {
            out.push(Local);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Answer::*;
    use super::*;

    #[test]
    fn a_pipe_answers_only_what_was_observed() {
        let mut d = PipeDetail::default();
        assert!(d.design_answers().is_empty());
        d.holds = vec![
            EndsHeld { role: "producer".into(), read: vec![], write: vec![7] },
            EndsHeld { role: "consumer".into(), read: vec![6], write: vec![] },
        ];
        d.inode = Some(42);
        d.parent_child = Some(true);
        assert_eq!(d.design_answers(), [OneWay, HalfDuplex, ParentChild, Local]);
        d.duplex = true;
        d.parent_child = Some(false);
        assert_eq!(d.design_answers(), [OneWay, TwoPipes, Local]);
    }
}
