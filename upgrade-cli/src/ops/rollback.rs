//! `rollback`: a component, to a version, the previous one, a whole run.

use serde::Serialize;
use upgrade_core::engine::{self, RunReport};
use upgrade_core::journal::{HistoryRecord, Outcome};
use upgrade_core::version::Version;
use upgrade_state::History;

use super::Ui;
use super::read::{VersionsRow, versions};
use super::run::locked_run;
use crate::Error;
use crate::host::Host;

/// What to roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// One component to a version in the store.
    ComponentTo {
        /// The component.
        component: String,
        /// The version.
        version: Version,
    },
    /// One component to the newest version in the store older than its current one.
    ComponentPrevious {
        /// The component.
        component: String,
    },
    /// Every component a past run upgraded, back to where it was before.
    Run {
        /// The run id.
        run_id: String,
    },
    /// The last run that upgraded something.
    LastRun,
}

/// A past run that upgraded something.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Its id.
    pub run_id: String,
    /// When its first upgrade finished (to the second).
    pub finished_at: String,
    /// `component from → to` lines (upgrades, or a manual rollback's moves).
    pub upgraded: Vec<String>,
}

/// What one can go back to.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackList {
    /// The store per component.
    pub components: Vec<VersionsRow>,
    /// Runs that moved something (upgrades, and manual rollbacks, which can be
    /// undone too), newest first.
    pub runs: Vec<RunSummary>,
}

fn history_records(host: &Host) -> Result<Vec<HistoryRecord>, Error> {
    Ok(History::open(&host.paths().state_dir)?.read_all()?.records)
}

/// Runs that moved something (upgrades, and manual rollbacks, which can be
/// undone too), newest first.
fn runs(records: &[HistoryRecord]) -> Vec<RunSummary> {
    let mut out: Vec<RunSummary> = Vec::new();
    for r in records {
        let HistoryRecord::Component {
            run_id,
            component,
            from,
            to,
            outcome: Outcome::Upgraded | Outcome::Reverted,
            finished_at,
            ..
        } = r
        else {
            continue;
        };
        let show = |v: &Option<Version>| v.as_ref().map(ToString::to_string).unwrap_or_default();
        let what = format!("{component} {} → {}", show(from), show(to));
        match out.iter_mut().find(|s| &s.run_id == run_id) {
            Some(s) => s.upgraded.push(what),
            None => out.push(RunSummary {
                run_id: run_id.clone(),
                finished_at: finished_at
                    .round(jiff::Unit::Second)
                    .unwrap_or(*finished_at)
                    .to_string(),
                upgraded: vec![what],
            }),
        }
    }
    out.reverse();
    out
}

/// The versions and runs one can go back to.
pub fn rollback_list(host: &Host) -> Result<RollbackList, Error> {
    Ok(RollbackList {
        components: versions(host)?,
        runs: runs(&history_records(host)?),
    })
}

/// The version `--previous` goes back to: the newest in the store below the
/// current one that did not fail here.
fn previous_version(host: &Host, component: &str) -> Result<Version, Error> {
    host.check_scope(&engine::Scope::Component {
        name: component.to_owned(),
    })?;
    let store = host.store();
    let read = |e: upgrade_fetch::store::Error| {
        Error::port(format!("cannot read the store for {component}"))(e.into())
    };
    let current = store.current(component).map_err(read)?.ok_or_else(|| {
        Error::Engine(engine::Error::Rollback(format!(
            "{component} is not managed by the store yet; nothing to roll back"
        )))
    })?;
    let holds = host.holds()?;
    store
        .versions(component)
        .map_err(read)?
        .into_iter()
        .filter(|v| *v < current && holds.bad(component, v).is_none())
        .max()
        .ok_or_else(|| {
            Error::Engine(engine::Error::Rollback(format!(
                "no version of {component} older than {current} is in the store (versions \
                 that failed here are not gone back to)"
            )))
        })
}

/// Goes back to an earlier version, as a run of its own.
pub fn rollback(host: &Host, target: &RollbackTarget, ui: &dyn Ui) -> Result<RunReport, Error> {
    let stack = host.stack();
    match target {
        RollbackTarget::ComponentTo { component, version } => locked_run(host, ui, |p, o, l| {
            engine::rollback_component(stack, component, version, p, o, l)
        }),
        RollbackTarget::ComponentPrevious { component } => {
            let version = previous_version(host, component)?;
            locked_run(host, ui, |p, o, l| {
                engine::rollback_component(stack, component, &version, p, o, l)
            })
        }
        RollbackTarget::Run { run_id } => {
            let history = history_records(host)?;
            locked_run(host, ui, |p, o, l| {
                engine::rollback_run(stack, run_id, &history, p, o, l)
            })
        }
        RollbackTarget::LastRun => {
            let history = history_records(host)?;
            let run_id = runs(&history)
                .first()
                .map(|r| r.run_id.clone())
                .ok_or_else(|| {
                    Error::Engine(engine::Error::Rollback(
                        "no run has upgraded anything yet".into(),
                    ))
                })?;
            locked_run(host, ui, |p, o, l| {
                engine::rollback_run(stack, &run_id, &history, p, o, l)
            })
        }
    }
}
