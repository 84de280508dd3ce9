//! The transactional engine: runs a plan against the ports, one journaled
//! transaction per step, rolls back by itself, resumes after a crash.
//!
//! Each step of the per-component transaction is journaled as *began*
//! before its side effect and *done* or *failed* after it, and each is
//! idempotent, so resuming simply runs the remaining steps again:
//!
//! ```text
//! detect → preflight → stage → smoke → backup → switch → verify → commit
//!                                 └─(failure)─→ rollback_swap → rollback_restore
//!                                                → rollback_restart → rollback_verify
//! ```
//!
//! A journal write that fails stops the run at once (as a crash would): the
//! next `resume` continues from the journal.
//!
//! The modules, by concern:
//! - [`start`](self): a new run (`apply`), a dry run, `resume`, and the checks
//!   before either (scope, window, an unfinished run);
//! - `run`: the run in progress, its journal points and its wrap-up;
//! - `drive`: phases in order, pauses, prompts, stop-on-failure, atomic phases;
//! - `transaction`: the forward steps of one component, each a named method;
//! - `rollback`: the rollback steps;
//! - `manual`: rollbacks an operator asks for (a component, a whole run);
//! - `prune`: the store's clean-up.

mod drive;
mod manual;
mod prune;
mod rollback;
mod run;
mod start;
mod transaction;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::journal::{ComponentStatus, RunStatus, StepEvent, TxStep};
use crate::layout::Layout;
use crate::planner::Step;
use crate::ports::{
    ArtifactStore, Backup, Clock, HealthProbe, Inspector, Journal, Notifier, PortError,
    ServiceControl, Staged,
};
use crate::version::Version;

pub use manual::{rollback_component, rollback_run};
pub use prune::{PruneReport, prune};
pub use start::{
    apply, check_scope, dry_run, ensure_no_unfinished_run, ensure_window, preconditions, resume,
};

/// How a run proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plan and preflight only; nothing on disk changes.
    DryRun,
    /// Ask before each component; pause between components.
    Safe,
    /// Go on by itself; a short pause between components.
    Standard,
    /// No pauses.
    Fast,
}

impl Mode {
    /// The name written in the journal.
    pub fn name(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Safe => "safe",
            Mode::Standard => "standard",
            Mode::Fast => "fast",
        }
    }

    fn pause(self) -> std::time::Duration {
        match self {
            Mode::Safe => std::time::Duration::from_secs(5),
            Mode::Standard => std::time::Duration::from_secs(1),
            Mode::DryRun | Mode::Fast => std::time::Duration::ZERO,
        }
    }
}

/// Which steps a run takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Scope {
    /// Everything planned.
    All,
    /// One phase by name.
    Phase {
        /// The phase.
        name: String,
    },
    /// One component (its dependencies are checked, not upgraded).
    Component {
        /// The component.
        name: String,
    },
}

/// A request to stop a run, set from outside (a signal handler): the run
/// starts no new component, finishes (or rolls back) the one in flight, and
/// ends with every component on a verified version.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl StopFlag {
    /// Asks the run to stop.
    pub fn request(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The flag itself, for signal handlers that set it.
    pub fn flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.0.clone()
    }
}

/// Options of a run.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent switches, one per run option
pub struct Options {
    /// The run's id.
    pub run_id: String,
    /// How it proceeds.
    pub mode: Mode,
    /// Which steps.
    pub scope: Scope,
    /// Apply steps that need approval (`--yes` approves what policy allows; this approves all).
    pub approve_all: bool,
    /// Never prompt; only auto-approved steps, and only inside a maintenance
    /// window (the engine checks the stack's windows against its clock).
    pub unattended: bool,
    /// Upgrade a component even when it is unhealthy before the run (to repair it).
    pub allow_unhealthy: bool,
    /// Pause between components (overrides the mode's).
    pub pause: Option<std::time::Duration>,
    /// The host, for the run record.
    pub host: String,
    /// The user.
    pub user: String,
    /// The command line.
    pub command: Vec<String>,
    /// The environment.
    pub environment: Option<String>,
    /// Releases staged and verified ahead of this run, by step key: the
    /// stage and smoke steps use them as they are instead of asking the
    /// store to verify them again.
    pub staged: BTreeMap<String, Staged>,
    /// The run is an operator's rollback (recorded as mode `rollback`; its
    /// components are "reverted", never "upgraded", in history and events).
    pub manual_rollback: bool,
    /// Set from outside to stop the run between components.
    pub stop: StopFlag,
}

