//! A run in progress: its record, journal points, history and wrap-up.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;

use super::{Error, Options, Ports, RunReport, SkipCause, StepReport, component_of_key};
use crate::config::{Component, Stack};
use crate::journal::{
    Checkpoint, ComponentRecord, ComponentStatus, HistoryRecord, Outcome, RunRecord, RunStatus,
    StepEvent, TxStep,
};
use crate::planner::{Release, Step};
use crate::ports::{Event, Staged};
use crate::rules::req_matches;
use crate::version::Version;

/// How one step's transaction ended.
pub(super) enum TxEnd {
    /// Upgraded and healthy.
    Completed,
    /// At the target already: nothing was touched.
    AlreadyAtTarget,
    /// Failed before anything changed on the host.
    FailedClean(String),
    /// Failed after the switch, and back at its old version.
    RolledBack(String),
    /// Failed, and the rollback failed too.
    RollbackFailed(String),
}

/// A step that failed: the message journaled and reported.
pub(super) type StepFailure = String;

/// What a journaled step returns: its typed result, or why it failed.
pub(super) type StepResult<T> = Result<T, StepFailure>;

/// What a step's success says in the journal.
pub(super) trait Journaled {
    /// The line written as the step's result.
    fn journal_text(&self) -> String;
}

impl Journaled for String {
    fn journal_text(&self) -> String {
        self.clone()
    }
}

/// One run in progress.
pub(super) struct Run<'p, 'a> {
    pub stack: &'p Stack,
    pub releases: &'p BTreeMap<String, Vec<Release>>,
    pub ports: &'p mut Ports<'a>,
    pub opts: &'p Options,
    pub record: RunRecord,
    /// The planned steps by journal key, for prompts (empty on resume).
    pub planned: BTreeMap<String, Step>,
    /// Releases verified in this run (or ahead of it), by step key: each is
    /// verified once per run.
    pub staged: BTreeMap<String, Staged>,
}

impl<'p, 'a> Run<'p, 'a> {
    /// A run over a record; releases staged ahead come from the options.
    pub fn new(
        stack: &'p Stack,
        releases: &'p BTreeMap<String, Vec<Release>>,
        ports: &'p mut Ports<'a>,
        opts: &'p Options,
        record: RunRecord,
        planned: BTreeMap<String, Step>,
    ) -> Self {
        Run {
            stack,
            releases,
            ports,
            opts,
            record,
            planned,
            staged: opts.staged.clone(),
        }
    }
}

impl Run<'_, '_> {
    pub fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    pub fn save(&mut self) -> Result<(), Error> {
        self.record.updated_at = self.now();
        self.record.bound_texts();
        self.ports
            .journal
            .save(&self.record)
            .map_err(Error::Journal)
    }

    pub fn set_status(&mut self, status: RunStatus) -> Result<(), Error> {
        if self.record.status != status {
            let at = self.now();
            if let Err(e) = self.record.transition(status, at) {
                log::warn!("{e}");
                return Ok(());
            }
            self.save()?;
        }
        Ok(())
    }

    pub fn notify(&mut self, event: &Event) -> Result<(), Error> {
        if let Err(e) = self.ports.notifier.notify(event) {
            log::warn!("notification failed (the run goes on): {e}");
            let rec = HistoryRecord::NotificationFailed {
                run_id: self.record.id.clone(),
                notifier: "notifier".into(),
                at: self.now(),
                error: e.to_string(),
            };
            self.ports
                .journal
                .append_history(&rec.clone().bounded())
                .map_err(Error::Journal)?;
        }
        Ok(())
    }

    /// A step's record. Every key the engine uses comes from the record's
    /// own phases, which are checked against its components when the run
    /// is built or loaded.
    pub fn comp(&self, key: &str) -> &ComponentRecord {
        &self.record.components[key]
    }

    /// A step's record, to change it.
    pub fn comp_mut(&mut self, key: &str) -> &mut ComponentRecord {
        self.record
            .components
            .get_mut(key)
            .expect("keys are checked when the run is built or loaded")
    }

