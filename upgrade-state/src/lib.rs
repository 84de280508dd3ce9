//! Crash-safe journal, run lock and history for obs-upgrade.
//!
//! What it adds over writing a JSON file and taking a `flock`:
//! - the state file is replaced atomically (temp file in the same directory,
//!   fsync, rename, fsync the directory) and the previous good copy is kept
//!   as `state.json.prev`; a damaged file is refused with a message naming
//!   it, the good copy and `obs-upgrade state reset`;
//! - the run lock tells a refused process who holds it (pid, host, user,
//!   command, since when), fails fast or waits with a timeout, and needs no
//!   stale-lock guessing: the kernel releases it when the holder dies;
//! - the history log is append-only JSON lines, fsynced per record,
//!   rotated by size, and reads past a line torn by a crash.
//!
//! Every directory is created 0700 and every file 0600, with those modes
//! from the start.
//!
//! ```
//! use upgrade_state::{FileJournal, HolderInfo, Paths};
//! use upgrade_core::ports::Journal;
//!
//! let root = tempfile::tempdir()?;
//! let paths = Paths::under(root.path());
//! let _lock = paths.run_lock().try_acquire(&HolderInfo::current())?;
//! let mut journal = FileJournal::open(&paths)?;
//! assert!(journal.load()?.is_none());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! # Limitations
//! - One host, one state directory: the lock is a local `flock`, which is
//!   not reliable on network file systems.
//! - History rotation and stale temp-file cleanup assume a single writer;
//!   call them only while holding the run lock.

#![warn(missing_docs)]

pub mod fsutil;
pub mod history;
pub mod holds;
pub mod lock;
pub mod metrics;
pub mod state;
pub mod sys;

use std::path::{Path, PathBuf};

use upgrade_core::journal::{HistoryRecord, RunRecord};
use upgrade_core::ports::{Journal, PortError};

pub use history::History;
pub use holds::HoldStore;
pub use lock::{HolderInfo, LockGuard, LockState, RunLock};
pub use state::StateStore;
pub use sys::SystemClock;

/// The on-disk layout of the state under a root (`/` on a real host).
#[derive(Debug, Clone)]
pub struct Paths {
    /// `<root>/var/lib/obs-upgrade`.
    pub state_dir: PathBuf,
}

impl Paths {
    /// The layout under `root`.
    pub fn under(root: &Path) -> Self {
        Paths {
            state_dir: root.join("var/lib/obs-upgrade"),
        }
    }

    /// `<state_dir>/lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir.join("lock")
    }

    /// The run lock.
    pub fn run_lock(&self) -> RunLock {
        RunLock::new(self.lock_file())
    }
}

/// The file-backed journal: state file plus history, the engine's
/// [`Journal`] port.
#[derive(Debug, Clone)]
pub struct FileJournal {
    /// The state file.
    pub state: StateStore,
    /// The history log.
    pub history: History,
}

impl FileJournal {
    /// Opens (creating the directory) the journal under `paths`.
    pub fn open(paths: &Paths) -> Result<Self, PortError> {
        Ok(FileJournal {
            state: StateStore::open(&paths.state_dir)?,
            history: History::open(&paths.state_dir)?,
        })
    }
}

impl Journal for FileJournal {
    fn load(&mut self) -> Result<Option<RunRecord>, PortError> {
        Ok(self.state.load()?)
    }

    fn save(&mut self, run: &RunRecord) -> Result<(), PortError> {
        Ok(self.state.save(run)?)
    }

    fn append_history(&mut self, record: &HistoryRecord) -> Result<(), PortError> {
        Ok(self.history.append(record)?)
    }
}

/// Removes run backups (`<state>/backups/<run>/`) older than `max_age`,
/// except `keep_run`'s. Returns the removed directories.
pub fn prune_backups(
    paths: &Paths,
    max_age: std::time::Duration,
    keep_run: Option<&str>,
) -> Result<Vec<PathBuf>, fsutil::IoError> {
    let dir = paths.state_dir.join("backups");
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(removed);
    };
    let now = std::time::SystemTime::now();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if Some(name.as_str()) == keep_run {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > max_age);
        if old {
            std::fs::remove_dir_all(e.path()).map_err(|cause| fsutil::IoError {
                action: "cannot remove",
                path: e.path(),
                cause,
            })?;
            removed.push(e.path());
        }
    }
    Ok(removed)
}
