//! `holds.json`: releases that failed here and holds, kept between runs.
//!
//! `{ "schema_version": 1, "holds": {…}, "bad": {…} }`, replaced atomically
//! (temp file, fsync, rename, fsync the directory), mode 0600. Read with a
//! size limit; a damaged file is an error naming it and what to do, never
//! silently an empty memory (that would plan a broken release again).
//! Change it only while holding the run lock.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use upgrade_core::holds::Holds;

use crate::fsutil::{self, IoError};

/// The schema this version writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The largest `holds.json` read (the memory is bounded per component, so a
/// larger file is not one this program wrote).
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Why the memory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The file is not what this program writes.
    #[error(
        "{} is damaged ({reason}); move it aside to start with no holds and no failed \
         releases remembered, then hold again what must stay",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct File {
    schema_version: u32,
    #[serde(flatten)]
    holds: Holds,
}

/// The file `holds.json` in the state directory.
#[derive(Debug, Clone)]
pub struct HoldStore {
    path: PathBuf,
}

impl HoldStore {
    /// The store in `dir` (created with mode 0700 if missing).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fsutil::create_dir_all(dir)?;
        Ok(HoldStore {
            path: dir.join("holds.json"),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What is remembered (nothing when there is no file yet).
    pub fn load(&self) -> Result<Holds, Error> {
        let f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Holds::default()),
            Err(e) => return Err(fsutil::io_err("cannot read", &self.path)(e).into()),
        };
        let mut bytes = Vec::new();
        f.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(fsutil::io_err("cannot read", &self.path))?;
        let damaged = |reason: String| Error::Damaged {
            path: self.path.clone(),
            reason,
        };
        if bytes.len() as u64 > MAX_BYTES {
            return Err(damaged(format!("larger than {MAX_BYTES} bytes")));
        }
        let file: File = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if file.schema_version != SCHEMA_VERSION {
            return Err(damaged(format!(
                "schema version {} (this obs-upgrade reads {SCHEMA_VERSION})",
                file.schema_version
            )));
        }
        Ok(file.holds)
    }

    /// Replaces the file atomically.
    pub fn save(&self, holds: &Holds) -> Result<(), Error> {
        let file = File {
            schema_version: SCHEMA_VERSION,
            holds: holds.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("holds encode");
        Ok(fsutil::atomic_write(&self.path, &bytes, None)?)
    }

    /// Loads, changes and saves (only when `change` says it changed something).
    pub fn update<T>(&self, change: impl FnOnce(&mut Holds) -> (bool, T)) -> Result<T, Error> {
        let mut holds = self.load()?;
        let (changed, out) = change(&mut holds);
        if changed {
            self.save(&holds)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upgrade_core::holds::BadRelease;
    use upgrade_core::version::Version;

    #[test]
    fn round_trip_missing_damaged_and_oversized() {
        let dir = tempfile::tempdir().unwrap();
        let store = HoldStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), Holds::default());
        store
            .update(|h| {
                let bad = BadRelease {
                    version: Version::parse("1.2.0").unwrap(),
                    at: jiff::Timestamp::UNIX_EPOCH,
                    run_id: "r1".into(),
                    reason: "unhealthy".into(),
                };
                (h.mark_bad("a", bad), ())
            })
            .unwrap();
        let h = store.load().unwrap();
        assert_eq!(h.bad["a"][0].run_id, "r1");
        std::fs::write(store.path(), "{ not json").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(
            e.contains("is damaged") && e.contains("move it aside"),
            "{e}"
        );
        std::fs::write(
            store.path(),
            vec![b' '; usize::try_from(MAX_BYTES + 10).unwrap()],
        )
        .unwrap();
        assert!(
            store
                .load()
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
    }
}
