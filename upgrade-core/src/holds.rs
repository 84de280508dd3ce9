//! What the host remembers between runs, beyond the journal: releases that
//! failed verification here (never planned again until an operator clears
//! them) and holds (a component kept at a version, placed by a manual
//! rollback or by hand, until released).
//!
//! Pure data; `upgrade_state::HoldStore` keeps it on disk.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::journal::{RunRecord, StepEvent, TxStep};
use crate::version::Version;

/// The longest reason kept (a reason comes from error text, which may come
/// from upstream): longer ones are cut, so the file stays small.
pub const MAX_REASON: usize = 1024;

/// The most failed releases remembered per component (the oldest go first).
pub const MAX_BAD_PER_COMPONENT: usize = 32;

/// A release that failed verification on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRelease {
    /// The version that failed.
    pub version: Version,
    /// When it failed.
    pub at: Timestamp,
    /// The run it failed in.
    pub run_id: String,
    /// Why (the verification's or the step's error).
    pub reason: String,
}

/// A component kept at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The version it is kept at.
    pub version: Version,
    /// When the hold was placed.
    pub at: Timestamp,
    /// Why (`manual rollback in run …`, or the operator's words).
    pub reason: String,
    /// Who placed it (`user@host`).
    pub by: String,
}

/// Failed releases and holds, by component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holds {
    /// Holds by component.
    #[serde(default)]
    pub holds: BTreeMap<String, Hold>,
    /// Failed releases by component, oldest first.
    #[serde(default)]
    pub bad: BTreeMap<String, Vec<BadRelease>>,
    /// The last run whose failures were recorded here (its journal is not
    /// read for failures again, so a cleared one stays cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_run: Option<String>,
}

/// `text` cut to [`MAX_REASON`] bytes on a character boundary.
pub fn bounded_reason(text: &str) -> String {
    if text.len() <= MAX_REASON {
        return text.to_owned();
    }
    let mut end = MAX_REASON;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl Holds {
    /// The hold on a component, if any.
    pub fn hold(&self, component: &str) -> Option<&Hold> {
        self.holds.get(component)
    }

    /// The failure record of `version` of `component`, if it failed here.
    pub fn bad(&self, component: &str, version: &Version) -> Option<&BadRelease> {
        self.bad
            .get(component)?
            .iter()
            .find(|b| b.version.same_release(version))
    }

    /// Remembers a failed release (once per component and version; the
    /// latest failure's facts win). Returns whether anything changed.
    pub fn mark_bad(&mut self, component: &str, bad: BadRelease) -> bool {
        let bad = BadRelease {
            reason: bounded_reason(&bad.reason),
            ..bad
        };
        let list = self.bad.entry(component.to_owned()).or_default();
        if let Some(b) = list
            .iter_mut()
            .find(|b| b.version.same_release(&bad.version))
        {
            if b.run_id == bad.run_id {
                return false;
            }
            *b = bad;
            return true;
        }
        list.push(bad);
        if list.len() > MAX_BAD_PER_COMPONENT {
            list.remove(0);
        }
        true
    }

    /// Forgets failed releases of a component (`None`: all of them).
    /// Returns the versions forgotten.
    pub fn clear_bad(&mut self, component: &str, version: Option<&Version>) -> Vec<Version> {
        let Some(list) = self.bad.get_mut(component) else {
            return Vec::new();
        };
        let (gone, kept): (Vec<BadRelease>, Vec<BadRelease>) = std::mem::take(list)
            .into_iter()
            .partition(|b| version.is_none_or(|v| b.version.same_release(v)));
        *list = kept;
        if list.is_empty() {
            self.bad.remove(component);
        }
        gone.into_iter().map(|b| b.version).collect()
    }

    /// Places (or moves) a hold. Returns the hold it replaced.
    pub fn place(&mut self, component: &str, hold: Hold) -> Option<Hold> {
        let hold = Hold {
            reason: bounded_reason(&hold.reason),
            ..hold
        };
        self.holds.insert(component.to_owned(), hold)
    }

    /// Releases a hold. Returns it.
    pub fn release(&mut self, component: &str) -> Option<Hold> {
        self.holds.remove(component)
    }

    /// Every version to keep in the store: held versions.
    pub fn held_versions(&self) -> impl Iterator<Item = (&str, &Version)> {
        self.holds.iter().map(|(c, h)| (c.as_str(), &h.version))
    }
}

/// The failed releases a run record shows: components whose smoke test or
/// verification failed (an operator's rollback run shows none).
pub fn failures_in(run: &RunRecord) -> Vec<(String, BadRelease)> {
    if run.mode == "rollback" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (key, c) in &run.components {
        let failed = c.journal.iter().find_map(|e| match (&e.step, &e.event) {
            (TxStep::Smoke | TxStep::Verify, StepEvent::Failed { error }) => Some((e.at, error)),
            _ => None,
        });
        if let Some((at, error)) = failed {
            let name = key.rsplit_once(':').map_or(key.as_str(), |(n, _)| n);
            out.push((
                name.to_owned(),
                BadRelease {
                    version: c.to.clone(),
                    at,
                    run_id: run.id.clone(),
                    reason: error.clone(),
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn bad(version: &str, run: &str) -> BadRelease {
        BadRelease {
            version: v(version),
            at: Timestamp::UNIX_EPOCH,
            run_id: run.into(),
            reason: "x".repeat(5000),
        }
    }

    #[test]
    fn failures_are_remembered_once_bounded_and_cleared() {
        let mut h = Holds::default();
        assert!(h.mark_bad("a", bad("1.2.0", "r1")));
        assert!(!h.mark_bad("a", bad("1.2.0", "r1")), "same run: no change");
        assert!(h.mark_bad("a", bad("v1.2.0", "r2")), "a later failure wins");
        assert_eq!(h.bad["a"].len(), 1);
        assert_eq!(h.bad("a", &v("1.2.0")).unwrap().run_id, "r2");
        assert!(h.bad("a", &v("1.2.0")).unwrap().reason.len() <= MAX_REASON + 3);
        for i in 0..40 {
            h.mark_bad("a", bad(&format!("2.{i}.0"), "r3"));
        }
        assert_eq!(h.bad["a"].len(), MAX_BAD_PER_COMPONENT);
        assert!(h.bad("a", &v("1.2.0")).is_none(), "the oldest went first");
        assert_eq!(h.clear_bad("a", Some(&v("2.39.0"))), [v("2.39.0")]);
        assert_eq!(h.clear_bad("a", None).len(), MAX_BAD_PER_COMPONENT - 1);
        assert!(h.bad.is_empty());
    }

    #[test]
    fn holds_are_placed_moved_and_released() {
        let mut h = Holds::default();
        let hold = |ver: &str| Hold {
            version: v(ver),
            at: Timestamp::UNIX_EPOCH,
            reason: "manual rollback".into(),
            by: "root@h".into(),
        };
        assert!(h.place("a", hold("1.0.0")).is_none());
        assert_eq!(h.place("a", hold("0.9.0")).unwrap().version, v("1.0.0"));
        assert_eq!(h.hold("a").unwrap().version, v("0.9.0"));
        assert_eq!(h.held_versions().count(), 1);
        assert_eq!(h.release("a").unwrap().version, v("0.9.0"));
        assert!(h.release("a").is_none());
    }
}
