//! Errno values by name, for event logs and traces (below every module
//! that prints a failed call).

/// `EPIPE` for `libc::EPIPE`; `E?` for one we do not name.
pub fn name(e: i32) -> &'static str {
    match e {
        libc::EPIPE => "EPIPE",
        libc::EAGAIN => "EAGAIN",
        libc::EBUSY => "EBUSY",
        libc::EPERM => "EPERM",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENXIO => "ENXIO",
        libc::EACCES => "EACCES",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENODEV => "ENODEV",
        _ => "E?",
    }
}
