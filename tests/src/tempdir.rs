//! A temporary directory removed on drop (kept when `PAXOS_TESTS_KEEP` is set, for debugging),
//! or a kept one, such as the nemesis runner's post-mortem folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    /// Whether the directory outlives this value whatever `PAXOS_TESTS_KEEP` says.
    kept: bool,
}

impl TempDir {
    /// Creates a fresh directory under the system's temporary directory, named after `label`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "paxos-tests-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path, kept: false }
    }

    /// Creates `path` (and its parents) as a directory that is never removed: its contents are
    /// what is left to read after a run.
    pub fn kept(path: &Path) -> TempDir {
        std::fs::create_dir_all(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir {
            path: path.to_owned(),
            kept: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if std::env::var_os("PAXOS_TESTS_KEEP").is_some() {
            eprintln!("keeping {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
