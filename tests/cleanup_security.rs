//! The stale-run sweep (at every start and in `ipcscope clean`) never
//! deletes what is not its own (issue 13): a base directory planted by
//! another user, or a symlink, is refused before anything in it is read; a
//! manifest names only its own run's objects; other users' objects are left
//! alone, and `clean` reports only what it really removed.
//!
//! Run as real users with setpriv: a victim (61001) and an attacker (61002)
//! whose files root plants (chown) as the attacker would. Needs root.

use std::os::unix::fs::{chown, lchown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

const EXE: &str = env!("CARGO_BIN_EXE_ipcscope");
const VICTIM: u32 = 61001;
const ATTACKER: u32 = 61002;

/// The victim's base: every test here plants or expects it, so they run
/// one at a time. No other test uses uid 61001.
static LOCK: Mutex<()> = Mutex::new(());

fn victim_base() -> PathBuf {
    PathBuf::from(format!("/tmp/ipcscope-{VICTIM}"))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Remove whatever is at `p`, never following a symlink.
fn remove_any(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Everything a test made; removed on drop, even when the test fails.
struct Fixture {
    root: PathBuf,
    exe: PathBuf,
    home: PathBuf,
    shm: Vec<PathBuf>,
    _lock: MutexGuard<'static, ()>,
}

impl Fixture {
    /// A 0755 directory with a copy of the binary the test users can run,
    /// and the victim's home (0700) holding a file that must survive.
    fn new(tag: &str) -> Fixture {
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        remove_any(&victim_base());
        let root = PathBuf::from(format!("/tmp/ipcscope-sectest-{}-{tag}", std::process::id()));
        remove_any(&root);
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = Fixture { exe: root.join("ipcscope"), home: root.join("home"), root, shm: Vec::new(), _lock: lock };
        std::fs::copy(EXE, &f.exe).unwrap();
        std::fs::set_permissions(&f.exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        f.victim_dir(&f.home.clone());
        std::fs::set_permissions(&f.home, std::fs::Permissions::from_mode(0o700)).unwrap();
        f.victim_file(&f.precious(), "the victim's work\n");
        f
    }

    fn precious(&self) -> PathBuf {
        self.home.join("precious")
    }

    fn victim_dir(&self, p: &Path) {
        std::fs::create_dir_all(p).unwrap();
        chown(p, Some(VICTIM), Some(VICTIM)).unwrap();
    }

    fn victim_file(&self, p: &Path, text: &str) {
        std::fs::write(p, text).unwrap();
        chown(p, Some(VICTIM), Some(VICTIM)).unwrap();
    }

    /// A /dev/shm object owned by `uid`, removed on drop.
    fn shm_object(&mut self, name: &str, uid: u32, mode: u32) -> PathBuf {
        let p = Path::new("/dev/shm").join(name);
        std::fs::write(&p, [0u8; 64]).unwrap();
        chown(&p, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        self.shm.push(p.clone());
        p
    }

    /// Run the copied binary as `uid`, with no XDG_RUNTIME_DIR unless given.
    fn run_as(&self, uid: u32, args: &[&str], xdg: Option<&Path>) -> Output {
        let mut cmd = Command::new("/usr/bin/timeout");
        cmd.arg("60");
        if uid != 0 {
            cmd.arg("setpriv").args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()]);
        }
        cmd.arg(&self.exe).args(args).env_clear().env("PATH", "/usr/bin:/bin").current_dir(&self.root);
        cmd.env("HOME", if uid == VICTIM { &self.home } else { &self.root });
        if let Some(x) = xdg {
            cmd.env("XDG_RUNTIME_DIR", x);
        }
        cmd.output().expect("run ipcscope through timeout/setpriv")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        remove_any(&victim_base());
        remove_any(&self.root);
        for p in &self.shm {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The run refused with one line that names the base, says why, and what to do.
fn assert_refused(out: &Output, what: &str, why: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: exit status; stderr:\n{err}");
    let line = format!("{} is not a private directory of yours ({why})", victim_base().display());
    let hits: Vec<&str> = err.lines().filter(|l| l.contains(&line)).collect();
    assert_eq!(hits.len(), 1, "{what}: expected one line with {line:?} in:\n{err}");
    assert!(hits[0].contains("XDG_RUNTIME_DIR"), "{what}: the line says what to do: {}", hits[0]);
    assert!(!text(&out.stdout).contains("removed"), "{what}: removed something:\n{}", text(&out.stdout));
}

/// A manifest an attacker writes: the victim's file by path, a victim's
/// object by name, and names that climb out of /dev/shm.
fn hostile_manifest(f: &Fixture, victim_shm: &str) -> String {
    let p = f.precious();
    let p = p.display();
    format!(
        "path {p}\nshm /{victim_shm}\nshm /../..{p}\nmq /{victim_shm}\nshm /ipcscope-999999-../../..{p}\npath ../../..{p}\n"
    )
}

#[test]
fn a_base_another_user_planted_is_refused_and_nothing_of_ours_is_deleted() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    // The attacker's own directory, and one of ours left open to everyone.
    for (owner, mode, why) in
        [(ATTACKER, 0o777, format!("owned by uid {ATTACKER}")), (VICTIM, 0o777, "mode 0777".into())]
    {
        let mut f = Fixture::new("planted");
        let own = format!("sectest-{}-victim", std::process::id());
        let own_obj = f.shm_object(&own, VICTIM, 0o600);
        let base = victim_base();
        let run = base.join("999999");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("objects"), hostile_manifest(&f, &own)).unwrap();
        for p in [&run.join("objects"), &run, &base] {
            chown(p, Some(ATTACKER), Some(ATTACKER)).unwrap();
        }
        chown(&base, Some(owner), Some(owner)).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();

        let clean = f.run_as(VICTIM, &["clean"], None);
        assert!(f.precious().exists(), "clean deleted the victim's file (base {why})");
        assert!(own_obj.exists(), "clean deleted the victim's shm object (base {why})");
        assert!(run.join("objects").exists(), "clean touched the planted base ({why})");
        assert_refused(&clean, "clean", &why);

        let snap = f.run_as(VICTIM, &["snapshot", "--mechanisms", "pipe", "--duration", "0.3"], None);
        assert!(f.precious().exists(), "a run deleted the victim's file (base {why})");
        assert!(own_obj.exists(), "a run deleted the victim's shm object (base {why})");
        assert_refused(&snap, "snapshot", &why);
    }
}

#[test]
fn a_base_that_is_a_symlink_is_never_followed() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    // Planted by the attacker, or made by the victim: a symlink either way.
    for owner in [ATTACKER, VICTIM] {
        let f = Fixture::new("symlink");
        let data = f.home.join("data");
        for run in ["999999", "999998"] {
            f.victim_dir(&data.join(run));
            f.victim_file(&data.join(run).join("keep"), "numbered, but not a run\n");
        }
        f.victim_file(&data.join("999999").join("objects"), &format!("path {}\n", f.precious().display()));
        symlink(&data, victim_base()).unwrap();
        lchown(victim_base(), Some(owner), Some(owner)).unwrap();

        let clean = f.run_as(VICTIM, &["clean"], None);
        let snap = f.run_as(VICTIM, &["snapshot", "--mechanisms", "pipe", "--duration", "0.3"], None);
        for run in ["999999", "999998"] {
            assert!(data.join(run).join("keep").exists(), "{run} under the symlink's target was deleted");
        }
        assert!(f.precious().exists(), "the victim's file was deleted");
        assert_refused(&clean, "clean", "a symlink");
        assert_refused(&snap, "snapshot", "a symlink");
    }
}

#[test]
fn a_manifest_names_only_its_own_runs_objects() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    let mut f = Fixture::new("manifest");
    let tag = std::process::id();
    let own = format!("sectest-{tag}-victim");
    let own_obj = f.shm_object(&own, VICTIM, 0o600);
    // The dead run's own object: this one goes.
    let runs_obj = f.shm_object(&format!("ipcscope-999999-t{tag}-shm"), VICTIM, 0o600);
    // A private base of the victim's own, whose dead run's manifest (written
    // by a worker gone wrong) names things outside the run.
    let base = victim_base();
    let run = base.join("999999");
    f.victim_dir(&run);
    f.victim_dir(&f.home.join("data").join("999997"));
    f.victim_file(&f.home.join("data").join("999997").join("keep"), "x\n");
    symlink(f.home.join("data"), run.join("link")).unwrap();
    lchown(run.join("link"), Some(VICTIM), Some(VICTIM)).unwrap();
    let manifest = format!("{}shm /ipcscope-999999-t{tag}-shm\nshm /\x1b]0;pwned\x07\n", hostile_manifest(&f, &own));
    f.victim_file(&run.join("objects"), &manifest);
    for d in [&base, &run] {
        chown(d, Some(VICTIM), Some(VICTIM)).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    let out = f.run_as(VICTIM, &["clean"], None);
    let stdout = text(&out.stdout);
    assert!(f.precious().exists(), "a manifest's path entry deleted the victim's file:\n{stdout}");
    assert!(own_obj.exists(), "a manifest deleted an object not named for its run:\n{stdout}");
    assert!(f.home.join("data/999997/keep").exists(), "a symlink in the run dir was followed");
    assert!(out.status.success(), "clean failed: {}", text(&out.stderr));
    assert!(!runs_obj.exists(), "the run's own object was left:\n{stdout}");
    assert!(!run.exists(), "the dead run's dir was left:\n{stdout}");
    assert!(stdout.contains(&format!("removed shm /ipcscope-999999-t{tag}-shm")), "{stdout}");
    assert!(stdout.contains("removed run 999999"), "{stdout}");
    // Every refused entry is reported, and none can drive the terminal.
    let ignored = stdout.lines().filter(|l| l.starts_with("ignored ")).count();
    assert_eq!(ignored, 7, "each bad entry is reported once:\n{stdout}");
    assert!(!stdout.contains('\x1b'), "a planted name reached the terminal raw");
}

#[test]
fn under_xdg_runtime_dir_only_our_own_run_dirs_are_swept() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    let mut f = Fixture::new("xdg");
    let own = format!("sectest-{}-victim", std::process::id());
    let own_obj = f.shm_object(&own, VICTIM, 0o600);
    // A runtime dir others can write to (a misconfigured XDG_RUNTIME_DIR).
    let xdg = f.root.join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // The attacker's "run" dir, and a symlink to a victim dir with a manifest.
    let theirs = xdg.join("ipcscope-999999");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("objects"), hostile_manifest(&f, &own)).unwrap();
    for p in [&theirs.join("objects"), &theirs] {
        chown(p, Some(ATTACKER), Some(ATTACKER)).unwrap();
    }
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = f.home.join("data");
    f.victim_dir(&data);
    f.victim_file(&data.join("objects"), &hostile_manifest(&f, &own));
    f.victim_file(&data.join("keep"), "x\n");
    symlink(&data, xdg.join("ipcscope-999998")).unwrap();
    lchown(xdg.join("ipcscope-999998"), Some(VICTIM), Some(VICTIM)).unwrap();

    let out = f.run_as(VICTIM, &["clean"], Some(&xdg));
    let stdout = text(&out.stdout);
    assert!(f.precious().exists(), "clean obeyed a manifest that is not ours:\n{stdout}");
    assert!(own_obj.exists(), "clean obeyed a manifest that is not ours:\n{stdout}");
    assert!(data.join("keep").exists() && theirs.join("objects").exists(), "{stdout}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    for d in ["ipcscope-999999: owned by uid 61002", "ipcscope-999998: a symlink"] {
        assert!(stdout.lines().any(|l| l.starts_with("left ") && l.contains(d)), "no line about {d}:\n{stdout}");
    }
    // The victim's own runs still work there.
    let snap = f.run_as(VICTIM, &["snapshot", "--mechanisms", "pipe", "--duration", "0.3"], Some(&xdg));
    assert!(snap.status.success(), "{}", text(&snap.stderr));
    assert!(f.precious().exists() && own_obj.exists() && data.join("keep").exists());
}

#[test]
fn root_leaves_other_users_objects_alone() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    let mut f = Fixture::new("root");
    // Root's runs live elsewhere for this test: only /dev/shm is shared.
    let xdg = f.root.join("root-xdg");
    std::fs::create_dir(&xdg).unwrap();
    std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
    let name = format!("ipcscope-999999-r{}-shm", std::process::id());
    let obj = f.shm_object(&name, VICTIM, 0o600);
    let out = f.run_as(0, &["clean"], Some(&xdg));
    let stdout = text(&out.stdout);
    assert!(obj.exists(), "root's clean removed a dead run's object owned by uid {VICTIM}:\n{stdout}");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains(&format!("left shm /{name}: owned by uid {VICTIM}")), "{stdout}");
}

