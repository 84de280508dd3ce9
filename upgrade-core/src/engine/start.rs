//! Starting a run (`apply`), a dry run, and `resume`; the checks before them.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::run::{Run, TxEnd, step_report};
use super::{Approver, Error, Mode, Options, Ports, RunReport, Scope, StepReport, step_key};
use crate::config::Stack;
use crate::journal::{
    Checkpoint, ComponentRecord, ComponentStatus, HistoryRecord, PhaseRecord, PhaseStatus,
    ResumeAction, RunRecord, RunStatus, resume_point,
};
use crate::planner::{Plan, Release, Step};
use crate::ports::{Event, Journal, RunLock};
use crate::risk::Risk;
use crate::version::Version;

/// Whether a step is inside the run's scope.
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

fn joined<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// Refuses a scope that names an unknown component or phase.
pub fn check_scope(stack: &Stack, scope: &Scope) -> Result<(), Error> {
    match scope {
        Scope::All => Ok(()),
        Scope::Phase { name } if stack.phases.iter().any(|p| &p.name == name) => Ok(()),
        Scope::Phase { name } => Err(Error::Scope(format!(
            "unknown phase `{name}`{}; phases: {}",
            crate::suggest::hint(name, stack.phases.iter().map(|p| p.name.as_str())),
            joined(stack.phases.iter().map(|p| p.name.as_str()))
        ))),
        Scope::Component { name } if stack.components.contains_key(name) => Ok(()),
        Scope::Component { name } => Err(Error::Scope(format!(
            "unknown component `{name}`{}; components: {}",
            crate::suggest::hint(name, stack.components.keys().map(String::as_str)),
            joined(stack.components.keys().map(String::as_str))
        ))),
    }
}

/// Refuses while an earlier run is unfinished (crashed, killed, or stopped
/// by a journal error): it must be resumed first. The one place this is
/// decided; callers ask it before downloading anything.
pub fn ensure_no_unfinished_run(journal: &mut dyn Journal) -> Result<(), Error> {
    match journal.load().map_err(Error::Journal)? {
        Some(prev) if prev.is_unfinished() => Err(Error::InProgress {
            run_id: prev.id,
            status: prev.status,
        }),
        _ => Ok(()),
    }
}

/// Refuses an unattended run outside every maintenance window. The one
/// place the window is decided.
pub fn ensure_window(stack: &Stack, opts: &Options, now: Timestamp) -> Result<(), Error> {
    let schedule = &stack.maintenance.schedule;
    if opts.unattended && !schedule.is_open(now) {
        return Err(Error::OutsideWindow {
            next: schedule.next_opening(now),
        });
    }
    Ok(())
}

/// The checks every run that changes the host passes before it downloads
/// or touches anything: scope, maintenance window, no unfinished run.
pub fn preconditions(
    stack: &Stack,
    journal: &mut dyn Journal,
    now: Timestamp,
    opts: &Options,
    _lock: &dyn RunLock,
) -> Result<(), Error> {
    check_scope(stack, &opts.scope)?;
    if opts.mode == Mode::DryRun {
        return Ok(());
    }
    ensure_window(stack, opts, now)?;
    ensure_no_unfinished_run(journal)
}

/// Whether an unattended run may apply this step without asking: the
/// step's risk within the component's `auto_approve` and no approval needed.
fn unattended_refusal(stack: &Stack, step: &Step) -> Option<String> {
    let limit = stack
        .components
        .get(&step.component)
        .map_or(Risk::Low, |comp| comp.auto_approve);
    if step.needs_approval {
        Some(format!(
            "awaiting approval: a {} change is beyond the policy's `allow`",
            step.change
        ))
    } else if step.risk > limit {
        Some(format!(
            "awaiting approval: {} risk is above auto_approve `{limit}`",
            step.risk
        ))
    } else {
        None
    }
}