    /// The component a step is about: from the stack, or, when the stack no
    /// longer has it, from the facts the journal kept when the run began.
    pub fn component(&self, key: &str) -> Result<Component, StepFailure> {
        let name = component_of_key(key);
        if let Some(c) = self.stack.components.get(name) {
            return Ok(c.clone());
        }
        let c = self.comp(key);
        match &c.spec {
            Some(spec) => Ok(Component::from_spec(name, spec.clone(), &c.phase)),
            None => Err(format!(
                "{name} is no longer in the stack file and this journal does not describe it; \
                 put it back in the stack file and run `obs-upgrade resume` again"
            )),
        }
    }

    /// Marks a step skipped with a reason, durably.
    pub fn skip(&mut self, key: &str, why: String) -> Result<(), Error> {
        let c = self.comp_mut(key);
        c.status = ComponentStatus::Skipped;
        c.skip_reason = Some(why);
        self.save()
    }

    /// Journals a point, saving the record.
    fn point(&mut self, key: &str, step: TxStep, event: StepEvent) -> Result<(), Error> {
        if let Some(observe) = self.ports.observer {
            observe(key, step, &event);
        }
        let at = self.now();
        self.comp_mut(key).record(step, event, at);
        self.save()
    }

    /// Runs one journaled step: began, side effect, done or failed.
    pub fn step<T: Journaled>(
        &mut self,
        key: &str,
        step: TxStep,
        f: impl FnOnce(&mut Self) -> StepResult<T>,
    ) -> Result<StepResult<T>, Error> {
        self.point(key, step, StepEvent::Began)?;
        let r = f(self);
        let event = match &r {
            Ok(done) => StepEvent::Done {
                result: done.journal_text(),
            },
            Err(error) => StepEvent::Failed {
                error: error.clone(),
            },
        };
        self.point(key, step, event)?;
        Ok(r)
    }

    /// What each component runs now, as far as the run knows: the target of
    /// its completed steps, else where it started.
    pub fn versions_now(&self) -> BTreeMap<String, Version> {
        let mut out: BTreeMap<String, Version> = BTreeMap::new();
        for (key, c) in &self.record.components {
            let name = component_of_key(key).to_owned();
            let done = c.status == ComponentStatus::Completed;
            let v = if done { &c.to } else { &c.from };
            match out.get(&name) {
                Some(cur) if !done || cur > v => {}
                _ => {
                    out.insert(name, v.clone());
                }
            }
        }
        out
    }

