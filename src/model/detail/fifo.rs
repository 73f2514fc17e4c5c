//! The FIFO's detail: what its panel shows beyond the common figures.

use serde::{Deserialize, Serialize};

/// A process holding the FIFO open, found in its fd table.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FifoHolder {
    pub pid: i32,
    pub fd: i32,
    pub comm: String,
    /// `r` or `w` (or `rw`), from fdinfo flags.
    pub mode: String,
    /// Our role (`reader`, `writer-2`), or None for an outside process.
    pub role: Option<String>,
}

/// What the FIFO panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FifoDetail {
    pub path: String,
    /// The FIFO is in the file system now.
    pub exists: bool,
    /// `ls -l`-style line: `prw------- 1 root root 0 /tmp/…/fifo`.
    pub ls_line: String,
    /// Its st_mode (file type and permission bits), 0 when not read.
    #[serde(default)]
    pub mode: u32,
    pub inode: u64,
    pub writers: u64,
    pub pipe_buf: u64,
    pub msg_size: u64,
    /// msg.size ≤ PIPE_BUF: every write lands whole.
    pub atomic: bool,
    /// Everyone with the FIFO open, ours and others.
    pub holders: Vec<FifoHolder>,
    pub sigpipe: String,
    /// Times the reader saw EOF (every writer closed) and opened again.
    pub eofs: u64,
}

impl FifoDetail {
    /// `prw-------`: the node's type and permissions, from its mode (or,
    /// in a recording made before the mode was kept, its `ls` line).
    pub fn mode_text(&self) -> String {
        if self.mode != 0 {
            mode_string(self.mode)
        } else {
            self.ls_line.split_whitespace().next().unwrap_or_default().to_string()
        }
    }

    /// Holders that are not our processes: someone joined by path.
    pub fn external(&self) -> impl Iterator<Item = &FifoHolder> {
        self.holders.iter().filter(|h| h.role.is_none())
    }
}

/// `prw-------` from a mode.
pub fn mode_string(mode: u32) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFIFO => 'p',
        libc::S_IFDIR => 'd',
        libc::S_IFSOCK => 's',
        libc::S_IFLNK => 'l',
        _ => '-',
    };
    let mut s = String::from(kind);
    for shift in [6, 3, 0] {
        let b = (mode >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

impl FifoDetail {
    /// The four design questions, answered from what was observed: our
    /// processes found the FIFO by its path, each opened it with one mode
    /// (fdinfo flags), and the node is a `p` file of this machine.
    pub fn design_answers(&self) -> Vec<super::Answer> {
        use super::Answer::*;
        let mut out = Vec::new();
        let ours = || self.holders.iter().filter(|h| h.role.is_some());
        let one_way = ours().any(|h| h.mode == "r") && ours().any(|h| h.mode == "w") && ours().all(|h| h.mode != "rw");
        if one_way {
            out.push(OneWay);
            out.push(HalfDuplex);
        }
        if self.exists && ours().next().is_some() {
            out.push(ByPath);
        }
        if self.exists && self.mode & libc::S_IFMT == libc::S_IFIFO {
            out.push(Local);
        }
        out
    }
}

#[cfg(test)]
mod design_tests {
    use super::super::Answer::*;
    use super::*;

    #[test]
    fn a_fifo_opened_read_write_is_not_called_one_way() {
        let h = |mode: &str| FifoHolder { mode: mode.into(), role: Some("x".into()), ..Default::default() };
        let mut d = FifoDetail {
            exists: true,
            mode: libc::S_IFIFO | 0o600,
            holders: vec![h("w"), h("r")],
            ..Default::default()
        };
        assert_eq!(d.design_answers(), [OneWay, HalfDuplex, ByPath, Local]);
        d.holders.push(h("rw"));
        assert_eq!(d.design_answers(), [ByPath, Local]);
    }
}
