//! The journal's data model: the run record, its status machine, each
//! component's step journal, checkpoints, history records, and the pure
//! resume-point function.
//!
//! Split: this module holds the run record and its status machine;
//! `resume` the resume point, `history` the history log's records.
//!
//! Storage lives elsewhere (upgrade-state); the engine only needs these types
//! and the [`crate::ports::Journal`] port.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::version::Version;

mod bounded;
mod history;
mod resume;
#[cfg(test)]
mod tests;

pub use bounded::{MAX_TEXT, bounded};
pub use history::{HistoryRecord, Outcome};
pub use resume::{ResumeAction, resume_plan, resume_point};

/// The state of a whole run.
///
/// ```text
/// IDLE → PLANNING → BACKING_UP → UPGRADING → VALIDATING → COMPLETED
///                       ↑                         │
///                       └──── next component ─────┘
/// UPGRADING / VALIDATING → ROLLING_BACK → ROLLED_BACK (→ BACKING_UP to go on)
/// any active state → FAILED;  COMPLETED / ROLLED_BACK / FAILED → IDLE only by reset
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// No run.
    Idle,
    /// Computing the plan and running preflight.
    Planning,
    /// Backing up a component's files.
    BackingUp,
    /// Staging and switching a component.
    Upgrading,
    /// Health-checking a component.
    Validating,
    /// Every step done.
    Completed,
    /// Undoing a component's switch.
    RollingBack,
    /// A rollback finished; the host is at its old versions.
    RolledBack,
    /// The run stopped on an error it could not undo by itself.
    Failed,
}

impl RunStatus {
    /// Whether a run in this status is still under way (resume would continue it).
    pub fn is_active(self) -> bool {
        !matches!(
            self,
            RunStatus::Idle | RunStatus::Completed | RunStatus::RolledBack | RunStatus::Failed
        )
    }

    /// Whether `self → next` is allowed. Staying in the same status is allowed
    /// (a resumed step records it again). Leaving a finished status for IDLE
    /// is only done by [`RunRecord::reset`].
    pub fn can_become(self, next: RunStatus) -> bool {
        use RunStatus::{
            BackingUp, Completed, Failed, Idle, Planning, RolledBack, RollingBack, Upgrading,
            Validating,
        };
        if self == next {
            return true;
        }
        if next == Failed {
            return self.is_active();
        }
        matches!(
            (self, next),
            (Idle, Planning)
                | (Planning, BackingUp | Completed)
                | (BackingUp, Upgrading)
                | (Upgrading, Validating | RollingBack)
                | (Validating, BackingUp | Completed | RollingBack)
                | (RollingBack, RolledBack)
                | (RolledBack, BackingUp)
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl RunStatus {
    /// The name as written in the state file (`BACKING_UP`).
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Idle => "IDLE",
            RunStatus::Planning => "PLANNING",
            RunStatus::BackingUp => "BACKING_UP",
            RunStatus::Upgrading => "UPGRADING",
            RunStatus::Validating => "VALIDATING",
            RunStatus::Completed => "COMPLETED",
            RunStatus::RollingBack => "ROLLING_BACK",
            RunStatus::RolledBack => "ROLLED_BACK",
            RunStatus::Failed => "FAILED",
        }
    }
}

/// A transition the status machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "run status cannot go from {from} to {to}; a finished run goes back to IDLE only by an \
        explicit reset"
)]
pub struct InvalidTransition {
    /// The current status.
    pub from: RunStatus,
    /// The refused next status.
    pub to: RunStatus,
}

/// One step of the per-component transaction, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStep {
    /// Find the installed (and running) version.
    Detect,
    /// Disk, lock, window, health, compatibility, config check with the new binary.
    Preflight,
    /// Download, verify, extract into the store.
    Stage,
    /// The new binary reports the target version.
    Smoke,
    /// Back up configuration and unit files.
    Backup,
    /// Stop, swap `current`, start.
    Switch,
    /// Health probes within the deadline.
    Verify,
    /// Record success.
    Commit,
    /// Rollback: swap `current` back.
    RollbackSwap,
    /// Rollback: restore the backed-up files.
    RollbackRestore,
    /// Rollback: restart the old version.
    RollbackRestart,
    /// Rollback: verify the old version is healthy.
    RollbackVerify,
}

