//! `stage`, `apply` and `resume`.

use std::collections::BTreeMap;

use serde::Serialize;
use upgrade_core::engine::{self, Approver, Mode, RunReport, Scope, step_key};
use upgrade_core::planner::{Plan, Release};
use upgrade_core::ports::{Proof, RunLock, Staged};

use super::journal::{before_run, ensure_state_readable, run_options, with_ports};
use super::{Ui, memory, metrics, prune};
use crate::Error;
use crate::host::{Host, Resolution};

/// What to stage.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Which components.
    pub scope: Scope,
}

/// One release staged (or not).
#[derive(Debug, Clone, Serialize)]
pub struct StagedRow {
    /// The component.
    pub component: String,
    /// The version.
    pub version: String,
    /// Whether it is in the store, verified.
    pub ok: bool,
    /// How it was verified, or why it failed.
    pub detail: String,
    /// The verified release, when it is staged.
    #[serde(skip)]
    pub staged: Option<Staged>,
}

/// What `stage` did.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Per planned step.
    pub staged: Vec<StagedRow>,
    /// Components that could not be detected or listed.
    #[serde(skip)]
    pub errors: BTreeMap<String, String>,
}

impl StageReport {
    /// Releases that failed to stage, plus components with errors.
    pub fn failures(&self) -> usize {
        self.staged.iter().filter(|r| !r.ok).count() + self.errors.len()
    }
}

/// How a proof reads in a report.
pub fn proof_text(proof: &Proof) -> String {
    proof.to_string()
}

/// Downloads and verifies every planned release of the selection.
fn stage_all(
    host: &Host,
    plan: &Plan,
    releases: &BTreeMap<String, Vec<Release>>,
    selected: &[String],
    ui: &dyn Ui,
) -> Vec<StagedRow> {
    let store = host.store();
    let mut out = Vec::new();
    for s in plan.steps().filter(|s| selected.contains(&s.component)) {
        let comp = &host.stack().components[&s.component];
        let Some(release) = releases
            .get(&s.component)
            .and_then(|r| r.iter().find(|r| r.version == s.to))
        else {
            continue;
        };
        ui.staging(&s.component, &s.to);
        let r = store.stage(comp, release, &mut |done, total| ui.bytes(done, total));
        ui.staged();
        out.push(match r {
            Ok(st) => StagedRow {
                component: s.component.clone(),
                version: s.to.to_string(),
                ok: true,
                detail: proof_text(&st.proof),
                staged: Some(st),
            },
            Err(e) => StagedRow {
                component: s.component.clone(),
                version: s.to.to_string(),
                ok: false,
                detail: format!("{e:#}"),
                staged: None,
            },
        });
    }
    out
}

/// Downloads and verifies the planned releases now; switches nothing.
pub fn stage(host: &Host, opts: &StageOptions, ui: &dyn Ui) -> Result<StageReport, Error> {
    let selected = host.selected(&opts.scope)?;
    host.check_pins()?;
    let _lock = host.lock()?;
    host.store()
        .cleanup_partials()
        .map_err(|e| Error::port("cannot clean up partial downloads")(e.into()))?;
    let res = host.resolve();
    let plan = host.plan(&res)?;
    let staged = stage_all(host, &plan, &res.available, &selected, ui);
    Ok(StageReport {
        staged,
        errors: res.errors,
    })
}

