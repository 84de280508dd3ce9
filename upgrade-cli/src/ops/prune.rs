//! Retention: old versions and backups go, protected ones stay — by
//! request (`prune`) and by itself after every successful run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use upgrade_core::engine;
use upgrade_core::version::Version;

use crate::Error;
use crate::host::Host;

/// What to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Versions kept per component, besides the current and last known-good
    /// (default: the stack's `retention.versions`).
    pub keep: Option<usize>,
    /// Backups kept this many days (default: `retention.backup_days`).
    pub backup_days: Option<u64>,
    /// Report only; remove nothing.
    pub dry_run: bool,
}

/// What `prune` removed.
#[derive(Debug, Clone, Serialize)]
pub struct PruneOutcome {
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Versions kept per component besides the protected ones.
    pub keep: usize,
    /// Removed (or, in a dry run, removable) versions by component.
    pub removed: BTreeMap<String, Vec<Version>>,
    /// Kept versions by component.
    pub kept: BTreeMap<String, Vec<Version>>,
    /// Backup directories removed.
    pub backups_removed: Vec<PathBuf>,
}

/// Removes old versions and backups (never the current or last known-good).
pub fn prune(host: &Host, opts: &PruneOptions) -> Result<PruneOutcome, Error> {
    let lock = host.lock()?;
    prune_locked(host, opts, &lock)
}

/// Versions pruning never removes besides current and last known-good:
/// held versions, and both ends of every step of an unfinished run.
fn protected(host: &Host) -> Result<BTreeSet<(String, Version)>, Error> {
    let mut keep: BTreeSet<(String, Version)> = host
        .holds()?
        .held_versions()
        .map(|(c, v)| (c.to_owned(), v.clone()))
        .collect();
    if let Some(run) = host
        .last_run()
        .filter(upgrade_core::journal::RunRecord::is_unfinished)
    {
        for (key, c) in &run.components {
            let name = key.rsplit_once(':').map_or(key.as_str(), |(n, _)| n);
            keep.insert((name.to_owned(), c.from.clone()));
            keep.insert((name.to_owned(), c.to.clone()));
        }
    }
    Ok(keep)
}

/// [`prune`] under a lock already held (after a run).
pub(super) fn prune_locked(
    host: &Host,
    opts: &PruneOptions,
    lock: &dyn upgrade_core::ports::RunLock,
) -> Result<PruneOutcome, Error> {
    let retention = host.stack().retention;
    let keep = opts.keep.unwrap_or(retention.versions);
    let backup_days = opts.backup_days.unwrap_or(retention.backup_days);
    let store = host.store();
    let report = engine::prune(
        host.stack(),
        &store,
        keep,
        &protected(host)?,
        opts.dry_run,
        lock,
    )
    .map_err(Error::port("cannot prune the store"))?;
    let last_run = host.last_run().map(|r| r.id);
    let backups_removed = if opts.dry_run {
        Vec::new()
    } else {
        upgrade_state::prune_backups(
            &host.paths(),
            std::time::Duration::from_secs(backup_days.saturating_mul(86_400)),
            last_run.as_deref(),
        )?
    };
    Ok(PruneOutcome {
        dry_run: opts.dry_run,
        keep,
        removed: report.removed,
        kept: report.kept,
        backups_removed,
    })
}
