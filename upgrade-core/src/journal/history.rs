//! The history log's records: runs, component outcomes, failed notifications.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::RunStatus;
use crate::version::Version;

/// How a component ended in a run, for history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Upgraded and healthy.
    Upgraded,
    /// Already where it should be.
    NothingToDo,
    /// Left alone.
    Skipped,
    /// Failed without touching the service.
    Failed,
    /// Failed after the switch and rolled back.
    RolledBack,
    /// Moved back to an earlier version by an operator's rollback.
    Reverted,
}

/// One line of the history log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum HistoryRecord {
    /// A run ended.
    Run {
        /// The run id.
        run_id: String,
        /// When it started.
        started_at: Timestamp,
        /// When it ended.
        finished_at: Timestamp,
        /// Its final status.
        status: RunStatus,
        /// Its mode.
        mode: String,
        /// Its environment.
        environment: Option<String>,
        /// The host.
        host: String,
        /// The user.
        user: String,
        /// The command line.
        command: Vec<String>,
        /// One line on what happened (`nothing to do`, `2 upgraded`).
        #[serde(default)]
        summary: String,
    },
    /// A component's outcome in a run.
    Component {
        /// The run id.
        run_id: String,
        /// The component.
        component: String,
        /// Its version before.
        from: Option<Version>,
        /// The version the run aimed at.
        to: Option<Version>,
        /// How it ended.
        outcome: Outcome,
        /// When its transaction started.
        started_at: Timestamp,
        /// When it ended.
        finished_at: Timestamp,
        /// The error, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A notifier failed (recorded, never fatal).
    NotificationFailed {
        /// The run id.
        run_id: String,
        /// Which notifier.
        notifier: String,
        /// When.
        at: Timestamp,
        /// The error.
        error: String,
    },
}

impl HistoryRecord {
    /// The run it belongs to.
    pub fn run_id(&self) -> &str {
        match self {
            HistoryRecord::Run { run_id, .. }
            | HistoryRecord::Component { run_id, .. }
            | HistoryRecord::NotificationFailed { run_id, .. } => run_id,
        }
    }

    /// When it was written (its end time).
    pub fn at(&self) -> Timestamp {
        match self {
            HistoryRecord::Run { finished_at, .. }
            | HistoryRecord::Component { finished_at, .. } => *finished_at,
            HistoryRecord::NotificationFailed { at, .. } => *at,
        }
    }
}