/// What to apply, and how.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)] // independent switches, one per flag
pub struct ApplyOptions {
    /// Which steps.
    pub scope: Scope,
    /// How the run proceeds (`DryRun`: plan and preflight only).
    pub mode: Mode,
    /// Approve steps that need approval without asking.
    pub approve_all: bool,
    /// Never ask; only auto-approved steps, only inside a maintenance window.
    pub unattended: bool,
    /// Upgrade a component even when it is unhealthy before the run.
    pub allow_unhealthy: bool,
    /// Move held components too (never in unattended runs).
    pub ignore_holds: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            scope: Scope::All,
            mode: Mode::Standard,
            approve_all: false,
            unattended: false,
            allow_unhealthy: false,
            ignore_holds: false,
        }
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
// Returned once per run and matched at once: boxing the big variant gains nothing.
#[allow(clippy::large_enum_variant)]
pub enum ApplyOutcome {
    /// Unattended, outside every maintenance window: nothing was changed.
    OutsideWindow {
        /// When the next window opens (none within 400 days).
        next_window: Option<jiff::Timestamp>,
    },
    /// The run (or dry run) happened.
    Ran {
        /// What it did.
        report: RunReport,
        /// Components that could not be detected or listed (left out).
        errors: BTreeMap<String, String>,
        /// What retention removed after a successful run.
        pruned: Option<super::PruneOutcome>,
        /// The interrupted run an unattended run finished first (when it
        /// ended cleanly; otherwise `report` is that run and nothing else ran).
        resumed: Option<RunReport>,
        /// Held components the run left alone, with why.
        held: Vec<String>,
    },
}

/// The engine's approver for a UI: someone who can answer, or nobody.
fn approver<'a>(
    ui: &'a dyn Ui,
    ask: &'a mut dyn FnMut(&upgrade_core::planner::Step) -> bool,
) -> Approver<'a> {
    if ui.can_ask() {
        Approver::Ask(ask)
    } else {
        Approver::Nobody
    }
}

/// The held components a plan leaves alone, in words.
fn held_in(plan: &Plan) -> Vec<String> {
    plan.skipped
        .iter()
        .filter(|s| matches!(s.reason, upgrade_core::planner::SkipReason::Held { .. }))
        .map(|s| format!("{}: {}", s.component, super::skip_text(&s.reason)))
        .collect()
}

/// What would stop the whole run, for a dry run's Go/No-Go: the window (an
/// unattended run), another run holding the lock, an unfinished run.
fn dry_run_blockers(host: &Host, o: &engine::Options) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    if let Err(e) = engine::ensure_window(host.stack(), o, jiff::Timestamp::now()) {
        out.push(e.to_string());
    }
    if let upgrade_state::LockState::Held(holder) = host.paths().run_lock().probe()? {
        out.push(match holder {
            Some(h) => format!("another run holds the lock: {h}"),
            None => "another run holds the lock".into(),
        });
    }
    ensure_state_readable(host)?;
    if let Some(run) = host
        .last_run()
        .filter(upgrade_core::journal::RunRecord::is_unfinished)
    {
        out.push(format!(
            "run {} is unfinished: `obs-upgrade resume` first (an unattended run finishes it \
             by itself)",
            run.id
        ));
    }
    Ok(out)
}