#[test]
fn clean_reports_only_what_it_really_removed() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    let mut f = Fixture::new("report");
    let tag = std::process::id();
    // In sticky /dev/shm the victim cannot remove the attacker's object.
    let theirs = format!("ipcscope-999999-a{tag}-shm");
    let theirs_obj = f.shm_object(&theirs, ATTACKER, 0o666);
    let mine = format!("ipcscope-999999-v{tag}-shm");
    let mine_obj = f.shm_object(&mine, VICTIM, 0o600);
    let out = f.run_as(VICTIM, &["clean"], None);
    let stdout = text(&out.stdout);
    assert!(theirs_obj.exists());
    assert!(!stdout.contains(&format!("removed shm /{theirs}")), "reported a removal that did not happen:\n{stdout}");
    assert!(stdout.contains(&format!("left shm /{theirs}: owned by uid {ATTACKER}")), "{stdout}");
    assert!(!mine_obj.exists(), "the victim's own dead object was left:\n{stdout}");
    assert!(stdout.contains(&format!("removed shm /{mine}")), "{stdout}");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Removes message queues on drop (they outlive any mount of the mqueue fs).
struct Queues(Vec<String>);

impl Drop for Queues {
    fn drop(&mut self) {
        for q in &self.0 {
            let _ = nix::mqueue::mq_unlink(format!("/{q}").as_str());
        }
    }
}

