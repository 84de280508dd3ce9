//! One function per use case, each taking options and returning a typed report.

mod admin;
mod check;
mod fleet;
mod journal;
mod memory;
mod metrics;
mod prune;
mod read;
mod rollback;
mod run;
mod unmanage;

pub use admin::{
    ConfigCheckReport, DerivedEndpoint, ServiceRow, StateResetReport, TimerInstallOptions,
    TimerReport, TimerStatus, TimerUnit, config_check, derived_endpoints, state_reset,
    supervisor_start, supervisor_status, supervisor_stop, timer_install, timer_remove,
    timer_status,
};
pub use check::{
    Candidate, CheckOptions, CheckReport, CheckRow, PlanOptions, PlanReport, block_text, check,
    plan, skip_text,
};
pub use fleet::{MAX_MIRROR_FILE, MirrorFillOptions, PinOptions, PinReport, mirror_fill, pin};
pub use memory::{MemoryReport, hold, memory, quarantine_clear, unhold};
pub use metrics::{metrics, write_metrics};
pub use prune::{PruneOptions, PruneOutcome, prune};
pub use read::{
    HistoryOptions, HistoryReport, LockReport, StatusReport, VersionsRow, history, history_stats,
    status, versions,
};
pub use rollback::{RollbackList, RollbackTarget, RunSummary, rollback, rollback_list};
pub use run::{
    ApplyOptions, ApplyOutcome, StageOptions, StageReport, StagedRow, apply, proof_text, resume,
    stage,
};
pub use unmanage::{UnmanageReport, unmanage};

use upgrade_core::journal::{StepEvent, TxStep};
use upgrade_core::planner::Step;
use upgrade_core::version::Version;

/// What an operation tells the person (or program) running it, and what it
/// asks. Every method has a quiet default; the binary draws progress bars and
/// prompts on a terminal.
pub trait Ui: Sync {
    /// A download begins.
    fn staging(&self, _component: &str, _version: &Version) {}
    /// Bytes of the current download so far, and the total when known.
    fn bytes(&self, _done: u64, _total: Option<u64>) {}
    /// The current download ended (verified or not).
    fn staged(&self) {}
    /// A journal point of the run was recorded.
    fn journal(&self, _key: &str, _step: TxStep, _event: &StepEvent) {}
    /// Whether someone can answer [`Ui::ask`] (a terminal, not `--json`).
    fn can_ask(&self) -> bool {
        false
    }
    /// Asks before a step (safe mode, or a step that needs approval).
    fn ask(&self, _step: &Step) -> bool {
        false
    }
    /// The run is over: clear any progress display.
    fn done(&self) {}
}

/// Shows nothing and asks nobody: steps that need approval wait.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Ui for Quiet {}