impl Options {
    /// Defaults for a run id: standard mode, everything, no pauses.
    pub fn new(run_id: &str) -> Self {
        Options {
            run_id: run_id.into(),
            mode: Mode::Standard,
            scope: Scope::All,
            approve_all: false,
            unattended: false,
            allow_unhealthy: false,
            pause: Some(std::time::Duration::ZERO),
            host: String::new(),
            user: String::new(),
            command: Vec::new(),
            environment: None,
            staged: BTreeMap::new(),
            manual_rollback: false,
            stop: StopFlag::default(),
        }
    }

    /// The mode recorded for the run: `rollback` for an operator's
    /// rollback, else the mode's name.
    pub fn mode_label(&self) -> &'static str {
        if self.manual_rollback {
            "rollback"
        } else {
            self.mode.name()
        }
    }
}

/// The adapters the engine works through.
pub struct Ports<'a> {
    /// Durable run record and history.
    pub journal: &'a mut dyn Journal,
    /// The install store.
    pub store: &'a dyn ArtifactStore,
    /// Services.
    pub services: &'a dyn ServiceControl,
    /// Health checks.
    pub health: &'a dyn HealthProbe,
    /// Binaries and checks.
    pub inspector: &'a dyn Inspector,
    /// Configuration and unit backups.
    pub backup: &'a dyn Backup,
    /// Notifications.
    pub notifier: &'a dyn Notifier,
    /// Time and pauses.
    pub clock: &'a dyn Clock,
    /// Where things are.
    pub layout: &'a Layout,
    /// Told of every journal point as it is recorded (progress display).
    pub observer: Option<&'a Observer<'a>>,
}

/// Told of each journal point: the step key, the step and what happened.
pub type Observer<'a> = dyn Fn(&str, TxStep, &StepEvent) + 'a;

/// Asks before a step (safe mode, interactive approval); `true` goes ahead.
pub type Confirm<'a> = &'a mut dyn FnMut(&Step) -> bool;

/// Who approves the steps that need it.
pub enum Approver<'a> {
    /// Someone answers: asked before each step in safe mode, and for steps
    /// that need approval.
    Ask(Confirm<'a>),
    /// Nobody can be asked (no terminal, `--json`, a timer): steps that need
    /// approval wait for `--yes`, and safe mode applies nothing.
    Nobody,
}

impl Approver<'_> {
    /// The answer for one step in a run of this mode.
    fn approves(&mut self, step: &Step, mode: Mode) -> bool {
        match self {
            Approver::Ask(confirm) => confirm(step),
            Approver::Nobody => {
                if step.needs_approval {
                    log::warn!(
                        "{} {} → {} needs approval; rerun with --yes to apply it",
                        step.component,
                        step.from,
                        step.to
                    );
                }
                mode != Mode::Safe && !step.needs_approval
            }
        }
    }
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The journal could not be written: the run stopped as if killed.
    #[error(
        "cannot write the journal; the run stopped here, fix the cause and run `obs-upgrade resume`"
    )]
    Journal(#[source] PortError),
    /// Outside every maintenance window.
    #[error("outside every maintenance window; nothing was changed")]
    OutsideWindow {
        /// When the next window opens (none within 400 days).
        next: Option<jiff::Timestamp>,
    },
    /// A run is in progress (crashed or killed): resume it first.
    #[error(
        "run {run_id} is still in progress ({status}); run `obs-upgrade resume` to finish it first"
    )]
    InProgress {
        /// Its id.
        run_id: String,
        /// Its status.
        status: RunStatus,
    },
    /// The journal loaded, but contradicts itself.
    #[error("the state file is damaged: {0}; run `obs-upgrade state reset`")]
    Damaged(String),
    /// Nothing to resume.
    #[error("there is no interrupted run to resume")]
    NothingToResume,
    /// The requested rollback is not possible.
    #[error("{0}")]
    Rollback(String),
    /// An unknown component or phase in the scope.
    #[error("{0}")]
    Scope(String),
}