/// Carries out the plan: the window and an unfinished run are checked before
/// anything else, every release is downloaded and verified before anything
/// is stopped, then the engine runs its transactions.
pub fn apply(host: &Host, opts: &ApplyOptions, ui: &dyn Ui) -> Result<ApplyOutcome, Error> {
    let stack = host.stack();
    host.check_scope(&opts.scope)?;
    let mut o = run_options(host, opts.mode);
    o.scope = opts.scope.clone();
    o.approve_all = opts.approve_all;
    o.unattended = opts.unattended;
    o.allow_unhealthy = opts.allow_unhealthy;
    let plan_for = |res: &Resolution| -> Result<Plan, Error> {
        let mut holds = host.holds()?;
        if opts.ignore_holds && !opts.unattended {
            holds.holds.clear();
        }
        Ok(host.plan_with(res, &holds))
    };
    if opts.mode == Mode::DryRun {
        host.check_pins()?;
        let res = host.resolve();
        let plan = plan_for(&res)?;
        let mut report = with_ports(host, ui, |p| {
            engine::dry_run(stack, &plan, &res.available, p, &o)
        })??;
        report.blockers = dry_run_blockers(host, &o)?;
        return Ok(ApplyOutcome::Ran {
            report,
            errors: res.errors,
            pruned: None,
            resumed: None,
            held: held_in(&plan),
        });
    }
    if let Err(engine::Error::OutsideWindow { next }) =
        engine::ensure_window(stack, &o, jiff::Timestamp::now())
    {
        return Ok(ApplyOutcome::OutsideWindow { next_window: next });
    }
    let lock = host.lock()?;
    // An unfinished run is finished first: an unattended run does it by
    // itself (rollbacks first, as `resume` does) and goes on only when that
    // ended cleanly; an interactive one refuses before downloading anything.
    let mut resumed = None;
    match before_run(host, &o, &lock) {
        Err(Error::Engine(engine::Error::InProgress { run_id, .. })) if opts.unattended => {
            log::warn!("run {run_id} was interrupted; finishing it first");
            let res = host.resolve();
            let ro = run_options(host, Mode::Standard);
            let report = with_ports(host, ui, |p| {
                engine::resume(stack, &res.available, p, &ro, &lock)
            })??;
            memory::record_failures(host, &lock)?;
            let clean = report.failed() == 0 && !report.status.is_active();
            if !clean {
                return Ok(ApplyOutcome::Ran {
                    report,
                    errors: res.errors,
                    pruned: None,
                    resumed: None,
                    held: Vec::new(),
                });
            }
            resumed = Some(report);
            before_run(host, &o, &lock)?;
        }
        other => other?,
    }
    host.store()
        .cleanup_partials()
        .map_err(|e| Error::port("cannot clean up partial downloads")(e.into()))?;
    upgrade_state::StateStore::open(&host.paths().state_dir)?.remove_stale_temp_files()?;
    host.check_pins()?;
    let res = host.resolve();
    let plan = plan_for(&res)?;
    // Downloads first, before anything is stopped.
    let selected = host.selected(&opts.scope)?;
    for row in stage_all(host, &plan, &res.available, &selected, ui) {
        match row.staged {
            Some(st) => {
                o.staged.insert(step_key(&row.component, &st.version), st);
            }
            None => log::warn!(
                "{} {} could not be staged ahead ({}); the run will report it",
                row.component,
                row.version,
                row.detail
            ),
        }
    }
    let mut ask = |step: &upgrade_core::planner::Step| ui.ask(step);
    let report = with_ports(host, ui, |p| {
        let approve = approver(ui, &mut ask);
        engine::apply(stack, &plan, &res.available, p, &o, &lock, approve)
    })??;
    // A release that failed here is never planned again.
    memory::record_failures(host, &lock)?;
    // Retention runs by itself after every successful run.
    let pruned = if report.status == upgrade_core::journal::RunStatus::Completed {
        let opts = prune::PruneOptions {
            keep: None,
            backup_days: None,
            dry_run: false,
        };
        match prune::prune_locked(host, &opts, &lock) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!("the run succeeded but pruning failed: {e}");
                None
            }
        }
    } else {
        None
    };
    drop(lock);
    metrics::write_after_run(host, &res);
    Ok(ApplyOutcome::Ran {
        report,
        errors: res.errors,
        pruned,
        resumed,
        held: held_in(&plan),
    })
}

/// Finishes an interrupted run.
pub fn resume(host: &Host, ui: &dyn Ui) -> Result<RunReport, Error> {
    let lock = host.lock()?;
    ensure_state_readable(host)?;
    let res = host.resolve();
    let o = run_options(host, Mode::Standard);
    let report = with_ports(host, ui, |p| {
        engine::resume(host.stack(), &res.available, p, &o, &lock)
    })??;
    memory::record_failures(host, &lock)?;
    Ok(report)
}

/// Runs an engine operation that needs the lock (manual rollbacks).
pub(super) fn locked_run(
    host: &Host,
    ui: &dyn Ui,
    f: impl FnOnce(
        &mut engine::Ports<'_>,
        &engine::Options,
        &dyn RunLock,
    ) -> Result<RunReport, engine::Error>,
) -> Result<RunReport, Error> {
    let lock = host.lock()?;
    ensure_state_readable(host)?;
    let o = run_options(host, Mode::Standard);
    let report = with_ports(host, ui, |p| f(p, &o, &lock))??;
    // What an operator moved back stays there until released.
    memory::hold_reverted(host, &report, &lock)?;
    Ok(report)
}
