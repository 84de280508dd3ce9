//! Rollbacks an operator asks for: one component to a version in the
//! store, or every component a past run changed.

use std::collections::BTreeMap;

use super::{Approver, Error, Mode, Options, Ports, RunReport, Scope, apply, dry_run};
use crate::config::{OnFailure, Stack};
use crate::journal::{HistoryRecord, Outcome};
use crate::planner::{PhasePlan, Plan, Step};
use crate::ports::RunLock;
use crate::risk::Risk;
use crate::version::Version;

/// Moves one component to a version already in the store (a manual rollback),
/// as a run of its own.
pub fn rollback_component(
    stack: &Stack,
    component: &str,
    to: &Version,
    ports: &mut Ports<'_>,
    opts: &Options,
    lock: &dyn RunLock,
) -> Result<RunReport, Error> {
    let comp = stack.components.get(component).ok_or_else(|| {
        Error::Scope(format!(
            "unknown component `{component}`{}",
            crate::suggest::hint(component, stack.components.keys().map(String::as_str))
        ))
    })?;
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
        Risk::High,
        Some("manual rollback".into()),
    );
    let plan = Plan {
        phases: vec![PhasePlan {
            name: comp.phase.clone(),
            on_failure: OnFailure::Stop,
            atomic: false,
            steps: vec![step],
        }],
        ..Plan::default()
    };
    let mut o = opts.clone();
    o.manual_rollback = true;
    o.scope = Scope::All;
    o.approve_all = true;
    o.allow_unhealthy = true;
    if o.mode == Mode::DryRun {
        return dry_run(stack, &plan, &BTreeMap::new(), ports, &o);
    }
    let approve = Approver::Ask(&mut |_| true);
    apply(stack, &plan, &BTreeMap::new(), ports, &o, lock, approve)
}

/// Puts every component a past run changed back to the version it had
/// before that run (from history).
pub fn rollback_run(
    stack: &Stack,
    run_id: &str,
    history: &[HistoryRecord],
    ports: &mut Ports<'_>,
    opts: &Options,
    lock: &dyn RunLock,
) -> Result<RunReport, Error> {
    let mut before: BTreeMap<String, Version> = BTreeMap::new();
    for r in history {
        if let HistoryRecord::Component {
            run_id: id,
            component,
            from: Some(from),
            outcome: Outcome::Upgraded | Outcome::Reverted,
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
                Risk::High,
                Some(format!("rollback of run {run_id}")),
            ),
        ));
    }
    // Reverse phase order: undo the last phase first.
    let mut phases: Vec<PhasePlan> = Vec::new();
    for p in stack.phases.iter().rev() {
        let s: Vec<Step> = steps
            .iter()
            .filter(|(ph, _)| ph == &p.name)
            .map(|(_, s)| s.clone())
            .collect();
        if !s.is_empty() {
            phases.push(PhasePlan {
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
    o.manual_rollback = true;
    o.approve_all = true;
    o.allow_unhealthy = true;
    let approve = Approver::Ask(&mut |_| true);
    apply(stack, &plan, &BTreeMap::new(), ports, &o, lock, approve)
}
