//! The transactional engine: runs a plan against the ports, one journaled
//! transaction per step, rolls back by itself, resumes after a crash.
//!
//! Each step of the per-component transaction is journaled as *began*
//! before its side effect and *done* or *failed* after it, and each is
//! idempotent, so resuming simply runs the remaining steps again:
//!
//! ```text
//! detect → preflight → stage → smoke → backup → switch → verify → commit
//!                                                  └─(failure)─→ rollback_swap → rollback_restore
//!                                                                 → rollback_restart → rollback_verify
//! ```
//!
//! A journal write that fails stops the run at once (as a crash would): the
//! next `resume` continues from the journal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{Component, OnFailure, Stack};
use crate::journal::{
    Checkpoint, ComponentRecord, ComponentStatus, HistoryRecord, Outcome, PhaseRecord, PhaseStatus,
    ResumeAction, RunRecord, RunStatus, StepEvent, TxStep, resume_point,
};
use crate::layout::Layout;
use crate::planner::{Plan, Release, Step};
use crate::ports::{
    ArtifactStore, Backup, Event, HealthProbe, Inspector, Journal, Notifier, PortError,
    ServiceControl,
};
use crate::rules::req_matches;
use crate::version::Version;

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

/// Options of a run.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent switches, each from its own flag
pub struct Options {
    /// The run's id.
    pub run_id: String,
    /// How it proceeds.
    pub mode: Mode,
    /// Which steps.
    pub scope: Scope,
    /// Apply steps that need approval (`--yes` approves what policy allows; this approves all).
    pub approve_all: bool,
    /// Never prompt; only auto-approved steps inside a window.
    pub unattended: bool,
    /// Whether a maintenance window is open now (ignored unless unattended).
    pub window_open: bool,
    /// Upgrade a component even when it is unhealthy before the run (to repair it).
    pub allow_unhealthy: bool,
    /// The caller holds the run lock.
    pub lock_held: bool,
    /// Pause between components (overrides the mode's).
    pub pause: Option<std::time::Duration>,
    /// The host, user, command and environment, for the run record.
    pub host: String,
    /// The user.
    pub user: String,
    /// The command line.
    pub command: Vec<String>,
    /// The environment.
    pub environment: Option<String>,
}

impl Options {
    /// Defaults for a run id: standard mode, everything, lock held, no pauses.
    pub fn new(run_id: &str) -> Self {
        Options {
            run_id: run_id.into(),
            mode: Mode::Standard,
            scope: Scope::All,
            approve_all: false,
            unattended: false,
            window_open: true,
            allow_unhealthy: false,
            lock_held: true,
            pause: Some(std::time::Duration::ZERO),
            host: String::new(),
            user: String::new(),
            command: Vec::new(),
            environment: None,
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
    /// Where things are.
    pub layout: &'a Layout,
    /// Told of every journal point as it is recorded (progress display).
    pub observer: Option<&'a Observer<'a>>,
}

/// Told of each journal point: the step key, the step and what happened.
pub type Observer<'a> = dyn Fn(&str, TxStep, &StepEvent) + 'a;

/// Asks before a step (safe mode, interactive approval); `true` goes ahead.
pub type Confirm<'a> = &'a mut dyn FnMut(&Step) -> bool;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The journal could not be written: the run stopped as if killed.
    #[error(
        "cannot write the journal ({0}); the run stopped here, fix the cause and run `obs-upgrade resume`"
    )]
    Journal(#[source] PortError),
    /// The run lock is not held.
    #[error("refusing to change the host without holding the run lock")]
    NoLock,
    /// Outside every maintenance window.
    #[error("outside every maintenance window; nothing was changed")]
    OutsideWindow,
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
}

impl RunReport {
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
}

