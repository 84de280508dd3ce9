//! `status`, `history` and `versions`: reading, never changing.

use serde::Serialize;
use upgrade_core::journal::{HistoryRecord, RunRecord};
use upgrade_state::history::{Query, Stats};
use upgrade_state::{History, HolderInfo, LockState, StateStore};

use crate::Error;
use crate::host::Host;

/// Who holds the run lock.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    /// Whether it is held.
    pub held: bool,
    /// The holder's details, once written.
    pub holder: Option<HolderInfo>,
}

/// The current or last run and the lock.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The run record (without the component descriptions the journal keeps
    /// for a resume; the state file has them).
    pub run: Option<RunRecord>,
    /// The lock.
    pub lock: LockReport,
    /// Holds, and releases that failed here.
    pub holds: upgrade_core::holds::Holds,
    /// Security advisories affecting installed versions, as the last check
    /// cached them.
    pub advisories: Vec<upgrade_core::advisory::Finding>,
}

impl StatusReport {
    /// Whether the run was interrupted and nobody is finishing it now.
    pub fn needs_resume(&self) -> bool {
        self.run.as_ref().is_some_and(RunRecord::is_unfinished) && !self.lock.held
    }
}

/// The current or last run, each of its steps, and the lock holder.
pub fn status(host: &Host) -> Result<StatusReport, Error> {
    let paths = host.paths();
    let mut run = StateStore::open(&paths.state_dir)?.load()?;
    for c in run.iter_mut().flat_map(|r| r.components.values_mut()) {
        c.spec = None;
    }
    let lock = match paths.run_lock().probe()? {
        LockState::Free => LockReport {
            held: false,
            holder: None,
        },
        LockState::Held(h) => LockReport {
            held: true,
            holder: h,
        },
    };
    let holds = host.holds()?;
    Ok(StatusReport {
        run,
        lock,
        holds,
        advisories: host.cached_advisories(),
    })
}

/// Which history records.
#[derive(Debug, Clone, Default)]
pub struct HistoryOptions {
    /// Only this component's.
    pub component: Option<String>,
    /// The newest N.
    pub limit: Option<usize>,
}

/// History records, and damaged lines that were skipped.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    /// Newest last.
    pub records: Vec<HistoryRecord>,
    /// `file:line` of lines that could not be read.
    #[serde(skip)]
    pub skipped_lines: Vec<String>,
}

/// Past runs and component outcomes.
pub fn history(host: &Host, opts: &HistoryOptions) -> Result<HistoryReport, Error> {
    let h = History::open(&host.paths().state_dir)?;
    let read = h.read_all()?;
    let skipped_lines = read
        .skipped
        .iter()
        .map(|s| format!("{}:{}", s.file.display(), s.line))
        .collect();
    let records = h.query(&Query {
        component: opts.component.clone(),
        limit: opts.limit,
        ..Query::default()
    })?;
    Ok(HistoryReport {
        records,
        skipped_lines,
    })
}

/// Success rate, mean durations, rollbacks per component.
pub fn history_stats(host: &Host) -> Result<Stats, Error> {
    Ok(History::open(&host.paths().state_dir)?.stats()?)
}

/// One component in the store.
#[derive(Debug, Clone, Serialize)]
pub struct VersionsRow {
    /// The component.
    pub name: String,
    /// Versions in the store, oldest first.
    pub versions: Vec<String>,
    /// The active one.
    pub current: Option<String>,
    /// The last known-good one.
    pub last_good: Option<String>,
    /// How each version in the store was proven genuine when it was
    /// staged, by version.
    pub verification: std::collections::BTreeMap<String, upgrade_core::ports::Proof>,
}

/// The store: versions, current and last known-good of every component.
pub fn versions(host: &Host) -> Result<Vec<VersionsRow>, Error> {
    let store = host.store();
    let port = |name: &str| Error::port(format!("cannot read the store for {name}"));
    let mut rows = Vec::new();
    for name in host.stack().components.keys() {
        let kept = store.versions(name).map_err(|e| port(name)(e.into()))?;
        rows.push(VersionsRow {
            name: name.clone(),
            verification: kept
                .iter()
                .filter_map(|v| Some((v.to_string(), store.proof(name, v)?)))
                .collect(),
            versions: kept.iter().map(ToString::to_string).collect(),
            current: store
                .current(name)
                .map_err(|e| port(name)(e.into()))?
                .map(|v| v.to_string()),
            last_good: store
                .last_good(name)
                .map_err(|e| port(name)(e.into()))?
                .map(|v| v.to_string()),
        });
    }
    Ok(rows)
}