impl TxStep {
    /// The forward steps in order.
    pub const FORWARD: [TxStep; 8] = [
        TxStep::Detect,
        TxStep::Preflight,
        TxStep::Stage,
        TxStep::Smoke,
        TxStep::Backup,
        TxStep::Switch,
        TxStep::Verify,
        TxStep::Commit,
    ];
    /// The rollback steps in order.
    pub const ROLLBACK: [TxStep; 4] = [
        TxStep::RollbackSwap,
        TxStep::RollbackRestore,
        TxStep::RollbackRestart,
        TxStep::RollbackVerify,
    ];

    /// Whether this is a rollback step.
    pub fn is_rollback(self) -> bool {
        self >= TxStep::RollbackSwap
    }

    /// Whether the host may have changed once this step began (a failure
    /// from here on needs a rollback).
    pub fn changes_service(self) -> bool {
        matches!(self, TxStep::Switch | TxStep::Verify | TxStep::Commit)
    }

    /// The step after this one in its sequence (`None` after the last).
    pub fn next(self) -> Option<TxStep> {
        let seq: &[TxStep] = if self.is_rollback() {
            &Self::ROLLBACK
        } else {
            &Self::FORWARD
        };
        let i = seq.iter().position(|s| *s == self)?;
        seq.get(i + 1).copied()
    }
}

impl fmt::Display for TxStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TxStep::Detect => "detect",
            TxStep::Preflight => "preflight",
            TxStep::Stage => "stage",
            TxStep::Smoke => "smoke",
            TxStep::Backup => "backup",
            TxStep::Switch => "switch",
            TxStep::Verify => "verify",
            TxStep::Commit => "commit",
            TxStep::RollbackSwap => "rollback_swap",
            TxStep::RollbackRestore => "rollback_restore",
            TxStep::RollbackRestart => "rollback_restart",
            TxStep::RollbackVerify => "rollback_verify",
        };
        f.write_str(s)
    }
}

/// What happened at a journal point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StepEvent {
    /// Recorded before the side effect.
    Began,
    /// Recorded after it succeeded, with a short result.
    Done {
        /// What the step found or did.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        result: String,
    },
    /// Recorded when it failed.
    Failed {
        /// The error, as the operator will read it.
        error: String,
    },
}

/// One line of a component's step journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The step.
    pub step: TxStep,
    /// What happened.
    #[serde(flatten)]
    pub event: StepEvent,
    /// When.
    pub at: Timestamp,
}

/// Where a component stands in the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ComponentStatus {
    /// Not started.
    Pending,
    /// Under way.
    InProgress {
        /// The step it is at.
        step: TxStep,
    },
    /// Upgraded and healthy.
    Completed,
    /// Failed before the service was touched, or a rollback failed.
    Failed,
    /// Failed after the switch and rolled back to the old version.
    RolledBack,
    /// Left alone (nothing to do, not approved, outside the scope).
    Skipped,
}

/// A health result kept for the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// Whether every probe passed.
    pub healthy: bool,
    /// Per-probe detail.
    pub detail: Vec<String>,
}

/// Everything the journal keeps about one component in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRecord {
    /// Where it stands.
    #[serde(flatten)]
    pub status: ComponentStatus,
    /// The phase it belongs to.
    pub phase: String,
    /// The version before the run.
    pub from: Version,
    /// The version the run moves it to.
    pub to: Version,
    /// The component as resolved when the run began (units, binaries,
    /// checks): a resume finishes with these facts even when the stack
    /// file changed or dropped the component meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<crate::catalog::ComponentSpec>,
    /// How many times the transaction was started (resume counts).
    pub attempts: u32,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it last changed.
    pub updated_at: Option<Timestamp>,
    /// The step journal, oldest first.
    pub journal: Vec<JournalEntry>,
    /// Where its files were backed up.
    pub backup: Option<String>,
    /// The verified artifact's SHA-256.
    pub artifact_sha256: Option<String>,
    /// How the artifact was proven genuine (pinned digest, signature, API
    /// digest, checksum file, or nothing when allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<crate::ports::Proof>,
    /// The last health result.
    pub health: Option<HealthRecord>,
    /// The last error.
    pub last_error: Option<String>,
    /// Why it was skipped, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Whether its outcome is in the history log (a crash can fall between).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub history_recorded: bool,
}

