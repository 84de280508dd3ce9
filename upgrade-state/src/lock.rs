//! The run lock: one mutating run at a time, and who holds it.
//!
//! An exclusive `flock(2)` on the lock file (through fd-lock). The holder
//! writes its pid, host, user, command and start time into the file, so a
//! refused process can say who holds it. The kernel releases the lock when
//! the holder's file is closed, which includes the holder dying by any
//! signal: there are no stale locks to guess about, and the details left in
//! the file by a dead holder are simply overwritten by the next one.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, FILE_MODE, IoError, io_err};

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderInfo {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// User name.
    pub user: String,
    /// Command line.
    pub command: Vec<String>,
    /// When it took the lock.
    pub since: Timestamp,
}

impl HolderInfo {
    /// This process, now.
    pub fn current() -> Self {
        HolderInfo {
            pid: std::process::id(),
            host: crate::sys::host_name(),
            user: crate::sys::user_name(),
            command: std::env::args().collect(),
            since: Timestamp::now(),
        }
    }
}

impl std::fmt::Display for HolderInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} (user {}) since {}, running `{}`",
            self.pid,
            self.host,
            self.user,
            self.since.round(jiff::Unit::Second).unwrap_or(self.since),
            self.command.join(" ")
        )
    }
}

fn describe(holder: Option<&HolderInfo>) -> String {
    holder.map_or_else(
        || "a process that has not written its details yet".to_owned(),
        ToString::to_string,
    )
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds it (fail-fast mode).
    #[error(
        "another obs-upgrade run holds the lock {}: {}; wait for it to finish, or ask to wait for \
            the lock (the CLI's --wait-lock SECONDS)",
        path.display(), describe(holder.as_deref())
    )]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder, when its details could be read.
        holder: Option<Box<HolderInfo>>,
    },
    /// Still held when the wait ran out.
    #[error(
        "gave up after {} s waiting for the lock {} held by {}; is another run stuck? wait longer \
            with a larger --wait-lock",
        waited.as_secs(), path.display(), describe(holder.as_deref())
    )]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// How long it waited.
        waited: Duration,
        /// The holder, when its details could be read.
        holder: Option<Box<HolderInfo>>,
    },
    /// The lock file could not be used.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A held run lock; dropping it releases the lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard {
    // The write guard was forgotten: the lock lives as long as this file is open.
    _lock: fd_lock::RwLock<File>,
    // A duplicate of the same open file, to clear the details on release.
    dup: File,
    path: PathBuf,
    holder: HolderInfo,
}

impl LockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The details written for others to read.
    pub fn holder(&self) -> &HolderInfo {
        &self.holder
    }
}

impl upgrade_core::ports::RunLock for LockGuard {
    fn holder(&self) -> String {
        self.holder.to_string()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Clear the details before the kernel releases the lock on close.
        let _ = self.dup.set_len(0);
    }
}

/// Whether the lock is held, without taking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Someone does.
    Held(Option<HolderInfo>),
}

/// The run lock at a path (`/var/lib/obs-upgrade/lock`).
#[derive(Debug, Clone)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// The lock at `path`; its directory is created (0700) when first taken.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunLock { path: path.into() }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock now or fails, naming the holder.
    pub fn try_acquire(&self, holder: &HolderInfo) -> Result<LockGuard, Error> {
        match self.attempt(holder)? {
            Ok(guard) => Ok(guard),
            Err(()) => Err(Error::Held {
                path: self.path.clone(),
                holder: read_holder(&self.path).map(Box::new),
            }),
        }
    }

    /// Takes the lock, waiting up to `timeout` for the holder to finish.
    pub fn acquire_timeout(
        &self,
        holder: &HolderInfo,
        timeout: Duration,
    ) -> Result<LockGuard, Error> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            if let Ok(guard) = self.attempt(holder)? {
                return Ok(guard);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Timeout {
                    path: self.path.clone(),
                    waited,
                    holder: read_holder(&self.path).map(Box::new),
                });
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(waited)));
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Whether the lock is held, and by whom, without taking it.
    pub fn probe(&self) -> Result<LockState, Error> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockState::Free),
            Err(e) => return Err(io_err("cannot open lock file", &self.path)(e).into()),
        };
        let lock = fd_lock::RwLock::new(file);
        match lock.try_read() {
            Ok(_shared) => Ok(LockState::Free),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Ok(LockState::Held(read_holder(&self.path)))
            }
            Err(e) => Err(io_err("cannot probe lock file", &self.path)(e).into()),
        }
    }

    /// One attempt: `Ok(Err(()))` when someone else holds it.
    fn attempt(&self, holder: &HolderInfo) -> Result<Result<LockGuard, ()>, Error> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&self.path)
            .map_err(io_err("cannot open lock file", &self.path))?;
        let dup = file
            .try_clone()
            .map_err(io_err("cannot open lock file", &self.path))?;
        let mut lock = fd_lock::RwLock::new(file);
        match lock.try_write() {
            // Keep the lock past the guard: it lives until the file is closed.
            Ok(guard) => std::mem::forget(guard),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Err(())),
            Err(e) => return Err(io_err("cannot lock", &self.path)(e).into()),
        }
        let mut guard = LockGuard {
            _lock: lock,
            dup,
            path: self.path.clone(),
            holder: holder.clone(),
        };
        let details = serde_json::to_vec(holder).expect("holder details encode");
        (|| {
            guard.dup.set_len(0)?;
            guard.dup.seek(SeekFrom::Start(0))?;
            // No fsync: the details only inform; after a host crash there is no lock to describe.
            guard.dup.write_all(&details)
        })()
        .map_err(io_err("cannot write holder details to", &self.path))?;
        Ok(Ok(guard))
    }
}

/// Reads the holder's details; a holder that has just taken the lock may
/// not have written them yet, so a few short retries are made.
pub fn read_holder(path: &Path) -> Option<HolderInfo> {
    for _ in 0..20 {
        let mut text = String::new();
        if File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .is_ok()
            && let Ok(h) = serde_json::from_str(&text)
        {
            return Some(h);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_is_refused_with_details_then_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::new(dir.path().join("state/lock"));
        assert_eq!(lock.probe().unwrap(), LockState::Free);
        let me = HolderInfo::current();
        let guard = lock.try_acquire(&me).unwrap();
        // flock locks belong to the open file description: a second open in
        // the same process contends like another process would.
        let err = lock.try_acquire(&me).unwrap_err();
        match &err {
            Error::Held {
                holder: Some(h), ..
            } => assert_eq!(**h, me),
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", me.pid)) && msg.contains("--wait-lock"),
            "{msg}"
        );
        assert_eq!(lock.probe().unwrap(), LockState::Held(Some(me.clone())));
        let t = Instant::now();
        let err = lock
            .acquire_timeout(&me, Duration::from_millis(100))
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(t.elapsed() >= Duration::from_millis(100));
        drop(guard);
        assert_eq!(lock.probe().unwrap(), LockState::Free);
        let _again = lock.try_acquire(&me).unwrap();
    }

    #[test]
    fn lock_file_and_dir_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/obs-upgrade/lock");
        let _g = RunLock::new(&path)
            .try_acquire(&HolderInfo::current())
            .unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
}
