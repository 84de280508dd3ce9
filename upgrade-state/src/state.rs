//! The state file: the current or last run, written atomically, with the
//! previous good copy kept beside it, a schema version and migrations.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use upgrade_core::journal::RunRecord;

use crate::fsutil::{self, IoError, io_err};

/// The schema this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The command that sets a damaged state file aside.
pub const RESET_COMMAND: &str = "obs-upgrade state reset";

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The file is not JSON, or not a schema this build knows.
    #[error(
        "state file {} is damaged ({reason}); {}",
        path.display(),
        match good_copy {
            Some(p) => format!("the previous good copy is {}; run `{RESET_COMMAND}` to set the \
                damaged file aside and continue from the good copy", p.display()),
            None => format!("there is no good copy; run `{RESET_COMMAND}` to set the damaged file \
                aside and start with an empty journal"),
        }
    )]
    Damaged {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The previous copy, when it reads cleanly.
        good_copy: Option<PathBuf>,
    },
    /// Written by a newer obs-upgrade.
    #[error("state file {} has schema version {found}, newer than the {SCHEMA_VERSION} this \
        obs-upgrade understands; upgrade obs-upgrade itself", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u64,
    },
    /// The record could not be encoded (a bug).
    #[error("cannot encode the run record: {0}")]
    Encode(#[source] serde_json::Error),
}

#[derive(Serialize, Deserialize)]
struct FileV1 {
    schema_version: u32,
    run: Option<RunRecord>,
}

/// What [`StateStore::reset_damaged`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetOutcome {
    /// Where the damaged file now is.
    pub set_aside: Option<PathBuf>,
    /// Whether the good copy was restored as the state file.
    pub restored_good_copy: bool,
}

/// The state file `state.json` in the state directory, and `state.json.prev`.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
    prev: PathBuf,
}

