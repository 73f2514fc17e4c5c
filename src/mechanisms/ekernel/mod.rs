//! What the emulated kernels (Mach, NT's ALPC) share: the Unix
//! `SOCK_SEQPACKET` transport between a kernel process and its tasks.
//! Each kernel runs as `ipcscope kernel NAME`, a process of its own in its
//! own process group (pausing the workers must not freeze the kernel the
//! monitor asks for its state).

pub mod transport;