    /// The `requires` rules on the set as it would be with `name` at `to`.
    pub fn compatibility(&self, name: &str, to: &Version) -> StepResult<()> {
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

    /// The release data of a target, when the run has it.
    pub fn release(&self, name: &str, to: &Version) -> Option<&Release> {
        self.releases.get(name)?.iter().find(|r| &r.version == to)
    }

    /// Records a finished step in history and tells the notifier.
    pub fn finish_step(&mut self, key: &str, end: &TxEnd) -> Result<(), Error> {
        let c = self.comp(key).clone();
        let name = component_of_key(key).to_owned();
        let (from, to) = (c.from.clone(), c.to.clone());
        let started = c.started_at.unwrap_or_else(|| self.now());
        let id = self.record.id.clone();
        let (outcome, error, event) = match end {
            TxEnd::AlreadyAtTarget => (Outcome::NothingToDo, None, None),
            TxEnd::Completed if self.opts.manual_rollback => (
                Outcome::Reverted,
                None,
                Some(Event::ComponentReverted {
                    run_id: id.clone(),
                    component: name.clone(),
                    from: from.clone(),
                    to: to.clone(),
                }),
            ),
            TxEnd::Completed => (
                Outcome::Upgraded,
                None,
                Some(Event::ComponentUpgraded {
                    run_id: id.clone(),
                    component: name.clone(),
                    from: from.clone(),
                    to: to.clone(),
                }),
            ),
            TxEnd::FailedClean(e) | TxEnd::RollbackFailed(e) => (
                Outcome::Failed,
                Some(e.clone()),
                Some(Event::ComponentFailed {
                    run_id: id.clone(),
                    component: name.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    error: crate::journal::bounded(e),
                }),
            ),
            TxEnd::RolledBack(e) => (
                Outcome::RolledBack,
                Some(e.clone()),
                Some(Event::ComponentRolledBack {
                    run_id: id.clone(),
                    component: name.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    error: crate::journal::bounded(e),
                }),
            ),
        };
        let rec = HistoryRecord::Component {
            run_id: id,
            component: name,
            from: Some(from),
            to: Some(to),
            outcome,
            started_at: started,
            finished_at: self.now(),
            error,
        };
        self.ports
            .journal
            .append_history(&rec.clone().bounded())
            .map_err(Error::Journal)?;
        self.comp_mut(key).history_recorded = true;
        self.save()?;
        if let Some(ev) = event {
            self.notify(&ev)?;
        }
        Ok(())
    }

    /// Sets the final status, appends the run to history, tells the notifier.
    pub fn finish_run(&mut self) -> Result<RunReport, Error> {
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
        let at = self.now();
        if self.record.status != target
            && self.record.transition(target, at).is_err()
            && self.record.status.is_active()
        {
            // e.g. VALIDATING after a rollback and later successes: the run completed.
            let _ = self.record.transition(RunStatus::Completed, at);
        }
        if self.record.status.is_active() {
            let _ = self.record.transition(RunStatus::Failed, at);
        }
        self.record.finished_at = Some(at);
        let versions = self.versions_now();
        self.record.checkpoints.push(Checkpoint {
            name: "after-run".into(),
            at,
            versions,
        });
        self.save()?;
        let report = self.report();
        let rec = HistoryRecord::Run {
            run_id: self.record.id.clone(),
            started_at: self.record.started_at,
            finished_at: self.now(),
            status: self.record.status,
            mode: self.record.mode.clone(),
            environment: self.record.environment.clone(),
            host: self.record.host.clone(),
            user: self.record.user.clone(),
            command: self.record.command.clone(),
            summary: summary(&report),
        };
        self.ports
            .journal
            .append_history(&rec.clone().bounded())
            .map_err(Error::Journal)?;
        // An operator's rollback reverts; it upgrades nothing.
        let (upgraded, reverted) = if self.opts.manual_rollback {
            (0, report.upgraded())
        } else {
            (report.upgraded(), 0)
        };
        let ev = Event::RunFinished {
            run_id: self.record.id.clone(),
            status: self.record.status,
            upgraded,
            reverted,
            failed: report.failed(),
            rolled_back: report.rolled_back(),
        };
        self.notify(&ev)?;
        Ok(report)
    }

    /// The report of the run as journaled.
    pub fn report(&self) -> RunReport {
        let steps = self
            .record
            .phases
            .iter()
            .flat_map(|p| &p.components)
            .map(|key| step_report(key, self.comp(key)))
            .collect();
        RunReport {
            run_id: self.record.id.clone(),
            status: self.record.status,
            steps,
            notes: Vec::new(),
            blockers: Vec::new(),
        }
    }
}

/// `3 upgraded, 1 rolled back`, or `nothing to do`.
fn summary(report: &RunReport) -> String {
    if report.nothing_to_do() {
        return "nothing to do".to_owned();
    }
    let mut s = format!("{} upgraded", report.upgraded());
    if report.failed() > 0 {
        let _ = write!(s, ", {} failed", report.failed());
    }
    if report.rolled_back() > 0 {
        let _ = write!(s, ", {} rolled back", report.rolled_back());
    }
    s
}

/// Whether a skipped step found its component at the target (its detect
/// step is done and nothing after it began).
fn at_target(c: &ComponentRecord) -> bool {
    c.status == ComponentStatus::Skipped
        && c.journal
            .iter()
            .any(|e| e.step == TxStep::Detect && matches!(e.event, StepEvent::Done { .. }))
        && c.journal.iter().all(|e| e.step == TxStep::Detect)
}

/// One step's report from its record.
pub(super) fn step_report(key: &str, c: &ComponentRecord) -> StepReport {
    let skip = (c.status == ComponentStatus::Skipped).then(|| {
        if at_target(c) {
            SkipCause::AlreadyAtTarget
        } else {
            SkipCause::Other
        }
    });
    StepReport {
        key: key.to_owned(),
        component: component_of_key(key).to_owned(),
        from: Some(c.from.clone()),
        to: Some(c.to.clone()),
        status: c.status.clone(),
        message: c.skip_reason.clone().or_else(|| c.last_error.clone()),
        skip,
    }
}
