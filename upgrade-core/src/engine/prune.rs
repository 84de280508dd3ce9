//! Pruning the store: old versions go, the current and last known-good stay.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::Stack;
use crate::ports::{ArtifactStore, PortError, RunLock};
use crate::version::Version;

/// What `prune` removed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Removed versions by component.
    pub removed: BTreeMap<String, Vec<Version>>,
    /// Kept versions by component.
    pub kept: BTreeMap<String, Vec<Version>>,
}

/// Keeps the newest `keep` versions of each component, and always the
/// current one, the last known-good one, and those `protected` names (held
/// versions, what an unfinished run may roll back to). A dry run removes
/// nothing.
pub fn prune(
    stack: &Stack,
    store: &dyn ArtifactStore,
    keep: usize,
    protected: &BTreeSet<(String, Version)>,
    dry_run: bool,
    _lock: &dyn RunLock,
) -> Result<PruneReport, PortError> {
    let mut report = PruneReport::default();
    for name in stack.components.keys() {
        let versions = store.versions(name)?;
        let current = store.current(name)?;
        let good = store.last_good(name)?;
        let n = versions.len();
        for (i, v) in versions.into_iter().enumerate() {
            let protected = current.as_ref() == Some(&v)
                || good.as_ref() == Some(&v)
                || i + keep >= n
                || protected.contains(&(name.clone(), v.clone()));
            if protected {
                report.kept.entry(name.clone()).or_default().push(v);
            } else {
                if !dry_run {
                    store.remove(name, &v)?;
                }
                report.removed.entry(name.clone()).or_default().push(v);
            }
        }
    }
    Ok(report)
}