/// The component a journal key (`component:to`) is about.
fn component_of_key(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

/// The journal key of a step.
pub fn step_key(component: &str, to: &Version) -> String {
    format!("{component}:{to}")
}

type StepResult = Result<String, String>;

/// One run in progress.
struct Run<'p, 'a> {
    stack: &'p Stack,
    releases: &'p BTreeMap<String, Vec<Release>>,
    ports: &'p mut Ports<'a>,
    opts: &'p Options,
    record: RunRecord,
}

enum TxEnd {
    Completed,
    FailedClean(String),
    RolledBack(String),
    RollbackFailed(String),
}

fn now() -> Timestamp {
    Timestamp::now()
}

impl Run<'_, '_> {
    fn save(&mut self) -> Result<(), Error> {
        self.record.updated_at = now();
        self.ports
            .journal
            .save(&self.record)
            .map_err(Error::Journal)
    }

    fn set_status(&mut self, status: RunStatus) -> Result<(), Error> {
        if self.record.status != status {
            if let Err(e) = self.record.transition(status, now()) {
                log::warn!("{e}");
                return Ok(());
            }
            self.save()?;
        }
        Ok(())
    }

    fn notify(&mut self, event: &Event) -> Result<(), Error> {
        if let Err(e) = self.ports.notifier.notify(event) {
            log::warn!("notification failed (the run goes on): {e}");
            let rec = HistoryRecord::NotificationFailed {
                run_id: self.record.id.clone(),
                notifier: "notifier".into(),
                at: now(),
                error: e.to_string(),
            };
            self.ports
                .journal
                .append_history(&rec)
                .map_err(Error::Journal)?;
        }
        Ok(())
    }

    fn comp(&self, key: &str) -> &ComponentRecord {
        &self.record.components[key]
    }

    fn component_of(&self, key: &str) -> &Component {
        let name = component_of_key(key);
        &self.stack.components[name]
    }

    /// Journals a point, saving the record.
    fn point(&mut self, key: &str, step: TxStep, event: StepEvent) -> Result<(), Error> {
        if let Some(observe) = self.ports.observer {
            observe(key, step, &event);
        }
        let c = self
            .record
            .components
            .get_mut(key)
            .expect("component in record");
        c.record(step, event, now());
        self.save()
    }

    /// Runs one journaled step: began, side effect, done or failed.
    fn step(
        &mut self,
        key: &str,
        step: TxStep,
        f: impl FnOnce(&mut Self) -> StepResult,
    ) -> Result<StepResult, Error> {
        self.point(key, step, StepEvent::Began)?;
        let r = f(self);
        match &r {
            Ok(result) => self.point(
                key,
                step,
                StepEvent::Done {
                    result: result.clone(),
                },
            )?,
            Err(error) => self.point(
                key,
                step,
                StepEvent::Failed {
                    error: error.clone(),
                },
            )?,
        }
        Ok(r)
    }

    /// What each component runs now, as far as the run knows: the target of
    /// its completed steps, else where it started.
    fn versions_now(&self) -> BTreeMap<String, Version> {
        let mut out: BTreeMap<String, Version> = BTreeMap::new();
        for (key, c) in &self.record.components {
            let name = component_of_key(key).to_owned();
            let done = c.status == ComponentStatus::Completed;
            let Some(v) = (if done { c.to.clone() } else { c.from.clone() }) else {
                continue;
            };
            match out.get(&name) {
                Some(cur) if !done || *cur > v => {}
                _ => {
                    out.insert(name, v);
                }
            }
        }
        out
    }

    fn compatibility(&self, name: &str, to: &Version) -> Result<(), String> {
        let mut set = self.versions_now();
        set.insert(name.to_owned(), to.clone());
        for r in &self.stack.rules.requires {
            let (Some(x), Some(y)) = (set.get(&r.component), set.get(&r.needs)) else {
                continue;
            };
            if (r.component == name || r.needs == name)
                && req_matches(&r.versions, x)
                && !req_matches(&r.needs_versions, y)
            {
                return Err(format!(
                    "{} {x} needs {} {}, which is at {y}",
                    r.component, r.needs, r.needs_versions
                ));
            }
        }
        Ok(())
    }

    fn release(&self, name: &str, to: &Version) -> Option<&Release> {
        self.releases.get(name)?.iter().find(|r| &r.version == to)
    }

    /// The forward transaction of one step, from `from_step` on.
    #[allow(clippy::too_many_lines)]
    fn forward(&mut self, key: &str, from_step: TxStep) -> Result<TxEnd, Error> {
        let comp = self.component_of(key).clone();
        let (from, to) = {
            let c = self.comp(key);
            (c.from.clone().expect("from"), c.to.clone().expect("to"))
        };
        let layout = self.ports.layout.clone();
        let backup_dir = layout.backup_dir(&self.record.id, key);
        for step in TxStep::FORWARD.iter().copied().filter(|s| *s >= from_step) {
            let r = match step {
                TxStep::Detect => self.step(key, step, |run| match run.ports.inspector.installed(&comp) {
                    // At the target already (by hand, or by an earlier run): nothing to do.
                    Ok(Some(i)) if i.version.same_release(&to) => Ok(format!("already at {to}")),
                    Ok(Some(i)) if i.version.same_release(&from) => Ok(format!("installed {}", i.version)),
                    Ok(Some(i)) => Err(format!("{} was changed by hand to {} since the plan (from {from}); run `obs-upgrade plan` again", comp.name, i.version)),
                    Ok(None) => Err(format!("{} is not installed any more; run `obs-upgrade plan` again", comp.name)),
                    Err(e) => Err(format!("cannot detect {}: {e}", comp.name)),
                })?,
                TxStep::Preflight => self.step(key, step, |run| {
                    if !run.opts.lock_held {
                        return Err("the run lock is not held".into());
                    }
                    let need = run.release(&comp.name, &to).and_then(|r| r.assets.iter().filter_map(|a| a.size).max()).unwrap_or(0) * 2;
                    match run.ports.store.free_bytes() {
                        Ok(free) if free < need => return Err(format!("only {free} bytes free for the store; {need} needed (twice the artifact); free some space or run `obs-upgrade prune`")),
                        Ok(_) => {}
                        Err(e) => return Err(format!("cannot tell free space: {e}")),
                    }
                    run.compatibility(&comp.name, &to)?;
                    if !run.opts.allow_unhealthy {
                        match run.ports.health.check(&comp, &from) {
                            Ok(h) if h.healthy => {}
                            Ok(h) => return Err(format!("{} is not healthy before the upgrade ({}); fix it first, or allow upgrading an unhealthy component to repair it", comp.name, h.detail.join("; "))),
                            Err(e) => return Err(format!("cannot check the health of {}: {e}", comp.name)),
                        }
                    }
                    Ok("disk, lock, compatibility and health ok".into())
                })?,
                TxStep::Stage => self.step(key, step, |run| {
                    let (staged, note) = match run.ports.store.staged(&comp.name, &to) {
                        Ok(Some(s)) => (s, "already staged "),
                        _ => {
                            let release = run.release(&comp.name, &to).ok_or_else(|| format!("no release data for {} {to}; check for updates again", comp.name))?.clone();
                            (run.ports.store.stage(&comp, &release, &mut |_, _| {}).map_err(|e| e.to_string())?, "")
                        }
                    };
                    run.record.components.get_mut(key).expect("c").artifact_sha256 = Some(staged.sha256.clone());
                    Ok(format!("{note}({})", staged.sha256))
                })?,
                TxStep::Smoke => self.step(key, step, |run| {
                    let staged = run.ports.store.staged(&comp.name, &to).map_err(|e| e.to_string())?.ok_or_else(|| format!("{} {to} is not staged", comp.name))?;
                    let bin = staged.dir.join(comp.spec.main_binary());
                    let v = run.ports.inspector.binary_version(&comp, &bin).map_err(|e| e.to_string())?;
                    if !v.same_release(&to) {
                        return Err(format!("the staged {} reports {v}, not {to}", comp.spec.main_binary()));
                    }
                    if let (Some(check), Some(config)) = (&comp.spec.config_check, &comp.spec.config_path)
                        && run.ports.inspector.exists(config)
                    {
                        let host_config = layout.host(config).display().to_string();
                        let argv: Vec<String> = check.iter().map(|a| a.replace("{dir}", &staged.dir.display().to_string()).replace("{config}", &host_config)).collect();
                        run.ports.inspector.run_check(&argv).map_err(|e| format!("the configuration does not pass {to}'s own check: {e}"))?;
                        return Ok(format!("reports {v}; configuration checked by {}", argv[0]));
                    }
                    Ok(format!("reports {v}"))
                })?,
                TxStep::Backup => {
                    self.set_status(RunStatus::BackingUp)?;
                    self.step(key, step, |run| {
                        let saved = run.ports.backup.backup(&comp, &backup_dir).map_err(|e| e.to_string())?;
                        // Adoption: a plain binary becomes the store's `from` version first.
                        if let Ok(Some(i)) = run.ports.inspector.installed(&comp)
                            && !i.managed
                        {
                            run.ports.store.adopt(&comp, &i.binary, &i.version).map_err(|e| format!("cannot adopt {}: {e}", i.binary.display()))?;
                        }
                        Ok(format!("{} file(s) saved", saved.len()))
                    })?
                }
                TxStep::Switch => {
                    self.set_status(RunStatus::Upgrading)?;
                    self.record.components.get_mut(key).expect("c").backup = Some(backup_dir.display().to_string());
                    self.step(key, step, |run| {
                        run.ports.store.switch(&comp.name, &to).map_err(|e| e.to_string())?;
                        run.ports.store.link_binaries(&comp).map_err(|e| e.to_string())?;
                        run.ports.services.restart(&comp.spec.unit).map_err(|e| e.to_string())?;
                        Ok(format!("current → {to}, {} restarted", comp.spec.unit))
                    })?
                }
                TxStep::Verify => {
                    self.set_status(RunStatus::Validating)?;
                    self.step(key, step, |run| {
                        let h = run.ports.health.check(&comp, &to).map_err(|e| e.to_string())?;
                        run.record.components.get_mut(key).expect("c").health = Some(h.clone());
                        if h.healthy { Ok("healthy".into()) } else { Err(format!("unhealthy after the switch: {}", h.detail.join("; "))) }
                    })?
                }
                TxStep::Commit => self.step(key, step, |run| {
                    run.ports.store.mark_good(&comp.name, &to).map_err(|e| e.to_string())?;
                    Ok(format!("{to} is known-good"))
                })?,
                _ => unreachable!("forward steps only"),
            };
            match r {
                Ok(result) if step == TxStep::Detect && result.starts_with("already at") => {
                    // Nothing to do for this step: mark it done without touching anything.
                    let c = self.record.components.get_mut(key).expect("c");
                    c.status = ComponentStatus::Skipped;
                    c.skip_reason = Some(result);
                    self.save()?;
                    return Ok(TxEnd::Completed);
                }
                Ok(_) => {}
                Err(e) if step.changes_service() => {
                    return self.rollback(key, TxStep::RollbackSwap, e);
                }
                Err(e) => return Ok(TxEnd::FailedClean(e)),
            }
        }
        Ok(TxEnd::Completed)
    }

    /// The rollback of one step, from `from_step` on.
    fn rollback(&mut self, key: &str, from_step: TxStep, why: String) -> Result<TxEnd, Error> {
        self.set_status(RunStatus::RollingBack)?;
        let comp = self.component_of(key).clone();
        let from = self.comp(key).from.clone().expect("from");
        let backup_dir = self.ports.layout.backup_dir(&self.record.id, key);
        for step in TxStep::ROLLBACK.iter().copied().filter(|s| *s >= from_step) {
            let r = self.step(key, step, |run| match step {
                TxStep::RollbackSwap => {
                    run.ports
                        .store
                        .switch(&comp.name, &from)
                        .map_err(|e| e.to_string())?;
                    run.ports
                        .store
                        .link_binaries(&comp)
                        .map_err(|e| e.to_string())?;
                    Ok(format!("current → {from}"))
                }
                TxStep::RollbackRestore => {
                    if backup_dir.exists() {
                        run.ports
                            .backup
                            .restore(&comp, &backup_dir)
                            .map_err(|e| e.to_string())?;
                        Ok("files restored".into())
                    } else {
                        Ok("no backup to restore".into())
                    }
                }
                TxStep::RollbackRestart => {
                    run.ports
                        .services
                        .restart(&comp.spec.unit)
                        .map_err(|e| e.to_string())?;
                    Ok(format!("{} restarted", comp.spec.unit))
                }
                TxStep::RollbackVerify => {
                    let h = run
                        .ports
                        .health
                        .check(&comp, &from)
                        .map_err(|e| e.to_string())?;
                    if h.healthy {
                        Ok(format!("healthy at {from}"))
                    } else {
                        Err(format!(
                            "still unhealthy at {from}: {}",
                            h.detail.join("; ")
                        ))
                    }
                }
                _ => unreachable!("rollback steps only"),
            })?;
            if let Err(e) = r {
                let message = format!("{why}; the rollback failed too: {e}");
                self.record.components.get_mut(key).expect("c").last_error = Some(message.clone());
                self.set_status(RunStatus::Failed)?;
                return Ok(TxEnd::RollbackFailed(message));
            }
        }
        self.set_status(RunStatus::RolledBack)?;
        Ok(TxEnd::RolledBack(why))
    }

    fn finish_step(&mut self, key: &str, end: &TxEnd) -> Result<(), Error> {
        let c = self.comp(key).clone();
        let name = component_of_key(key).to_owned();
        let (from, to) = (c.from.clone().expect("from"), c.to.clone().expect("to"));
        let started = c.started_at.unwrap_or_else(now);
        let (outcome, error, event) = match end {
            TxEnd::Completed if c.status == ComponentStatus::Skipped => {
                (Outcome::NothingToDo, None, None)
            }
            TxEnd::Completed => (
                Outcome::Upgraded,
                None,
                Some(Event::ComponentUpgraded {
                    run_id: self.record.id.clone(),
                    component: name.clone(),
                    from: from.clone(),
                    to: to.clone(),
                }),
            ),
            TxEnd::FailedClean(e) | TxEnd::RollbackFailed(e) => (
                Outcome::Failed,
                Some(e.clone()),
                Some(Event::ComponentFailed {
                    run_id: self.record.id.clone(),
                    component: name.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    error: e.clone(),
                }),
            ),
            TxEnd::RolledBack(e) => (
                Outcome::RolledBack,
                Some(e.clone()),
                Some(Event::ComponentRolledBack {
                    run_id: self.record.id.clone(),
                    component: name.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    error: e.clone(),
                }),
            ),
        };
        let rec = HistoryRecord::Component {
            run_id: self.record.id.clone(),
            component: name,
            from: Some(from),
            to: Some(to),
            outcome,
            started_at: started,
            finished_at: now(),
            error,
        };
        self.ports
            .journal
            .append_history(&rec)
            .map_err(Error::Journal)?;
        self.record
            .components
            .get_mut(key)
            .expect("c")
            .history_recorded = true;
        self.save()?;
        if let Some(ev) = event {
            self.notify(&ev)?;
        }
        Ok(())
    }

    /// Runs every pending step in phase order; returns when done or stopped.
    fn drive(&mut self, confirm: Confirm<'_>) -> Result<(), Error> {
        let phases = self.record.phases.clone();
        // A failure in a phase that stops the run stops it, also across a resume.
        let mut stop_reason: Option<String> = self.record.phases.iter().find_map(|p| {
            let stops = self
                .stack
                .phases
                .iter()
                .find(|s| s.name == p.name)
                .is_none_or(|s| s.on_failure == OnFailure::Stop);
            let failed = p.components.iter().find(|k| {
                matches!(
                    self.comp(k).status,
                    ComponentStatus::Failed | ComponentStatus::RolledBack
                )
            })?;
            stops.then(|| format!("the run stopped after {} failed", component_of_key(failed)))
        });
        let mut first = true;
        for (pi, phase) in phases.iter().enumerate() {
            let spec = self
                .stack
                .phases
                .iter()
                .find(|p| p.name == phase.name)
                .cloned();
            let (on_failure, atomic) =
                spec.map_or((OnFailure::Stop, false), |p| (p.on_failure, p.atomic));
            let mut done_in_phase: Vec<String> = Vec::new();
            let mut phase_failed = false;
            if phase.components.iter().any(|k| {
                matches!(
                    self.comp(k).status,
                    ComponentStatus::Pending | ComponentStatus::InProgress { .. }
                )
            }) {
                self.record.phases[pi].status = PhaseStatus::InProgress;
            }
            for key in &phase.components {
                let status = self.comp(key).status.clone();
                if status == ComponentStatus::Completed {
                    done_in_phase.push(key.clone());
                }
                if status != ComponentStatus::Pending {
                    continue;
                }
                if let Some(why) = &stop_reason {
                    let c = self.record.components.get_mut(key).expect("c");
                    c.status = ComponentStatus::Skipped;
                    c.skip_reason = Some(why.clone());
                    self.save()?;
                    continue;
                }
                // A later step of a component whose earlier step did not complete waits.
                let name = component_of_key(key).to_owned();
                let blocked_by_earlier = self.record.components.iter().any(|(k, c)| {
                    k != key
                        && component_of_key(k) == name.as_str()
                        && c.to.as_ref() < self.comp(key).to.as_ref()
                        && c.status != ComponentStatus::Completed
                });
                if blocked_by_earlier {
                    let c = self.record.components.get_mut(key).expect("c");
                    c.status = ComponentStatus::Skipped;
                    c.skip_reason =
                        Some("an earlier step of this component did not complete".into());
                    self.save()?;
                    continue;
                }
                if self.opts.mode == Mode::Safe {
                    let step = self.step_of(key);
                    if !confirm(&step) {
                        let c = self.record.components.get_mut(key).expect("c");
                        c.status = ComponentStatus::Skipped;
                        c.skip_reason = Some("declined at the prompt".into());
                        self.save()?;
                        continue;
                    }
                }
                if !first {
                    let pause = self.opts.pause.unwrap_or_else(|| self.opts.mode.pause());
                    std::thread::sleep(pause);
                }
                first = false;
                self.record.components.get_mut(key).expect("c").attempts += 1;
                let end = self.forward(key, TxStep::Detect)?;
                self.finish_step(key, &end)?;
                match end {
                    TxEnd::Completed => done_in_phase.push(key.clone()),
                    TxEnd::FailedClean(e) | TxEnd::RolledBack(e) | TxEnd::RollbackFailed(e) => {
                        phase_failed = true;
                        if atomic {
                            self.roll_back_phase(&done_in_phase, &e)?;
                            done_in_phase.clear();
                        }
                        if on_failure == OnFailure::Stop {
                            stop_reason = Some(format!("the run stopped after {name} failed"));
                        }
                    }
                }
            }
            self.record.phases[pi].status = if phase_failed {
                if atomic {
                    PhaseStatus::RolledBack
                } else {
                    PhaseStatus::Failed
                }
            } else if phase.components.iter().all(|k| {
                matches!(
                    self.comp(k).status,
                    ComponentStatus::Completed | ComponentStatus::Skipped
                )
            }) {
                PhaseStatus::Completed
            } else {
                self.record.phases[pi].status
            };
            self.save()?;
        }
        Ok(())
    }

    fn step_of(&self, key: &str) -> Step {
        let c = self.comp(key);
        Step::direct(
            component_of_key(key),
            c.from.clone().expect("from"),
            c.to.clone().expect("to"),
            crate::planner::Risk::Low,
            None,
        )
    }

    /// Atomic phase: roll back every completed step of the phase, newest first.
    fn roll_back_phase(&mut self, done: &[String], why: &str) -> Result<(), Error> {
        for key in done.iter().rev() {
            let end = self.rollback(
                key,
                TxStep::RollbackSwap,
                format!("rolled back with its atomic phase: {why}"),
            )?;
            let c = self.record.components.get_mut(key).expect("c");
            if matches!(end, TxEnd::RolledBack(_)) {
                c.status = ComponentStatus::RolledBack;
            }
            self.finish_step(key, &end)?;
        }
        Ok(())
    }

    fn finish_run(&mut self) -> Result<RunReport, Error> {
        let any_failed = self
            .record
            .components
            .values()
            .any(|c| c.status == ComponentStatus::Failed);
        let target = if any_failed {
            RunStatus::Failed
        } else if self.record.status == RunStatus::RolledBack {
            RunStatus::RolledBack
        } else {
            RunStatus::Completed
        };
        if self.record.status != target
            && self.record.transition(target, now()).is_err()
            && self.record.status.is_active()
        {
            // e.g. VALIDATING after a rollback and later successes: the run completed.
            let _ = self.record.transition(RunStatus::Completed, now());
        }
        if self.record.status.is_active() {
            let _ = self.record.transition(RunStatus::Failed, now());
        }
        self.record.finished_at = Some(now());
        self.record.checkpoints.push(Checkpoint {
            name: "after-run".into(),
            at: now(),
            versions: self.versions_now(),
        });
        self.save()?;
        let report = self.report();
        let summary = if report.nothing_to_do() {
            "nothing to do".to_owned()
        } else {
            let mut s = format!("{} upgraded", report.upgraded());
            if report.failed() > 0 {
                let _ = write!(s, ", {} failed", report.failed());
            }
            if report.rolled_back() > 0 {
                let _ = write!(s, ", {} rolled back", report.rolled_back());
            }
            s
        };
        let rec = HistoryRecord::Run {
            run_id: self.record.id.clone(),
            started_at: self.record.started_at,
            finished_at: now(),
            status: self.record.status,
            mode: self.record.mode.clone(),
            environment: self.record.environment.clone(),
            host: self.record.host.clone(),
            user: self.record.user.clone(),
            command: self.record.command.clone(),
            summary,
        };
        self.ports
            .journal
            .append_history(&rec)
            .map_err(Error::Journal)?;
        let ev = Event::RunFinished {
            run_id: self.record.id.clone(),
            status: self.record.status,
            upgraded: report.upgraded(),
            failed: report.failed(),
            rolled_back: report.rolled_back(),
        };
        self.notify(&ev)?;
        Ok(report)
    }

    fn report(&self) -> RunReport {
        let mut steps = Vec::new();
        for phase in &self.record.phases {
            for key in &phase.components {
                let c = self.comp(key);
                steps.push(StepReport {
                    key: key.clone(),
                    component: component_of_key(key).to_owned(),
                    from: c.from.clone(),
                    to: c.to.clone(),
                    status: c.status.clone(),
                    message: c.skip_reason.clone().or_else(|| c.last_error.clone()),
                });
            }
        }
        RunReport {
            run_id: self.record.id.clone(),
            status: self.record.status,
            steps,
            notes: Vec::new(),
        }
    }
}

fn in_scope(stack: &Stack, scope: &Scope, step: &Step) -> bool {
    match scope {
        Scope::All => true,
        Scope::Phase { name } => stack
            .components
            .get(&step.component)
            .is_some_and(|c| &c.phase == name),
        Scope::Component { name } => &step.component == name,
    }
}

fn check_scope(stack: &Stack, scope: &Scope) -> Result<(), Error> {
    match scope {
        Scope::All => Ok(()),
        Scope::Phase { name } if stack.phases.iter().any(|p| &p.name == name) => Ok(()),
        Scope::Phase { name } => Err(Error::Scope(format!(
            "unknown phase `{name}`; phases: {}",
            stack
                .phases
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Scope::Component { name } if stack.components.contains_key(name) => Ok(()),
        Scope::Component { name } => Err(Error::Scope(format!(
            "unknown component `{name}`; components: {}",
            stack
                .components
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Applies a plan. `releases` must hold the release of every step's target
/// (for staging); `confirm` is asked before each step in safe mode and for
/// steps that need approval when not unattended and not approved.
pub fn apply(
    stack: &Stack,
    plan: &Plan,
    releases: &BTreeMap<String, Vec<Release>>,
    ports: &mut Ports<'_>,
    opts: &Options,
    confirm: Confirm<'_>,
) -> Result<RunReport, Error> {
    check_scope(stack, &opts.scope)?;
    if opts.mode == Mode::DryRun {
        return Ok(dry_run(stack, plan, ports, opts));
    }
    if !opts.lock_held {
        return Err(Error::NoLock);
    }
    if opts.unattended && !opts.window_open {
        return Err(Error::OutsideWindow);
    }
    if let Some(prev) = ports.journal.load().map_err(Error::Journal)?
        && prev.is_unfinished()
    {
        return Err(Error::InProgress {
            run_id: prev.id,
            status: prev.status,
        });
    }
    let t = now();
    let mut record = RunRecord {
        id: opts.run_id.clone(),
        started_at: t,
        updated_at: t,
        host: opts.host.clone(),
        user: opts.user.clone(),
        command: opts.command.clone(),
        mode: opts.mode.name().into(),
        environment: opts.environment.clone(),
        status: RunStatus::Idle,
        phases: Vec::new(),
        components: BTreeMap::new(),
        checkpoints: Vec::new(),
        finished_at: None,
    };
    record
        .transition(RunStatus::Planning, t)
        .expect("idle → planning");
    let mut steps_desc = Vec::new();
    for phase in &plan.phases {
        let mut keys = Vec::new();
        for step in &phase.steps {
            let key = step_key(&step.component, &step.to);
            let mut c = ComponentRecord::pending(
                &phase.name,
                Some(step.from.clone()),
                Some(step.to.clone()),
            );
            if !in_scope(stack, &opts.scope, step) {
                c.status = ComponentStatus::Skipped;
                c.skip_reason = Some("outside the scope of this run".into());
            } else if opts.unattended
                && !opts.approve_all
                && (step.needs_approval
                    || stack
                        .components
                        .get(&step.component)
                        .is_some_and(|comp| step.risk > comp.auto_approve))
            {
                let limit = stack
                    .components
                    .get(&step.component)
                    .map_or(crate::planner::Risk::Low, |comp| comp.auto_approve);
                c.status = ComponentStatus::Skipped;
                c.skip_reason = Some(if step.needs_approval {
                    format!(
                        "awaiting approval: a {} change is beyond the policy's `allow`",
                        step.change
                    )
                } else {
                    format!(
                        "awaiting approval: {} risk is above auto_approve `{limit}`",
                        step.risk
                    )
                });
            } else if step.needs_approval && !opts.approve_all {
                let approved = !opts.unattended && confirm(step);
                if !approved {
                    c.status = ComponentStatus::Skipped;
                    c.skip_reason = Some(format!(
                        "awaiting approval: {} change, {} risk",
                        step.change, step.risk
                    ));
                }
            }
            if c.status == ComponentStatus::Pending {
                steps_desc.push(format!("{} {} → {}", step.component, step.from, step.to));
            }
            record.components.insert(key.clone(), c);
            keys.push(key);
        }
        record.phases.push(PhaseRecord {
            name: phase.name.clone(),
            status: PhaseStatus::Pending,
            components: keys,
        });
    }
    if record
        .components
        .values()
        .all(|c| c.status != ComponentStatus::Pending)
    {
        return nothing_to_do(ports, opts, &record, t);
    }
    let versions: BTreeMap<String, Version> = plan
        .steps()
        .map(|s| (s.component.clone(), s.from.clone()))
        .collect();
    record.checkpoints.push(Checkpoint {
        name: "before-run".into(),
        at: t,
        versions,
    });
    let mut run = Run {
        stack,
        releases,
        ports,
        opts,
        record,
    };
    run.save()?;
    run.notify(&Event::RunStarted {
        run_id: opts.run_id.clone(),
        mode: opts.mode.name().into(),
        steps: steps_desc,
    })?;
    run.drive(confirm)?;
    run.finish_run()
}

/// Nothing to do: history says so; the state file keeps the last real run.
fn nothing_to_do(
    ports: &mut Ports<'_>,
    opts: &Options,
    record: &RunRecord,
    started: Timestamp,
) -> Result<RunReport, Error> {
    let steps = record
        .components
        .iter()
        .map(|(k, c)| StepReport {
            key: k.clone(),
            component: component_of_key(k).to_owned(),
            from: c.from.clone(),
            to: c.to.clone(),
            status: c.status.clone(),
            message: c.skip_reason.clone(),
        })
        .collect();
    let rec = HistoryRecord::Run {
        run_id: opts.run_id.clone(),
        started_at: started,
        finished_at: now(),
        status: RunStatus::Completed,
        mode: opts.mode.name().into(),
        environment: opts.environment.clone(),
        host: opts.host.clone(),
        user: opts.user.clone(),
        command: opts.command.clone(),
        summary: if record.components.is_empty() {
            "nothing to do".into()
        } else {
            "nothing to do (every step skipped)".into()
        },
    };
    ports.journal.append_history(&rec).map_err(Error::Journal)?;
    Ok(RunReport {
        run_id: opts.run_id.clone(),
        status: RunStatus::Completed,
        steps,
        notes: Vec::new(),
    })
}

/// Plan and preflight only: reads, never writes.
fn dry_run(stack: &Stack, plan: &Plan, ports: &Ports<'_>, opts: &Options) -> RunReport {
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    for step in plan.steps() {
        let key = step_key(&step.component, &step.to);
        if !in_scope(stack, &opts.scope, step) {
            continue;
        }
        let comp = &stack.components[&step.component];
        let mut problems = Vec::new();
        match ports.inspector.installed(comp) {
            Ok(Some(i))
                if !i.version.same_release(&step.from) && !i.version.same_release(&step.to) =>
            {
                problems.push(format!(
                    "installed {} differs from the plan's {}",
                    i.version, step.from
                ));
            }
            Ok(None) => problems.push("not installed".into()),
            Err(e) => problems.push(format!("cannot detect: {e}")),
            _ => {}
        }
        if !opts.allow_unhealthy {
            match ports.health.check(comp, &step.from) {
                Ok(h) if !h.healthy => {
                    problems.push(format!("unhealthy now: {}", h.detail.join("; ")));
                }
                Err(e) => problems.push(format!("cannot check health: {e}")),
                _ => {}
            }
        }
        if step.needs_approval && !opts.approve_all {
            problems.push(format!(
                "needs approval ({} change, {} risk)",
                step.change, step.risk
            ));
        }
        if comp.spec.config_check.is_some() {
            notes.push(format!("{}: the configuration is checked with {}'s own checker once it is staged (not in a dry run)", comp.name, step.to));
        }
        let ok = problems.is_empty();
        steps.push(StepReport {
            key,
            component: step.component.clone(),
            from: Some(step.from.clone()),
            to: Some(step.to.clone()),
            status: if ok {
                ComponentStatus::Pending
            } else {
                ComponentStatus::Skipped
            },
            message: (!ok).then(|| problems.join("; ")),
        });
    }
    RunReport {
        run_id: opts.run_id.clone(),
        status: RunStatus::Planning,
        steps,
        notes,
    }
}

/// Finishes an interrupted run: rollbacks in progress first, then every
/// step from its journaled point, then the steps not begun.
pub fn resume(
    stack: &Stack,
    releases: &BTreeMap<String, Vec<Release>>,
    ports: &mut Ports<'_>,
    opts: &Options,
) -> Result<RunReport, Error> {
    if !opts.lock_held {
        return Err(Error::NoLock);
    }
    let record = ports
        .journal
        .load()
        .map_err(Error::Journal)?
        .ok_or(Error::NothingToResume)?;
    if !record.is_unfinished() {
        return Err(Error::NothingToResume);
    }
    let mut run = Run {
        stack,
        releases,
        ports,
        opts,
        record,
    };
    let keys: Vec<String> = run
        .record
        .phases
        .iter()
        .flat_map(|p| p.components.clone())
        .collect();
    // Outcomes a crash kept out of history: a step finished, its record not yet appended.
    for key in &keys {
        let c = run.comp(key).clone();
        let end = match c.status {
            ComponentStatus::Completed => TxEnd::Completed,
            ComponentStatus::RolledBack => {
                TxEnd::RolledBack(c.last_error.clone().unwrap_or_default())
            }
            ComponentStatus::Failed if resume_point(&c) == ResumeAction::Nothing => {
                TxEnd::FailedClean(c.last_error.clone().unwrap_or_default())
            }
            _ => continue,
        };
        if !c.history_recorded && !c.journal.is_empty() {
            run.finish_step(key, &end)?;
        }
    }
    // Rollbacks first.
    for key in &keys {
        if let ResumeAction::FinishRollback { step } = resume_point(run.comp(key)) {
            let why = run
                .comp(key)
                .last_error
                .clone()
                .unwrap_or_else(|| "interrupted".into());
            let end = run.rollback(key, step, why)?;
            run.finish_step(key, &end)?;
        }
    }
    // Then steps in progress, from their point.
    for key in &keys {
        if let ResumeAction::ContinueFrom { step } = resume_point(run.comp(key)) {
            if run.comp(key).status == ComponentStatus::Pending {
                continue;
            }
            run.record.components.get_mut(key).expect("c").attempts += 1;
            let end = run.forward(key, step)?;
            run.finish_step(key, &end)?;
        }
    }
    // A rollback that finished before the crash, its status not yet saved.
    let mid_rollback =
        run.record.components.values().any(
            |c| matches!(&c.status, ComponentStatus::InProgress { step } if step.is_rollback()),
        );
    if run.record.status == RunStatus::RollingBack && !mid_rollback {
        let _ = run.record.transition(RunStatus::RolledBack, now());
    }
    run.drive(&mut |_| true)?;
    run.finish_run()
}

/// Moves one component to a version already in the store (a manual rollback),
/// as a run of its own.
pub fn rollback_component(
    stack: &Stack,
    component: &str,
    to: &Version,
    ports: &mut Ports<'_>,
    opts: &Options,
) -> Result<RunReport, Error> {
    let comp = stack
        .components
        .get(component)
        .ok_or_else(|| Error::Scope(format!("unknown component `{component}`")))?;
    if !opts.lock_held {
        return Err(Error::NoLock);
    }
    let current = ports
        .store
        .current(component)
        .map_err(|e| Error::Rollback(e.to_string()))?
        .ok_or_else(|| {
            Error::Rollback(format!(
                "{component} is not managed by the store yet; nothing to roll back"
            ))
        })?;
    if current.same_release(to) {
        return Err(Error::Rollback(format!("{component} is already at {to}")));
    }
    let versions = ports
        .store
        .versions(component)
        .map_err(|e| Error::Rollback(e.to_string()))?;
    if !versions.iter().any(|v| v.same_release(to)) {
        return Err(Error::Rollback(format!(
            "{component} {to} is not in the store; versions there: {}",
            versions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let step = Step::direct(
        component,
        current.clone(),
        to.clone(),
        crate::planner::Risk::High,
        Some("manual rollback".into()),
    );
    let plan = Plan {
        phases: vec![crate::planner::PhasePlan {
            name: comp.phase.clone(),
            on_failure: OnFailure::Stop,
            atomic: false,
            steps: vec![step],
        }],
        ..Plan::default()
    };
    let mut o = opts.clone();
    o.scope = Scope::All;
    o.approve_all = true;
    o.allow_unhealthy = true;
    if o.mode == Mode::DryRun {
        return Ok(dry_run(stack, &plan, ports, &o));
    }
    apply(stack, &plan, &BTreeMap::new(), ports, &o, &mut |_| true)
}

/// Puts every component a past run changed back to the version it had
/// before that run (from history).
pub fn rollback_run(
    stack: &Stack,
    run_id: &str,
    history: &[HistoryRecord],
    ports: &mut Ports<'_>,
    opts: &Options,
) -> Result<RunReport, Error> {
    let mut before: BTreeMap<String, Version> = BTreeMap::new();
    for r in history {
        if let HistoryRecord::Component {
            run_id: id,
            component,
            from: Some(from),
            outcome: Outcome::Upgraded,
            ..
        } = r
            && id == run_id
        {
            // The first step's `from` is the state before the run.
            before
                .entry(component.clone())
                .or_insert_with(|| from.clone());
        }
    }
    if before.is_empty() {
        return Err(Error::Rollback(format!(
            "run {run_id} upgraded nothing that history knows of; `obs-upgrade history` lists runs"
        )));
    }
    let mut steps = Vec::new();
    for (name, to) in &before {
        let comp = stack
            .components
            .get(name)
            .ok_or_else(|| Error::Rollback(format!("{name} is no longer in the stack")))?;
        let current = ports
            .store
            .current(name)
            .map_err(|e| Error::Rollback(e.to_string()))?;
        let Some(current) = current.filter(|c| !c.same_release(to)) else {
            continue;
        };
        steps.push((
            comp.phase.clone(),
            Step::direct(
                name,
                current,
                to.clone(),
                crate::planner::Risk::High,
                Some(format!("rollback of run {run_id}")),
            ),
        ));
    }
    // Reverse phase order: undo the last phase first.
    let mut phases: Vec<crate::planner::PhasePlan> = Vec::new();
    for p in stack.phases.iter().rev() {
        let s: Vec<Step> = steps
            .iter()
            .filter(|(ph, _)| ph == &p.name)
            .map(|(_, s)| s.clone())
            .collect();
        if !s.is_empty() {
            phases.push(crate::planner::PhasePlan {
                name: p.name.clone(),
                on_failure: OnFailure::Continue,
                atomic: false,
                steps: s,
            });
        }
    }
    let plan = Plan {
        phases,
        ..Plan::default()
    };
    let mut o = opts.clone();
    o.approve_all = true;
    o.allow_unhealthy = true;
    apply(stack, &plan, &BTreeMap::new(), ports, &o, &mut |_| true)
}

/// What `prune` removed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Removed versions by component.
    pub removed: BTreeMap<String, Vec<Version>>,
    /// Kept versions by component.
    pub kept: BTreeMap<String, Vec<Version>>,
}

/// Keeps the newest `keep` versions of each component, and always the
/// current and the last known-good one.
pub fn prune(
    stack: &Stack,
    store: &dyn ArtifactStore,
    keep: usize,
    dry_run: bool,
) -> Result<PruneReport, PortError> {
    let mut report = PruneReport::default();
    for name in stack.components.keys() {
        let versions = store.versions(name)?;
        let current = store.current(name)?;
        let good = store.last_good(name)?;
        let n = versions.len();
        for (i, v) in versions.into_iter().enumerate() {
            let protected =
                current.as_ref() == Some(&v) || good.as_ref() == Some(&v) || i + keep >= n;
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

/// A run id: `20261121T053400Z-<pid as 8 hex digits>` (constant length).
pub fn new_run_id() -> String {
    let t = now().strftime("%Y%m%dT%H%M%SZ");
    format!("{t}-{:08x}", std::process::id())
}

/// Where a run's backups are.
pub fn backups_of(layout: &Layout, run_id: &str) -> PathBuf {
    layout.state_dir().join("backups").join(run_id)
}