/// The record of a new run: one pending step per planned step, or skipped
/// with the reason (scope, approval).
fn new_record(
    stack: &Stack,
    plan: &Plan,
    opts: &Options,
    approver: &mut Approver<'_>,
    now: Timestamp,
) -> RunRecord {
    let mut record = RunRecord {
        id: opts.run_id.clone(),
        started_at: now,
        updated_at: now,
        host: opts.host.clone(),
        user: opts.user.clone(),
        command: opts.command.clone(),
        mode: opts.mode_label().into(),
        environment: opts.environment.clone(),
        status: RunStatus::Planning,
        phases: Vec::new(),
        components: BTreeMap::new(),
        checkpoints: Vec::new(),
        finished_at: None,
    };
    for phase in &plan.phases {
        let mut keys = Vec::new();
        for step in &phase.steps {
            let key = step_key(&step.component, &step.to);
            let mut c = ComponentRecord::pending(&phase.name, step.from.clone(), step.to.clone());
            c.spec = stack
                .components
                .get(&step.component)
                .map(|c| c.spec.clone());
            let skip = if !in_scope(stack, &opts.scope, step) {
                Some("outside the scope of this run".to_owned())
            } else if opts.unattended && !opts.approve_all {
                unattended_refusal(stack, step)
            } else if step.needs_approval
                && !opts.approve_all
                && !approver.approves(step, opts.mode)
            {
                Some(format!(
                    "awaiting approval: {} change, {} risk",
                    step.change, step.risk
                ))
            } else {
                None
            };
            if let Some(why) = skip {
                c.status = ComponentStatus::Skipped;
                c.skip_reason = Some(why);
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
    record
}

/// Applies a plan. `releases` must hold the release of every step's target
/// (for staging); `approver` is asked before each step in safe mode and for
/// steps that need approval when not unattended and not approved.
///
/// Refuses without touching anything when the scope is unknown, when an
/// unattended run is outside every maintenance window, and while an earlier
/// run is unfinished. A dry run goes to [`dry_run`].
pub fn apply(
    stack: &Stack,
    plan: &Plan,
    releases: &BTreeMap<String, Vec<Release>>,
    ports: &mut Ports<'_>,
    opts: &Options,
    lock: &dyn RunLock,
    mut approver: Approver<'_>,
) -> Result<RunReport, Error> {
    if opts.mode == Mode::DryRun {
        return dry_run(stack, plan, releases, ports, opts);
    }
    preconditions(stack, ports.journal, ports.clock.now(), opts, lock)?;
    let t = ports.clock.now();
    let mut record = new_record(stack, plan, opts, &mut approver, t);
    let steps_desc: Vec<String> = plan
        .steps()
        .filter(|s| {
            record.components[&step_key(&s.component, &s.to)].status == ComponentStatus::Pending
        })
        .map(|s| format!("{} {} → {}", s.component, s.from, s.to))
        .collect();
    if steps_desc.is_empty() {
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
    let planned = plan
        .steps()
        .map(|s| (step_key(&s.component, &s.to), s.clone()))
        .collect();
    let mut run = Run::new(stack, releases, ports, opts, record, planned);
    run.save()?;
    run.notify(&Event::RunStarted {
        run_id: opts.run_id.clone(),
        mode: opts.mode_label().into(),
        steps: steps_desc,
    })?;
    run.drive(&mut approver)?;
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
        .map(|(k, c)| step_report(k, c))
        .collect();
    let rec = HistoryRecord::Run {
        run_id: opts.run_id.clone(),
        started_at: started,
        finished_at: ports.clock.now(),
        status: RunStatus::Completed,
        mode: opts.mode_label().into(),
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
        blockers: Vec::new(),
    })
}

/// What a dry run finds wrong with one step now (empty: it would go ahead).
fn dry_problems(
    stack: &Stack,
    releases: &BTreeMap<String, Vec<Release>>,
    ports: &Ports<'_>,
    opts: &Options,
    step: &Step,
    staged: Option<&crate::ports::Staged>,
) -> Vec<String> {
    let comp = &stack.components[&step.component];
    let mut problems = Vec::new();
    let largest = releases
        .get(&step.component)
        .and_then(|rs| rs.iter().find(|r| r.version == step.to))
        .and_then(|r| r.assets.iter().filter_map(|a| a.size).max())
        .unwrap_or(0);
    match ports.store.free_bytes() {
        Ok(free) if free < largest.saturating_mul(2) => problems.push(format!(
            "only {free} bytes free for the store; {} needed (twice the artifact)",
            largest.saturating_mul(2)
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("cannot tell free space: {e}")),
    }
    // The new release's own configuration check, when it is staged already.
    if let Some(staged) = staged
        && let Some(Err(e)) = super::check_config(ports, comp, &staged.dir, &step.to)
    {
        problems.push(e);
    }
    match ports.inspector.installed(comp) {
        Ok(Some(i)) if !i.version.same_release(&step.from) && !i.version.same_release(&step.to) => {
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
    problems
}

/// Plan and preflight only (a Go/No-Go): every check that needs no change
/// to the host — free space, the installed version, health, approval, and
/// the new release's configuration check when it is staged. Reads, never
/// writes, needs no lock; a step with a problem is reported skipped, with it.
pub fn dry_run(
    stack: &Stack,
    plan: &Plan,
    releases: &BTreeMap<String, Vec<Release>>,
    ports: &Ports<'_>,
    opts: &Options,
) -> Result<RunReport, Error> {
    check_scope(stack, &opts.scope)?;
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    for step in plan.steps() {
        if !in_scope(stack, &opts.scope, step) || !stack.components.contains_key(&step.component) {
            continue;
        }
        // Verified once per step: `staged` hashes every binary.
        let staged = ports.store.staged(&step.component, &step.to).ok().flatten();
        let problems = dry_problems(stack, releases, ports, opts, step, staged.as_ref());
        if staged.is_none()
            && stack.components[&step.component]
                .spec
                .config_check
                .is_some()
        {
            notes.push(format!(
                "{}: the configuration is checked with {}'s own checker once it is staged \
                 (not in a dry run)",
                step.component, step.to
            ));
        }
        let ok = problems.is_empty();
        steps.push(StepReport {
            key: step_key(&step.component, &step.to),
            component: step.component.clone(),
            from: Some(step.from.clone()),
            to: Some(step.to.clone()),
            status: if ok {
                ComponentStatus::Pending
            } else {
                ComponentStatus::Skipped
            },
            message: (!ok).then(|| problems.join("; ")),
            skip: (!ok).then_some(super::SkipCause::Other),
        });
    }
    Ok(RunReport {
        run_id: opts.run_id.clone(),
        status: RunStatus::Planning,
        steps,
        notes,
        blockers: Vec::new(),
    })
}

/// A loaded journal whose phases name steps it does not have is damaged.
fn check_consistent(record: &RunRecord) -> Result<(), Error> {
    for p in &record.phases {
        if let Some(k) = p
            .components
            .iter()
            .find(|k| !record.components.contains_key(*k))
        {
            return Err(Error::Damaged(format!(
                "phase `{}` names step `{k}`, which the run record does not have",
                p.name
            )));
        }
    }
    Ok(())
}

/// Finishes an interrupted run: rollbacks in progress first, then every
/// step from its journaled point, then the steps not begun.
pub fn resume(
    stack: &Stack,
    releases: &BTreeMap<String, Vec<Release>>,
    ports: &mut Ports<'_>,
    opts: &Options,
    _lock: &dyn RunLock,
) -> Result<RunReport, Error> {
    let record = ports
        .journal
        .load()
        .map_err(Error::Journal)?
        .ok_or(Error::NothingToResume)?;
    if !record.is_unfinished() {
        return Err(Error::NothingToResume);
    }
    check_consistent(&record)?;
    let mut run = Run::new(stack, releases, ports, opts, record, BTreeMap::new());
    let keys: Vec<String> = run
        .record
        .phases
        .iter()
        .flat_map(|p| p.components.clone())
        .collect();
    run.record_missing_outcomes(&keys)?;
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
            run.comp_mut(key).attempts += 1;
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
        let at = run.now();
        let _ = run.record.transition(RunStatus::RolledBack, at);
    }
    run.drive(&mut Approver::Ask(&mut |_| true))?;
    run.finish_run()
}

impl Run<'_, '_> {
    /// Outcomes a crash kept out of history: a step finished, its record not
    /// yet appended.
    fn record_missing_outcomes(&mut self, keys: &[String]) -> Result<(), Error> {
        for key in keys {
            let c = self.comp(key);
            let end = match c.status {
                ComponentStatus::Completed => TxEnd::Completed,
                ComponentStatus::RolledBack => {
                    TxEnd::RolledBack(c.last_error.clone().unwrap_or_default())
                }
                ComponentStatus::Failed if resume_point(c) == ResumeAction::Nothing => {
                    TxEnd::FailedClean(c.last_error.clone().unwrap_or_default())
                }
                _ => continue,
            };
            if !c.history_recorded && !c.journal.is_empty() {
                self.finish_step(key, &end)?;
            }
        }
        Ok(())
    }
}