impl ComponentRecord {
    /// A pending component.
    pub fn pending(phase: &str, from: Version, to: Version) -> Self {
        ComponentRecord {
            status: ComponentStatus::Pending,
            phase: phase.to_owned(),
            from,
            to,
            spec: None,
            attempts: 0,
            started_at: None,
            updated_at: None,
            journal: Vec::new(),
            backup: None,
            artifact_sha256: None,
            proof: None,
            health: None,
            last_error: None,
            skip_reason: None,
            history_recorded: false,
        }
    }

    /// Records a journal point and keeps the status in step with it.
    pub fn record(&mut self, step: TxStep, event: StepEvent, at: Timestamp) {
        if self.started_at.is_none() {
            self.started_at = Some(at);
        }
        self.updated_at = Some(at);
        if let StepEvent::Failed { error } = &event {
            self.last_error = Some(error.clone());
        }
        self.status = match (&event, step) {
            (StepEvent::Done { .. }, TxStep::Commit) => ComponentStatus::Completed,
            (StepEvent::Done { .. }, TxStep::RollbackVerify) => ComponentStatus::RolledBack,
            (StepEvent::Failed { .. }, s) if s.is_rollback() => ComponentStatus::Failed,
            (StepEvent::Failed { .. }, s) if !s.changes_service() => ComponentStatus::Failed,
            _ => ComponentStatus::InProgress { step },
        };
        self.journal.push(JournalEntry { step, event, at });
    }
}

/// The status of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseStatus {
    /// Not started.
    Pending,
    /// Under way.
    InProgress,
    /// Every component done or skipped.
    Completed,
    /// A component failed.
    Failed,
    /// Rolled back as a whole (atomic phase).
    RolledBack,
}

/// A phase of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: PhaseStatus,
    /// Its components, in order.
    pub components: Vec<String>,
}

/// A named point the run can be rolled back to: every component's version then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Its name (`before-run`, `after-phase:exporters`).
    pub name: String,
    /// When it was taken.
    pub at: Timestamp,
    /// Versions by component.
    pub versions: BTreeMap<String, Version>,
}

/// The record of one run: what the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique id (`20261121T053400Z-1a2b`).
    pub id: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The host.
    pub host: String,
    /// The user.
    pub user: String,
    /// The command line.
    pub command: Vec<String>,
    /// `dry-run`, `safe`, `standard`, `fast`, `rollback`…
    pub mode: String,
    /// The environment.
    pub environment: Option<String>,
    /// Where the run stands.
    pub status: RunStatus,
    /// Phases in order.
    pub phases: Vec<PhaseRecord>,
    /// Components by name.
    pub components: BTreeMap<String, ComponentRecord>,
    /// Checkpoints, oldest first.
    pub checkpoints: Vec<Checkpoint>,
    /// When the run was wrapped up (outcomes in history, final status set);
    /// `None` while it is under way or when it was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl RunRecord {
    /// Whether the run still has work: an active status, or a run that was
    /// interrupted before it was wrapped up (even after a finished rollback).
    pub fn is_unfinished(&self) -> bool {
        self.status.is_active() || (self.finished_at.is_none() && self.status != RunStatus::Idle)
    }

    /// Moves the run to `next`, refusing transitions the machine forbids.
    pub fn transition(&mut self, next: RunStatus, at: Timestamp) -> Result<(), InvalidTransition> {
        if !self.status.can_become(next) {
            return Err(InvalidTransition {
                from: self.status,
                to: next,
            });
        }
        self.status = next;
        self.updated_at = at;
        Ok(())
    }

    /// The explicit way back to IDLE from a finished run; an active run is
    /// refused (finish or resume it first).
    pub fn reset(&mut self, at: Timestamp) -> Result<(), InvalidTransition> {
        if self.status.is_active() {
            return Err(InvalidTransition {
                from: self.status,
                to: RunStatus::Idle,
            });
        }
        self.status = RunStatus::Idle;
        self.updated_at = at;
        Ok(())
    }
}
