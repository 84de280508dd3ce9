//! The history log: append-only JSON lines, one fsync per record, rotated
//! by size. A line torn by a crash is skipped with a warning; reading never
//! stops at it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;
use upgrade_core::journal::{HistoryRecord, Outcome, RunStatus};

use crate::fsutil::{self, IoError, io_err};

/// Default size at which the log is rotated.
pub const DEFAULT_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Default number of rotated files kept.
pub const DEFAULT_KEEP: usize = 5;

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedLine {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Records read, oldest first, and the lines skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRead {
    /// The records.
    pub records: Vec<HistoryRecord>,
    /// Lines that were torn or damaged.
    pub skipped: Vec<SkippedLine>,
}

/// A filter over history.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only records about this component (and the runs that touched it).
    pub component: Option<String>,
    /// Only records at or after this time.
    pub since: Option<Timestamp>,
    /// Only records before this time.
    pub until: Option<Timestamp>,
    /// Only component records with this outcome.
    pub outcome: Option<Outcome>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

/// Per-component figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ComponentStats {
    /// Component transactions recorded (nothing-to-do and skips excluded).
    pub attempts: u64,
    /// Upgraded.
    pub upgraded: u64,
    /// Failed before touching the service.
    pub failed: u64,
    /// Rolled back by itself after a failed verification.
    pub rolled_back: u64,
    /// Moved back by an operator's rollback (not an upgrade).
    #[serde(default)]
    pub reverted: u64,
    /// Mean duration of its transactions, in seconds.
    pub mean_duration_secs: f64,
}

/// Figures over the whole history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Runs recorded.
    pub runs: u64,
    /// Runs that completed.
    pub completed: u64,
    /// `completed / runs` (0 when there are none).
    pub success_rate: f64,
    /// Mean run duration in seconds.
    pub mean_duration_secs: f64,
    /// By component.
    pub components: BTreeMap<String, ComponentStats>,
}

/// The history log in a state directory: `history.jsonl`, `history.jsonl.1`, ….
#[derive(Debug, Clone)]
pub struct History {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
}

/// Why history could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A record could not be encoded (a bug).
    #[error("cannot encode a history record: {0}")]
    Encode(#[source] serde_json::Error),
}

