//! An emulated Mach kernel (`server::run` on a socket in a temporary
//! directory) running in a thread of the test, for tests that drive it
//! with real tasks. Dropping it stops the kernel and removes its directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipcscope::mechanisms::mach::server;

pub struct TestKernel {
    dir: PathBuf,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl TestKernel {
    pub fn start() -> TestKernel {
        let dir = std::env::temp_dir().join(format!(
            "mach-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("kernel.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || server::run(&path, move || stop.load(Ordering::SeqCst)))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(Instant::now() < deadline, "kernel did not bind");
            std::thread::sleep(Duration::from_millis(2));
        }
        TestKernel { dir, path, stop, thread: Some(thread) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("kernel thread").expect("kernel ran cleanly");
        }
    }
}

impl Drop for TestKernel {
    fn drop(&mut self) {
        self.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
