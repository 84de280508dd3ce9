//! Where an interrupted run resumes, from each component's journal alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ComponentRecord, ComponentStatus, RunRecord, StepEvent, TxStep};

/// What remains for one component after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ResumeAction {
    /// Nothing: finished, skipped, or failed before touching the service.
    Nothing,
    /// Run the forward transaction from this step (steps are idempotent).
    ContinueFrom {
        /// The first step to run.
        step: TxStep,
    },
    /// A rollback must be finished first, from this rollback step.
    FinishRollback {
        /// The first rollback step to run.
        step: TxStep,
    },
}

/// The resume point of one component, from its journal alone.
///
/// - no entry: start at `detect`;
/// - last entry *began*: that step again (idempotent, the effect may or may not have happened);
/// - last entry *done*: the next step; `commit` or `rollback_verify` done: nothing;
/// - a forward step *failed* before `switch`: nothing (the service was not touched);
/// - `switch`, `verify` or `commit` *failed*: a rollback from its first step;
/// - any rollback step seen and not finished: finish the rollback from where it stands;
/// - a rollback step *failed*: the same step again.
pub fn resume_point(record: &ComponentRecord) -> ResumeAction {
    match record.status {
        ComponentStatus::Completed | ComponentStatus::RolledBack | ComponentStatus::Skipped => {
            return ResumeAction::Nothing;
        }
        ComponentStatus::Failed
            if !record
                .journal
                .iter()
                .any(|e| e.step.changes_service() || e.step.is_rollback()) =>
        {
            return ResumeAction::Nothing;
        }
        _ => {}
    }
    let Some(last) = record.journal.last() else {
        return ResumeAction::ContinueFrom {
            step: TxStep::Detect,
        };
    };
    let after = |step: TxStep| -> ResumeAction {
        match step.next() {
            None => ResumeAction::Nothing,
            Some(n) if n.is_rollback() => ResumeAction::FinishRollback { step: n },
            Some(n) => ResumeAction::ContinueFrom { step: n },
        }
    };
    match (&last.event, last.step) {
        (StepEvent::Began, s) if s.is_rollback() => ResumeAction::FinishRollback { step: s },
        (StepEvent::Began, s) => ResumeAction::ContinueFrom { step: s },
        (StepEvent::Done { .. }, s) => after(s),
        (StepEvent::Failed { .. }, s) if s.is_rollback() => {
            ResumeAction::FinishRollback { step: s }
        }
        (StepEvent::Failed { .. }, s) if s.changes_service() => ResumeAction::FinishRollback {
            step: TxStep::RollbackSwap,
        },
        (StepEvent::Failed { .. }, _) => ResumeAction::Nothing,
    }
}

/// What remains for every component of a run.
pub fn resume_plan(run: &RunRecord) -> BTreeMap<String, ResumeAction> {
    run.components
        .iter()
        .map(|(n, c)| (n.clone(), resume_point(c)))
        .collect()
}