impl StateStore {
    /// The store in `dir` (created with mode 0700 if missing).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fsutil::create_dir_all(dir)?;
        Ok(StateStore {
            path: dir.join("state.json"),
            prev: dir.join("state.json.prev"),
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The previous good copy.
    pub fn prev_path(&self) -> &Path {
        &self.prev
    }

    /// The current or last run; `None` when there is none yet.
    pub fn load(&self) -> Result<Option<RunRecord>, Error> {
        match read(&self.path)? {
            None => Ok(None),
            Some(Ok(run)) => Ok(run),
            Some(Err(Parse::TooNew(found))) => Err(Error::TooNew {
                path: self.path.clone(),
                found,
            }),
            Some(Err(Parse::Damaged(reason))) => {
                let good_copy =
                    matches!(read(&self.prev), Ok(Some(Ok(_)))).then(|| self.prev.clone());
                Err(Error::Damaged {
                    path: self.path.clone(),
                    reason,
                    good_copy,
                })
            }
        }
    }

    /// Saves the run atomically; the file it replaces becomes `state.json.prev`.
    pub fn save(&self, run: &RunRecord) -> Result<(), Error> {
        let bytes = encode(run)?;
        fsutil::atomic_write(&self.path, &bytes, Some(&self.prev))?;
        Ok(())
    }

    /// Sets a damaged state file aside (`state.json.damaged.<unix time>`) and,
    /// when the previous copy reads cleanly, restores it.
    pub fn reset_damaged(&self) -> Result<ResetOutcome, Error> {
        let mut outcome = ResetOutcome {
            set_aside: self.set_aside("damaged")?,
            restored_good_copy: false,
        };
        if let Ok(Some(Ok(run))) = read(&self.prev) {
            let bytes = match &run {
                Some(r) => encode(r)?,
                None => serde_json::to_vec_pretty(&FileV1 {
                    schema_version: SCHEMA_VERSION,
                    run: None,
                })
                .map_err(Error::Encode)?,
            };
            fsutil::atomic_write(&self.path, &bytes, None)?;
            outcome.restored_good_copy = true;
        }
        fsutil::sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok(outcome)
    }

    /// Sets the state file aside (`state.json.<what>.<unix time>`), whatever
    /// it holds: the journal then starts empty. `None`: there was none.
    pub fn set_aside(&self, what: &str) -> Result<Option<PathBuf>, Error> {
        if !self.path.exists() {
            return Ok(None);
        }
        let stamp = jiff::Timestamp::now().as_second();
        let aside = self
            .path
            .with_file_name(format!("state.json.{what}.{stamp}"));
        fs::rename(&self.path, &aside).map_err(io_err("cannot set aside", &self.path))?;
        fsutil::sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok(Some(aside))
    }

    /// Removes temp files left by a writer that was killed. Call it only
    /// while holding the run lock: no one else writes then.
    pub fn remove_stale_temp_files(&self) -> Result<usize, Error> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut removed = 0;
        for entry in fs::read_dir(dir).map_err(io_err("cannot list", dir))? {
            let entry = entry.map_err(io_err("cannot list", dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".state.json.tmp.") || name.starts_with(".state.json.prev.tmp.") {
                fs::remove_file(entry.path()).map_err(io_err("cannot remove", &entry.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn encode(run: &RunRecord) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(&serde_json::json!({ "schema_version": SCHEMA_VERSION, "run": run }))
        .map_err(Error::Encode)
}

enum Parse {
    Damaged(String),
    TooNew(u64),
}

/// `None`: no file. `Some(Ok(run))`: a readable file (run may be `None`).
fn read(path: &Path) -> Result<Option<Result<Option<RunRecord>, Parse>>, Error> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("cannot read", path)(e).into()),
    };
    Ok(Some(parse(&bytes)))
}

fn parse(bytes: &[u8]) -> Result<Option<RunRecord>, Parse> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Parse::Damaged(format!("not JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(Parse::Damaged("not a JSON object".into()));
    };
    match obj.get("schema_version").map(serde_json::Value::as_u64) {
        Some(Some(1)) => serde_json::from_value::<FileV1>(value)
            .map(|f| f.run)
            .map_err(|e| Parse::Damaged(format!("schema 1 does not fit: {e}"))),
        Some(Some(n)) if n > u64::from(SCHEMA_VERSION) => Err(Parse::TooNew(n)),
        Some(_) => Err(Parse::Damaged("unknown schema_version".into())),
        // Schema 0: before `schema_version` existed, the file was the bare run record.
        None if obj.contains_key("id") && obj.contains_key("status") => {
            serde_json::from_value::<RunRecord>(value)
                .map(Some)
                .map_err(|e| Parse::Damaged(format!("schema 0 does not fit: {e}")))
        }
        None => Err(Parse::Damaged("unknown schema: no schema_version".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    use upgrade_core::journal::RunStatus;

    pub(crate) fn run(id: &str) -> RunRecord {
        let t = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        RunRecord {
            id: id.into(),
            started_at: t,
            updated_at: t,
            host: "h".into(),
            user: "root".into(),
            command: vec!["obs-upgrade".into(), "apply".into()],
            mode: "standard".into(),
            environment: None,
            status: RunStatus::Planning,
            phases: vec![],
            components: BTreeMap::new(),
            checkpoints: vec![],
            finished_at: None,
        }
    }

    #[test]
    fn save_load_keeps_prev_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        let sdir = dir.path().join("var/lib/obs-upgrade");
        let store = StateStore::open(&sdir).unwrap();
        assert_eq!(store.load().unwrap(), None);
        store.save(&run("a")).unwrap();
        store.save(&run("b")).unwrap();
        assert_eq!(store.load().unwrap().unwrap().id, "b");
        let prev: serde_json::Value =
            serde_json::from_slice(&fs::read(store.prev_path()).unwrap()).unwrap();
        assert_eq!(prev["run"]["id"], "a");
        assert_eq!(prev["schema_version"], 1);
        for (p, mode) in [(&sdir, 0o700), (&store.path, 0o600), (&store.prev, 0o600)] {
            assert_eq!(
                fs::metadata(p).unwrap().permissions().mode() & 0o777,
                mode,
                "{}",
                p.display()
            );
        }
    }

    #[test]
    fn damaged_file_names_itself_the_good_copy_and_the_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store.save(&run("a")).unwrap();
        store.save(&run("b")).unwrap();
        fs::write(
            store.path(),
            b"{\"schema_version\": 1, \"run\": {\"id\": tor",
        )
        .unwrap();
        let err = store.load().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&store.path().display().to_string()), "{msg}");
        assert!(msg.contains("state.json.prev"), "{msg}");
        assert!(msg.contains(RESET_COMMAND), "{msg}");
        let out = store.reset_damaged().unwrap();
        assert!(out.restored_good_copy);
        assert!(out.set_aside.as_ref().unwrap().exists());
        assert_eq!(store.load().unwrap().unwrap().id, "a");
    }

    #[test]
    fn unknown_schema_and_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(store.path(), b"{\"hello\": 1}").unwrap();
        let msg = store.load().unwrap_err().to_string();
        assert!(
            msg.contains("unknown schema") && msg.contains("there is no good copy"),
            "{msg}"
        );
        fs::write(store.path(), b"{\"schema_version\": 7, \"run\": null}").unwrap();
        assert!(matches!(
            store.load().unwrap_err(),
            Error::TooNew { found: 7, .. }
        ));
    }

    #[test]
    fn schema_0_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(store.path(), serde_json::to_vec(&run("old")).unwrap()).unwrap();
        assert_eq!(store.load().unwrap().unwrap().id, "old");
        store.save(&store.load().unwrap().unwrap()).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(v["schema_version"], 1);
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(dir.path().join(".state.json.tmp.999"), b"half").unwrap();
        assert_eq!(store.remove_stale_temp_files().unwrap(), 1);
        assert_eq!(store.remove_stale_temp_files().unwrap(), 0);
    }
}
