//! Hostile bytes for the emulated kernels, kept as a corpus in
//! `tests/corpus/{mach,nt}/`: each file is sent as one packet to a real
//! kernel on a real socket. The kernel must answer with an error or hang
//! up — never crash, never hang — and afterwards hold nothing for the
//! connections that are gone, and still serve a well-behaved task.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Send one packet on a fresh SOCK_SEQPACKET connection; wait (bounded)
/// for an answer or a hang-up. True if the kernel answered or hung up.
fn poke(sock: &Path, packet: &[u8]) -> bool {
    // SAFETY: plain socket calls on a descriptor we own; buffers are valid.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as u16;
        let p = sock.as_os_str().as_encoded_bytes();
        for (i, b) in p.iter().enumerate() {
            addr.sun_path[i] = *b as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + p.len() + 1;
        assert_eq!(libc::connect(fd, &addr as *const _ as *const libc::sockaddr, len as u32), 0, "connect");
        let sent = libc::send(fd, packet.as_ptr().cast(), packet.len(), libc::MSG_NOSIGNAL);
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // A refused packet (over the size limit) may fail to send at all;
        // then the kernel just has to stay up.
        let answered = sent < 0 || libc::poll(&mut pfd, 1, 3000) > 0;
        libc::close(fd);
        answered
    }
}

fn corpus(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(dir))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    assert!(v.len() >= 10, "corpus {dir} is too small");
    v
}

struct Kernel {
    dir: PathBuf,
    sock: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Kernel {
    fn start(name: &str, run: fn(&Path, Arc<AtomicBool>) -> std::io::Result<()>) -> Kernel {
        let dir = std::env::temp_dir().join(format!("scope-corpus-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("k.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (sock.clone(), stop.clone());
        let thread = std::thread::spawn(move || run(&s2, st2));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "kernel did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Kernel { dir, sock, stop, thread: Some(thread) }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let r = t.join();
            if !std::thread::panicking() {
                r.expect("the kernel thread panicked").expect("the kernel failed");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn mach_kernel_survives_the_corpus() {
    use ipcscope::mechanisms::mach::{client, server};
    let k = Kernel::start("mach", |p, stop| server::run(p, move || stop.load(Relaxed)));
    for f in corpus("mach") {
        let bytes = std::fs::read(&f).unwrap();
        assert!(poke(&k.sock, &bytes), "{}: the kernel neither answered nor hung up", f.display());
    }
    // Every hostile connection is gone, and so is everything it held.
    let deadline = Instant::now() + Duration::from_secs(3);
    let obs = client::Observer::connect(&k.sock).expect("observer");
    loop {
        let st = obs.state().expect("state");
        if st.tasks.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "tasks left: {}", st.tasks.len());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A well-behaved task is still served.
    let task = client::MachTask::connect(&k.sock, "after-corpus").expect("connect");
    let err = task.bootstrap_look_up(task.bootstrap_port(), "no.such.service").unwrap_err();
    assert_eq!(err.kr(), Some(ipcscope::mechanisms::mach::types::BOOTSTRAP_UNKNOWN_SERVICE));
}

#[test]
fn nt_kernel_survives_the_corpus() {
    use ipcscope::mechanisms::alpc::{client, server};
    let k = Kernel::start("nt", |p, stop| server::run(p, move || stop.load(Relaxed)));
    for f in corpus("nt") {
        let bytes = std::fs::read(&f).unwrap();
        assert!(poke(&k.sock, &bytes), "{}: the kernel neither answered nor hung up", f.display());
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut obs = client::Observer::connect(&k.sock).expect("observer");
    loop {
        let st = obs.state().expect("state");
        // The observer itself is a process of the kernel's.
        let others = st.processes.iter().filter(|p| p.name != "observer").count();
        if others == 0 && st.channels.is_empty() && st.directory.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left: {others} processes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut p = client::AlpcProcess::connect(&k.sock).expect("connect");
    let h = p.nt_alpc_create_port("\\RPC Control\\after-corpus", Default::default()).expect("create port");
    assert!(h != 0);
}
