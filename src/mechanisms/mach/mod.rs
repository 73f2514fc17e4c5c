//! The emulated Mach IPC kernel (textbook §3.7.2, "Mach message passing").
//!
//! Linux has no Mach, so a process of ours plays the kernel: it owns every
//! port, queue and right, and real Linux processes are its tasks, talking
//! to it over a Unix `SOCK_SEQPACKET` socket ([`crate::mechanisms::ekernel::transport`]).
//!
//! - [`types`]: constants under XNU's names and values (GNU Mach's only for
//!   the `MACH_SEND_NOTIFY` path), and their names for the screen.
//! - [`proto`]: the hand-written, bounds-checked wire format.
//! - [`kernel`]: the pure state machine (no I/O, explicit time).
//! - [`state`]: the introspection snapshot an observer receives.
//! - [`server`]: the kernel process's single-threaded `poll` loop.
//! - [`client`]: the library a task uses (`mach_msg`, `mach_port_*`,
//!   `bootstrap_*`) and the observer.
//! - [`mechanism`], [`workload`], [`probe`]: ipcscope's side — the
//!   supervisor's part, the processes (kernel, echo server, clients) and
//!   what the monitor samples; [`consts`]: the knobs and names they share.
//!
//! # Where this emulation differs from XNU, and why
//!
//! - **Option 4, "cache the message"** follows `mach.personality`
//!   ([`kernel::Personality`]): the textbook's rule by default (below),
//!   GNU Mach's (one per task and send right, notified when dequeued) or
//!   XNU's (nothing kept, `MACH_NOTIFY_SEND_POSSIBLE`), switched live.
//!   The textbook's: one message per sending *thread* may be kept past a
//!   full queue. With
//!   `MACH_SEND_NOTIFY` (XNU's bit, 0x80), a send that would return
//!   `MACH_SEND_TIMED_OUT` is queued past the limit instead and returns GNU
//!   Mach's `MACH_SEND_WILL_NOTIFY`; a second one from the same thread while
//!   the first is pending gets `MACH_SEND_NOTIFY_IN_PROGRESS`. GNU Mach's
//!   `MACH_NOTIFY_MSG_ACCEPTED` goes to the `notify` receive right when the
//!   kept message moves within the queue limit (the textbook's "when it can
//!   be queued"), or is received or destroyed first. XNU caches nothing
//!   (it arms `MACH_NOTIFY_SEND_POSSIBLE`); GNU Mach limits one per task per
//!   send right.
//! - **Dead names appear at once** when a port dies (XNU converts lazily on
//!   the next lookup), so the screen shows them; the observable results of
//!   calls are the same.
//! - **A receiver blocked on a port that dies** gets `MACH_RCV_PORT_DIED`
//!   (GNU Mach's answer; XNU returns `MACH_RCV_PORT_CHANGED` for both death
//!   and a moved receive right — we use that one for the move).
//! - **Blocked senders wake in FIFO order** (GNU Mach); XNU wakes by
//!   priority. At qlimit 0 a waiting receiver takes a blocked sender's
//!   message directly (a rendezvous).
//! - **A failed send restores the sender's space exactly**: moved rights
//!   come back under their old names, copied or made rights are dropped.
//!   XNU's pseudo-receive can leave an extra reference for `COPY_SEND` /
//!   `MAKE_SEND` destinations.
//! - **Not emulated:** port sets (`mach_port_allocate(PORT_SET)` →
//!   `KERN_INVALID_VALUE`), vouchers (a non-null voucher →
//!   `MACH_SEND_INVALID_HEADER`, because XNU's `MACH_SEND_INVALID_VOUCHER`
//!   value is GNU's `MACH_SEND_WILL_NOTIFY`), notifications other than
//!   dead-name and (under `xnu`) send-possible (no-senders,
//!   port-destroyed → `KERN_INVALID_VALUE`), MIG servers behind kernel ports (a message to
//!   the bootstrap or a task port → `MACH_SEND_INVALID_DEST`; use the
//!   `bootstrap_*` calls), OOL port arrays, `MACH_SEND_INTERRUPTED`.
//! - **Sizes:** inline data is at most 192 KiB (one seqpacket packet; XNU
//!   allows ~48 MiB); bulk data goes out of line. Out-of-line memory is a
//!   sealed `memfd` mapped by the receiver, never copied by the kernel.
//! - **Bootstrap:** `bootstrap_check_in` declares a service on demand and
//!   returns its receive right (launchd only checks in services declared in
//!   a plist); a service disappears when its port dies (launchd would keep
//!   it for demand-launch).
//! - **Hard limits** on tasks, names, ports, queued messages and bytes (see
//!   [`kernel::Limits`]) return `KERN_NO_SPACE`, `KERN_RESOURCE_SHORTAGE` or
//!   `MACH_SEND_NO_BUFFER` where XNU would grow further.

pub mod client;
pub mod consts;
pub mod kernel;
pub mod mechanism;
pub mod probe;
pub mod proto;
pub mod server;
pub mod state;
pub mod types;
pub mod vm;
pub mod workload;

pub use crate::model::detail::mach::MachDetail;
pub use mechanism::INFO;
