//! Failure memory and holds: what the host remembers between runs.
//!
//! A release whose smoke test or verification failed here is never planned
//! again until an operator clears it (`quarantine clear`); a manual rollback
//! holds every component it moved at the version it moved it to, and an
//! operator can hold and release by hand (`hold`, `unhold`).
//!
//! The failures are read from the journal itself: the last run's record
//! says which step of which component failed and why, so a run killed
//! between the failure and the write of `holds.json` loses nothing —
//! read-only commands merge it in memory, the next locked command saves it.

use serde::Serialize;
use upgrade_core::holds::{Hold, Holds, failures_in};
use upgrade_core::ports::RunLock;
use upgrade_core::version::Version;
use upgrade_state::HoldStore;

use crate::Error;
use crate::host::Host;

fn store(host: &Host) -> Result<HoldStore, Error> {
    Ok(HoldStore::open(&host.paths().state_dir)?)
}

/// Saves the last run's failures (call while holding the lock).
pub(super) fn record_failures(host: &Host, _lock: &dyn RunLock) -> Result<(), Error> {
    let Some(run) = host.last_run() else {
        return Ok(());
    };
    let failures = failures_in(&run);
    if failures.is_empty() {
        return Ok(());
    }
    store(host)?.update(|h| {
        if h.recorded_run.as_deref() == Some(run.id.as_str()) {
            return (false, ());
        }
        h.recorded_run = Some(run.id.clone());
        for (name, bad) in failures {
            if h.mark_bad(&name, bad.clone()) {
                log::warn!(
                    "{name} {} failed here; it will not be planned again until \
                     `obs-upgrade quarantine clear {name}`",
                    bad.version
                );
            }
        }
        (true, ())
    })?;
    Ok(())
}

/// Holds each component an operator's rollback moved, at the version it is
/// back at (call while holding the lock).
pub(super) fn hold_reverted(
    host: &Host,
    report: &upgrade_core::engine::RunReport,
    _lock: &dyn RunLock,
) -> Result<(), Error> {
    let moved: Vec<(String, Version)> = report
        .steps
        .iter()
        .filter(|s| s.status == upgrade_core::journal::ComponentStatus::Completed)
        .filter_map(|s| Some((s.component.clone(), s.to.clone()?)))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let by = by();
    store(host)?.update(|h| {
        for (name, version) in moved {
            h.place(
                &name,
                Hold {
                    version,
                    at: jiff::Timestamp::now(),
                    reason: format!("manual rollback in run {}", report.run_id),
                    by: by.clone(),
                },
            );
        }
        (true, ())
    })?;
    Ok(())
}

fn by() -> String {
    format!(
        "{}@{}",
        upgrade_state::sys::user_name(),
        upgrade_state::sys::host_name()
    )
}

/// Holds a component at its installed version until [`unhold`].
pub fn hold(host: &Host, component: &str, reason: Option<&str>) -> Result<Hold, Error> {
    host.check_scope(&upgrade_core::engine::Scope::Component {
        name: component.to_owned(),
    })?;
    let _lock = host.lock()?;
    let (installed, errors) = host.detect();
    let version = match (installed.get(component), errors.get(component)) {
        (Some(v), _) => v.clone(),
        (None, Some(e)) => return Err(Error::Usage(format!("cannot hold {component}: {e}"))),
        (None, None) => {
            return Err(Error::Usage(format!(
                "{component} is not installed; there is nothing to hold"
            )));
        }
    };
    let hold = Hold {
        version,
        at: jiff::Timestamp::now(),
        reason: reason.unwrap_or("held by hand").to_owned(),
        by: by(),
    };
    store(host)?.update(|h| {
        h.place(component, hold.clone());
        (true, ())
    })?;
    Ok(hold)
}

/// Releases a component's hold; `None` when it had none.
pub fn unhold(host: &Host, component: &str) -> Result<Option<Hold>, Error> {
    let _lock = host.lock()?;
    Ok(store(host)?.update(|h| {
        let gone = h.release(component);
        (gone.is_some(), gone)
    })?)
}

/// Forgets that releases of a component failed here (`None`: every one),
/// so they can be planned again. Returns the versions forgotten.
pub fn quarantine_clear(
    host: &Host,
    component: &str,
    version: Option<&Version>,
) -> Result<Vec<Version>, Error> {
    let lock = host.lock()?;
    // The last run's failures first, so that clearing them sticks.
    record_failures(host, &lock)?;
    Ok(store(host)?.update(|h| {
        let gone = h.clear_bad(component, version);
        (!gone.is_empty(), gone)
    })?)
}

/// Holds and failed releases, for `hold list` and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// Everything remembered.
    #[serde(flatten)]
    pub holds: Holds,
}

/// What is held and what failed here.
pub fn memory(host: &Host) -> Result<MemoryReport, Error> {
    Ok(MemoryReport {
        holds: host.holds()?,
    })
}