/// Why a step ended where it did, beyond its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCause {
    /// The component was at the step's target already: nothing was touched.
    AlreadyAtTarget,
    /// Any other skip (scope, approval, an earlier failure, the prompt).
    Other,
}

/// The outcome of one component step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    /// The journal key (`component:to`).
    pub key: String,
    /// The component.
    pub component: String,
    /// From.
    pub from: Option<Version>,
    /// To.
    pub to: Option<Version>,
    /// Where it ended.
    pub status: ComponentStatus,
    /// The error or skip reason.
    pub message: Option<String>,
    /// Why it was skipped, as a type (set only for skipped steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<SkipCause>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// Its final status.
    pub status: RunStatus,
    /// Per step.
    pub steps: Vec<StepReport>,
    /// Dry-run findings and notes.
    pub notes: Vec<String>,
    /// Why a dry run says No-Go for the whole run (another run holds the
    /// lock, an unfinished run, a closed window); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
}

impl RunReport {
    /// Whether a dry run (status PLANNING) found anything that would stop
    /// the run or a step of it: the Go/No-Go's answer.
    pub fn no_go(&self) -> bool {
        self.status == RunStatus::Planning
            && (!self.blockers.is_empty()
                || self
                    .steps
                    .iter()
                    .any(|s| s.status == ComponentStatus::Skipped))
    }

    fn count(&self, f: impl Fn(&ComponentStatus) -> bool) -> usize {
        self.steps.iter().filter(|s| f(&s.status)).count()
    }
    /// Steps completed.
    pub fn upgraded(&self) -> usize {
        self.count(|s| *s == ComponentStatus::Completed)
    }
    /// Steps failed (not rolled back).
    pub fn failed(&self) -> usize {
        self.count(|s| *s == ComponentStatus::Failed)
    }
    /// Steps rolled back.
    pub fn rolled_back(&self) -> usize {
        self.count(|s| *s == ComponentStatus::RolledBack)
    }
    /// Nothing was planned or everything was already done.
    pub fn nothing_to_do(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.status == ComponentStatus::Skipped)
    }
    /// Nothing was planned, or every step found its component at the target.
    pub fn all_at_target(&self) -> bool {
        self.steps
            .iter()
            .all(|s| s.skip == Some(SkipCause::AlreadyAtTarget))
    }
}

/// The component a journal key (`component:to`) is about.
fn component_of_key(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

/// The journal key of a step.
pub fn step_key(component: &str, to: &Version) -> String {
    format!("{component}:{to}")
}

/// A run id from its start time and the process id:
/// `20261121T053400Z-<pid as 8 hex digits>` (constant length).
pub fn run_id(at: jiff::Timestamp, pid: u32) -> String {
    format!("{}-{pid:08x}", at.strftime("%Y%m%dT%H%M%SZ"))
}

/// Where a run's backups are.
pub fn backups_of(layout: &Layout, run_id: &str) -> std::path::PathBuf {
    layout.state_dir().join("backups").join(run_id)
}

/// Runs a component's configuration check with the binaries of the release
/// in `dir` (`{dir}`, `{config}` filled in), when it has one and its
/// configuration file exists: `None` when there is nothing to check, else
/// the checker's name or why the configuration does not pass.
fn check_config(
    ports: &Ports<'_>,
    comp: &crate::config::Component,
    dir: &std::path::Path,
    to: &Version,
) -> Option<Result<String, String>> {
    let spec = &comp.spec;
    let (Some(check), Some(config)) = (&spec.config_check, &spec.config_path) else {
        return None;
    };
    if !ports.inspector.exists(config) {
        return None;
    }
    let host_config = ports.layout.host(config).display().to_string();
    let dir = dir.display().to_string();
    let argv: Vec<String> = check
        .iter()
        .map(|a| a.replace("{dir}", &dir).replace("{config}", &host_config))
        .collect();
    Some(
        ports
            .inspector
            .run_check(&argv)
            .map(|_| argv[0].clone())
            .map_err(|e| format!("the configuration does not pass {to}'s own check: {e}")),
    )
}