#[test]
fn dead_runs_queues_are_swept_only_if_ours() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    let f = Fixture::new("mq");
    let tag = std::process::id();
    let (mine, theirs) = (format!("ipcscope-999999-v{tag}-q"), format!("ipcscope-999999-a{tag}-q"));
    let _queues = Queues(vec![mine.clone(), theirs.clone()]);
    let root_xdg = f.root.join("root-xdg");
    std::fs::create_dir(&root_xdg).unwrap();
    std::fs::set_permissions(&root_xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The mqueue fs is listed on /dev/mqueue, which this machine may not
    // mount: a private mount namespace with its own /dev provides it.
    let in_ns = |uid: u32, script: &str| -> Output {
        let who = if uid == 0 { String::new() } else { format!("setpriv --reuid={uid} --regid={uid} --clear-groups ") };
        let sh = format!(
            "mount -t tmpfs -o mode=0755 none /dev && mkdir /dev/mqueue && mount -t mqueue none /dev/mqueue && \
             {script} && exec /usr/bin/timeout 60 {who}{} clean",
            f.exe.display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private", "sh", "-c", &sh]).env_clear().env("PATH", "/usr/bin:/bin");
        cmd.current_dir(&f.root).env("HOME", if uid == VICTIM { &f.home } else { &f.root });
        if uid == 0 {
            cmd.env("XDG_RUNTIME_DIR", &root_xdg);
        }
        cmd.output().expect("unshare (util-linux)")
    };
    let plant = format!(
        "touch /dev/mqueue/{mine} /dev/mqueue/{theirs} && chown {VICTIM} /dev/mqueue/{mine} && \
         chown {ATTACKER} /dev/mqueue/{theirs} && chmod 0666 /dev/mqueue/{theirs}"
    );
    let exists = |q: &str| -> bool {
        let flags = nix::mqueue::MQ_OFlag::O_RDONLY | nix::mqueue::MQ_OFlag::O_NONBLOCK;
        match nix::mqueue::mq_open(format!("/{q}").as_str(), flags, nix::sys::stat::Mode::empty(), None) {
            Ok(m) => {
                let _ = nix::mqueue::mq_close(m);
                true
            }
            Err(_) => false,
        }
    };
    // Root leaves the victim's queue and the attacker's alone.
    let out = in_ns(0, &plant);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(exists(&mine) && exists(&theirs), "root's clean removed another user's queue:\n{stdout}");
    assert!(stdout.contains(&format!("left mq /{mine}: owned by uid {VICTIM}")), "{stdout}");
    // The victim removes its own queue and reports the attacker's as left.
    let out = in_ns(VICTIM, "true");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!exists(&mine), "the victim's own dead queue was left:\n{stdout}");
    assert!(stdout.contains(&format!("removed mq /{mine}")), "{stdout}");
    assert!(exists(&theirs), "the attacker's queue went");
    assert!(stdout.contains(&format!("left mq /{theirs}: owned by uid {ATTACKER}")), "{stdout}");
    assert!(!stdout.contains(&format!("removed mq /{theirs}")), "{stdout}");
}

/// A base of ours that others can read but not write (made under a loose
/// umask, or by an older version) holds nothing planted: it is made 0700
/// again and used.
#[test]
fn a_base_of_ours_others_cannot_write_is_made_private_again() {
    if !is_root() {
        eprintln!("skipped: needs root to run as two users");
        return;
    }
    let f = Fixture::new("loose");
    let base = victim_base();
    let run = base.join("999999");
    f.victim_dir(&run);
    f.victim_file(&run.join("objects"), "");
    chown(&base, Some(VICTIM), Some(VICTIM)).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = f.run_as(VICTIM, &["clean"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed run 999999"), "{}", text(&out.stdout));
    let mode = std::fs::symlink_metadata(&base).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "the base was not made private again");
    assert!(f.precious().exists());
}