impl History {
    /// The log in `dir` (created with mode 0700), rotated at the default size.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        fsutil::create_dir_all(dir)?;
        Ok(History {
            path: dir.join("history.jsonl"),
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
        })
    }

    /// Rotates at `max_bytes`, keeping `keep` older files.
    #[must_use]
    pub fn with_rotation(mut self, max_bytes: u64, keep: usize) -> Self {
        self.max_bytes = max_bytes;
        self.keep = keep;
        self
    }

    /// The live file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Appends one record durably (write, then fsync). Call it while holding
    /// the run lock: rotation assumes a single writer.
    pub fn append(&self, record: &HistoryRecord) -> Result<(), Error> {
        let mut line = serde_json::to_vec(record).map_err(Error::Encode)?;
        line.push(b'\n');
        let size = fs::metadata(&self.path).map_or(0, |m| m.len());
        if self.keep > 0 && size > 0 && size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let mut f = fsutil::open_append(&self.path)?;
        // A crash mid-append leaves a line without its newline: end it, so the
        // new record does not glue onto the torn one.
        let len = f
            .metadata()
            .map_err(io_err("cannot stat", &self.path))?
            .len();
        if len > 0 {
            let mut last = [0u8; 1];
            let mut r = File::open(&self.path).map_err(io_err("cannot read", &self.path))?;
            r.seek(SeekFrom::Start(len - 1))
                .and_then(|_| r.read_exact(&mut last))
                .map_err(io_err("cannot read", &self.path))?;
            if last[0] != b'\n' {
                line.insert(0, b'\n');
            }
        }
        f.write_all(&line)
            .map_err(io_err("cannot append to", &self.path))?;
        f.sync_data().map_err(io_err("cannot sync", &self.path))?;
        Ok(())
    }

    fn rotate(&self) -> Result<(), Error> {
        let _ = fs::remove_file(self.rotated(self.keep));
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                fs::rename(&from, self.rotated(n + 1)).map_err(io_err("cannot rotate", &from))?;
            }
        }
        fs::rename(&self.path, self.rotated(1)).map_err(io_err("cannot rotate", &self.path))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fsutil::sync_dir(dir)?;
        Ok(())
    }

    /// Every record, oldest first, across rotated files.
    pub fn read_all(&self) -> Result<HistoryRead, Error> {
        let mut out = HistoryRead::default();
        let mut files: Vec<PathBuf> = (1..=self.keep).rev().map(|n| self.rotated(n)).collect();
        files.push(self.path.clone());
        for file in files {
            let f = match File::open(&file) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("cannot read", &file)(e).into()),
            };
            for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
                let line = line.map_err(io_err("cannot read", &file))?;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<HistoryRecord>(&line) {
                    Ok(r) => out.records.push(r),
                    Err(e) => {
                        log::warn!(
                            "skipping damaged history line {}:{}: {e}",
                            file.display(),
                            i + 1
                        );
                        out.skipped.push(SkippedLine {
                            file: file.clone(),
                            line: i + 1,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records matching `q`, oldest first (the newest `limit` of them).
    pub fn query(&self, q: &Query) -> Result<Vec<HistoryRecord>, Error> {
        let all = self.read_all()?.records;
        let runs_touching: Option<std::collections::BTreeSet<String>> =
            q.component.as_ref().map(|c| {
                all.iter()
                    .filter_map(|r| match r {
                        HistoryRecord::Component {
                            run_id, component, ..
                        } if component == c => Some(run_id.clone()),
                        _ => None,
                    })
                    .collect()
            });
        let mut out: Vec<HistoryRecord> = all
            .into_iter()
            .filter(|r| q.since.is_none_or(|s| r.at() >= s) && q.until.is_none_or(|u| r.at() < u))
            .filter(|r| match (r, &q.component) {
                (_, None) => true,
                (HistoryRecord::Component { component, .. }, Some(c)) => component == c,
                (_, Some(_)) => runs_touching
                    .as_ref()
                    .is_some_and(|ids| ids.contains(r.run_id())),
            })
            .filter(|r| match (r, q.outcome) {
                (_, None) => true,
                (HistoryRecord::Component { outcome, .. }, Some(o)) => *outcome == o,
                _ => false,
            })
            .collect();
        if let Some(limit) = q.limit {
            let skip = out.len().saturating_sub(limit);
            out.drain(..skip);
        }
        Ok(out)
    }

    /// Success rate, mean durations and rollbacks per component.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        let mut run_secs = 0.0;
        let mut comp_secs: BTreeMap<String, f64> = BTreeMap::new();
        for r in self.read_all()?.records {
            match r {
                HistoryRecord::Run {
                    started_at,
                    finished_at,
                    status,
                    ..
                } => {
                    s.runs += 1;
                    if status == RunStatus::Completed {
                        s.completed += 1;
                    }
                    run_secs += (finished_at - started_at)
                        .total(jiff::Unit::Second)
                        .unwrap_or(0.0);
                }
                HistoryRecord::Component {
                    component,
                    outcome,
                    started_at,
                    finished_at,
                    ..
                } => {
                    if matches!(outcome, Outcome::NothingToDo | Outcome::Skipped) {
                        continue;
                    }
                    let c = s.components.entry(component.clone()).or_default();
                    c.attempts += 1;
                    match outcome {
                        Outcome::Upgraded => c.upgraded += 1,
                        Outcome::Failed => c.failed += 1,
                        Outcome::RolledBack => c.rolled_back += 1,
                        Outcome::Reverted => c.reverted += 1,
                        Outcome::NothingToDo | Outcome::Skipped => {}
                    }
                    *comp_secs.entry(component).or_default() += (finished_at - started_at)
                        .total(jiff::Unit::Second)
                        .unwrap_or(0.0);
                }
                HistoryRecord::NotificationFailed { .. } => {}
            }
        }
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        {
            if s.runs > 0 {
                s.success_rate = s.completed as f64 / s.runs as f64;
                s.mean_duration_secs = run_secs / s.runs as f64;
            }
            for (name, c) in &mut s.components {
                c.mean_duration_secs = comp_secs[name] / c.attempts as f64;
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn comp(run: &str, name: &str, outcome: Outcome, start: i64, secs: i64) -> HistoryRecord {
        HistoryRecord::Component {
            run_id: run.into(),
            component: name.into(),
            from: None,
            to: None,
            outcome,
            started_at: ts(start),
            finished_at: ts(start + secs),
            error: None,
        }
    }

    fn run(id: &str, status: RunStatus, start: i64, secs: i64) -> HistoryRecord {
        HistoryRecord::Run {
            run_id: id.into(),
            started_at: ts(start),
            finished_at: ts(start + secs),
            status,
            mode: "standard".into(),
            environment: None,
            host: "h".into(),
            user: "root".into(),
            command: vec![],
            summary: String::new(),
        }
    }

    #[test]
    fn append_query_stats() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        h.append(&comp("r1", "prometheus", Outcome::Upgraded, 0, 10))
            .unwrap();
        h.append(&comp("r1", "node_exporter", Outcome::Upgraded, 10, 2))
            .unwrap();
        h.append(&run("r1", RunStatus::Completed, 0, 20)).unwrap();
        h.append(&comp("r2", "prometheus", Outcome::RolledBack, 100, 30))
            .unwrap();
        h.append(&run("r2", RunStatus::RolledBack, 100, 40))
            .unwrap();

        let q = |q: Query| h.query(&q).unwrap();
        assert_eq!(
            q(Query {
                component: Some("node_exporter".into()),
                ..Query::default()
            })
            .len(),
            2,
            "its record and its run"
        );
        assert_eq!(
            q(Query {
                outcome: Some(Outcome::RolledBack),
                ..Query::default()
            })
            .len(),
            1
        );
        assert_eq!(
            q(Query {
                since: Some(ts(100)),
                ..Query::default()
            })
            .len(),
            2
        );
        assert_eq!(
            q(Query {
                until: Some(ts(100)),
                ..Query::default()
            })
            .len(),
            3
        );
        let last = q(Query {
            limit: Some(1),
            ..Query::default()
        });
        assert_eq!(last, vec![run("r2", RunStatus::RolledBack, 100, 40)]);

        let s = h.stats().unwrap();
        assert_eq!((s.runs, s.completed), (2, 1));
        assert!((s.success_rate - 0.5).abs() < 1e-9);
        assert!((s.mean_duration_secs - 30.0).abs() < 1e-9);
        let p = &s.components["prometheus"];
        assert_eq!((p.attempts, p.upgraded, p.rolled_back), (2, 1, 1));
        assert!((p.mean_duration_secs - 20.0).abs() < 1e-9);
    }

    #[test]
    fn torn_line_is_skipped_and_the_next_append_survives() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        h.append(&comp("r1", "loki", Outcome::Upgraded, 0, 1))
            .unwrap();
        // A crash in the middle of an append.
        let mut f = fsutil::open_append(h.path()).unwrap();
        f.write_all(b"{\"record\":\"component\",\"run_id\":\"r2\",\"comp")
            .unwrap();
        drop(f);
        h.append(&comp("r3", "loki", Outcome::Upgraded, 5, 1))
            .unwrap();
        let read = h.read_all().unwrap();
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.records[1].run_id(), "r3");
        assert_eq!(read.skipped.len(), 1);
        assert_eq!(read.skipped[0].line, 2);
    }

    #[test]
    fn rotation_keeps_n_files_and_reads_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap().with_rotation(400, 2);
        for i in 0..20 {
            h.append(&comp(&format!("r{i:02}"), "loki", Outcome::Upgraded, i, 1))
                .unwrap();
        }
        assert!(h.rotated(1).exists() && h.rotated(2).exists() && !h.rotated(3).exists());
        let all = h.read_all().unwrap().records;
        assert!(all.len() < 20, "oldest records rotated away");
        let ids: Vec<&str> = all.iter().map(HistoryRecord::run_id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "oldest first across files");
        assert_eq!(*ids.last().unwrap(), "r19");
        for p in [h.path().to_owned(), h.rotated(1), h.rotated(2)] {
            assert!(fs::metadata(&p).unwrap().len() <= 400, "{}", p.display());
        }
    }
}
