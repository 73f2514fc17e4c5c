//! Standard output for the commands that print (lessons, snapshots,
//! bench reports): one helper, so a closed pipe is handled the same way
//! everywhere.

/// Write to stdout. A reader that went away (`ipcscope lesson --list |
/// head -1`) is a quiet exit 0, any other failure one line and exit 1 —
/// never a panic. Exits at once, so call it only when nothing is left to
/// clean up (every run has been shut down).
pub fn write_out(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("ipcscope: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` through `write_out`.
macro_rules! out {
    ($($t:tt)*) => { $crate::stdout::write_out(format_args!($($t)*)) };
}

/// `println!` through `write_out`.
macro_rules! outln {
    ($($t:tt)*) => { $crate::stdout::write_out(format_args!("{}\n", format_args!($($t)*))) };
}

pub(crate) use {out, outln};
