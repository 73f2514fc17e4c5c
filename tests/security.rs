//! Other users stay out: every object is owner-only, another uid can
//! neither reach the run's objects nor talk to the emulated kernels, and
//! names are not guessable.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use common::*;
use ipcscope::mechanisms::Kind;

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// Run a command as user nobody; true if it succeeded.
fn as_nobody(args: &[&str]) -> bool {
    let st = Command::new("setpriv").args(NOBODY).args(args).output().expect("setpriv (util-linux)");
    st.status.success()
}

/// As nobody, try to connect to a Unix socket (stream or seqpacket).
fn nobody_can_connect(path: &str, seqpacket: bool) -> bool {
    let kind = if seqpacket { "SOCK_SEQPACKET" } else { "SOCK_STREAM" };
    let code = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.{kind})\ntry:\n s.connect({path:?})\nexcept OSError:\n sys.exit(1)\n"
    );
    as_nobody(&["/usr/bin/python3", "-c", &code])
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o777
}

#[test]
fn objects_are_owner_only_and_other_users_are_kept_out() {
    let _g = serial();
    let kinds = [Kind::Pipe, Kind::Fifo, Kind::Shm, Kind::Mq, Kind::Socket, Kind::Mach, Kind::Alpc];
    let sess = session(&kinds, &[]);
    let s = wait_for(&sess, "every mechanism flowing", Duration::from_secs(15), |s| {
        s.mechanisms.len() == kinds.len() && s.mechanisms.iter().all(|m| m.integrity.delivered > 0)
    });
    let dir = std::path::PathBuf::from(&s.run.runtime_dir);
    assert_eq!(mode(&dir), 0o700, "run dir");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let ft = e.file_type().unwrap();
        let p = e.path();
        if ft.is_fifo() || ft.is_socket() {
            assert_eq!(mode(&p) & 0o077, 0, "{} is open to others", p.display());
            checked += 1;
            // Another user cannot even reach it: the directory is 0700.
            let path = p.to_str().unwrap();
            if ft.is_socket() {
                let seq = path.ends_with("mach.sock") || path.ends_with("nt.sock");
                assert!(!nobody_can_connect(path, seq), "nobody connected to {path}");
            } else {
                assert!(!as_nobody(&["/usr/bin/timeout", "2", "/bin/cat", path]), "nobody read the FIFO");
            }
        }
    }
    assert!(checked >= 4, "expected a FIFO and three sockets in the run dir");
    let prefix = format!("ipcscope-{}-", std::process::id());
    let shm: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(!shm.is_empty());
    for e in &shm {
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!as_nobody(&["/bin/cat", e.path().to_str().unwrap()]), "nobody read shared memory");
    }
    // Message queues: listed through a private mount of the mqueue fs.
    let ls = Command::new("unshare")
        .args(["-m", "sh", "-c", "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue && ls -l /dev/mqueue"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&ls.stdout);
    let ours: Vec<&str> = listing.lines().filter(|l| l.contains(&prefix)).collect();
    assert!(!ours.is_empty(), "no queue of ours in:\n{listing}");
    for l in ours {
        assert!(l.starts_with("-rw-------"), "queue open to others: {l}");
    }
    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}

/// Even with the door open (a socket anyone may connect to), the emulated
/// kernels talk only to their own uid (SO_PEERCRED).
#[test]
fn kernels_refuse_peers_of_another_uid() {
    for kernel in ["mach", "nt"] {
        let dir = std::env::temp_dir().join(format!("scope-sec-{}-{kernel}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("k.sock");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p2, s2) = (path.clone(), stop.clone());
        let server = std::thread::spawn(move || {
            let stop = move || s2.load(std::sync::atomic::Ordering::Relaxed);
            if kernel == "mach" {
                ipcscope::mechanisms::mach::server::run(&p2, stop)
            } else {
                ipcscope::mechanisms::alpc::server::run(&p2, stop)
            }
        });
        while !path.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        // Connect, send a request, and expect the kernel to hang up
        // without a word.
        let code = format!(
            "import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\ns.connect({:?})\ns.settimeout(3)\ntry:\n s.send(b'\\x01'*64)\n r=s.recv(65536)\nexcept OSError:\n sys.exit(0)\nsys.exit(0 if r == b'' else 3)\n",
            path.to_str().unwrap()
        );
        let out = Command::new("setpriv").args(NOBODY).args(["/usr/bin/python3", "-c", &code]).output().unwrap();
        assert!(out.status.success(), "{kernel}: another uid got an answer: {:?}", out);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        server.join().unwrap().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn object_names_are_not_guessable() {
    let a = snapshot_json("shm", "0.3", &[]);
    let b = snapshot_json("shm", "0.3", &[]);
    let name =
        |s: &ipcscope::snapshot::Snapshot| serde_json::to_value(s).unwrap()["mechanisms"][0]["detail"].to_string();
    let token =
        |s: &str| s.split("ipcscope-").nth(1).and_then(|r| r.split('-').nth(1)).map(str::to_string).unwrap_or_default();
    let (ta, tb) = (token(&name(&a)), token(&name(&b)));
    assert_eq!(ta.len(), 8, "{}", name(&a));
    assert_ne!(ta, tb, "two runs got the same random part");
    assert_run_gone(&a);
    assert_run_gone(&b);
}
