//! `stage`, `apply` and `resume`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use upgrade_core::engine::{self, Mode, Options, Ports, RunReport};
use upgrade_core::journal::{ComponentStatus, StepEvent, TxStep};
use upgrade_core::planner::{Plan, Release, Step};
use upgrade_state::FileJournal;
use upgrade_systemd::health::CatalogHealth;

use crate::args::{ModeArg, Selection};
use crate::ctx::Ctx;
use crate::exit;
use crate::render::{self, Table};

#[allow(clippy::struct_excessive_bools)] // one per flag
pub struct ApplyArgs {
    pub dry_run: bool,
    pub mode: ModeArg,
    pub yes: bool,
    pub unattended: bool,
    pub allow_unhealthy: bool,
}

fn interactive(ctx: &Ctx) -> bool {
    !ctx.global.json && !ctx.global.quiet && std::io::stderr().is_terminal()
}

/// Downloads and verifies every step's release of the selection, with progress.
fn stage_all(
    ctx: &Ctx,
    plan: &Plan,
    releases: &BTreeMap<String, Vec<Release>>,
    selected: &[String],
) -> Vec<(String, String, Result<String, String>)> {
    let store = ctx.store();
    let mut out = Vec::new();
    for s in plan.steps().filter(|s| selected.contains(&s.component)) {
        let comp = &ctx.stack.components[&s.component];
        let Some(release) = releases
            .get(&s.component)
            .and_then(|r| r.iter().find(|r| r.version == s.to))
        else {
            continue;
        };
        let bar = interactive(ctx).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(format!("{} {}", s.component, s.to));
            b
        });
        if bar.is_none() && !ctx.global.quiet && !ctx.global.json {
            eprintln!("staging {} {}", s.component, s.to);
        }
        let r = store.stage(comp, release, &mut |done, total| {
            if let Some(b) = &bar {
                if let Some(t) = total {
                    b.set_length(t);
                }
                b.set_position(done);
            }
        });
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        out.push((
            s.component.clone(),
            s.to.to_string(),
            r.map(|st| format!("verified ({:?})", st.proof))
                .map_err(|e| e.to_string()),
        ));
    }
    out
}

pub fn stage(ctx: &Ctx, sel: &Selection) -> Result<u8> {
    let selected: Vec<String> = ctx.selected(sel)?.iter().map(|c| c.name.clone()).collect();
    let _lock = ctx.lock()?;
    ctx.store().cleanup_partials()?;
    let res = ctx.resolve();
    let plan = ctx.plan(&res);
    let results = stage_all(ctx, &plan, &res.available, &selected);
    for (name, e) in &res.errors {
        eprintln!("error: {name}: {e}");
    }
    let failed = results.iter().filter(|r| r.2.is_err()).count() + res.errors.len();
    if ctx.global.json {
        let rows: Vec<_> = results.iter().map(|(c, v, r)| serde_json::json!({"component": c, "version": v, "ok": r.is_ok(), "detail": r.as_ref().map_or_else(Clone::clone, Clone::clone)})).collect();
        render::json("stage", &serde_json::json!({ "staged": rows }))?;
    } else if results.is_empty() {
        println!("Nothing to stage.");
    } else {
        let mut t = Table::new(&["COMPONENT", "VERSION", "RESULT"]);
        for (c, v, r) in &results {
            t.row(vec![
                c.clone(),
                v.clone(),
                match r {
                    Ok(d) => d.clone(),
                    Err(e) => format!("FAILED: {e}"),
                },
            ]);
        }
        t.print();
    }
    Ok(if failed > 0 { exit::FAILED } else { exit::OK })
}

fn prompt(step: &Step) -> bool {
    eprint!(
        "{} {} → {}: {} change, {} risk{}. Apply? [y/N] ",
        step.component,
        step.from,
        step.to,
        step.change,
        step.risk,
        if step.needs_approval {
            " (beyond the policy's `allow`)"
        } else {
            ""
        }
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

fn options(ctx: &Ctx, mode: Mode) -> Options {
    let mut o = Options::new(&engine::new_run_id());
    o.mode = mode;
    o.host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    o.user = std::env::var("USER").unwrap_or_default();
    o.command = std::env::args().collect();
    o.environment.clone_from(&ctx.stack.environment);
    o.pause = None;
    o
}

/// The journal, with the fault-injection hook of the end-to-end tests:
/// `OBS_UPGRADE_TEST_KILL_AFTER_SAVE=k` makes the process SIGKILL itself
/// right after its k-th durable save of the run record (docs/testing.md).
struct Journal {
    inner: FileJournal,
    saves: usize,
    kill_after: Option<usize>,
}

impl upgrade_core::ports::Journal for Journal {
    fn load(
        &mut self,
    ) -> Result<Option<upgrade_core::journal::RunRecord>, upgrade_core::ports::PortError> {
        self.inner.load()
    }
    fn save(
        &mut self,
        run: &upgrade_core::journal::RunRecord,
    ) -> Result<(), upgrade_core::ports::PortError> {
        self.inner.save(run)?;
        self.saves += 1;
        if self.kill_after == Some(self.saves) {
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
        }
        Ok(())
    }
    fn append_history(
        &mut self,
        record: &upgrade_core::journal::HistoryRecord,
    ) -> Result<(), upgrade_core::ports::PortError> {
        self.inner.append_history(record)
    }
}

/// Runs `f` with every real adapter wired in.
fn with_ports<T>(ctx: &Ctx, f: impl FnOnce(&mut Ports<'_>) -> T) -> Result<T> {
    let kill_after = std::env::var("OBS_UPGRADE_TEST_KILL_AFTER_SAVE")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut journal = Journal {
        inner: FileJournal::open(&ctx.paths()).map_err(|e| anyhow::anyhow!("{e}"))?,
        saves: 0,
        kill_after,
    };
    let store = ctx.store();
    let services = ctx.services();
    let health = CatalogHealth::new(services.clone(), "127.0.0.1");
    let inspector = ctx.inspector();
    let backup = ctx.backup();
    let notifier = ctx.notifier();
    let spinner = interactive(ctx).then(|| {
        let s = ProgressBar::new_spinner();
        s.enable_steady_tick(Duration::from_millis(120));
        s
    });
    let quiet = ctx.global.quiet || ctx.global.json;
    let observe = |key: &str, step: TxStep, ev: &StepEvent| match (&spinner, ev) {
        (Some(s), StepEvent::Began) => s.set_message(format!("{key}: {step}…")),
        (Some(s), StepEvent::Failed { error }) => {
            s.println(format!("{key}: {step} failed: {error}"));
        }
        (None, StepEvent::Done { result }) if !quiet => eprintln!("{key}: {step}: {result}"),
        (None, StepEvent::Failed { error }) if !quiet => eprintln!("{key}: {step} FAILED: {error}"),
        _ => {}
    };
    let mut ports = Ports {
        journal: &mut journal,
        store: &store,
        services: services.as_ref(),
        health: &health,
        inspector: &inspector,
        backup: &backup,
        notifier: notifier.as_ref(),
        layout: &ctx.layout,
        observer: Some(&observe),
    };
    let out = f(&mut ports);
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    Ok(out)
}

pub fn print_report(ctx: &Ctx, report: &RunReport) -> Result<u8> {
    let code = if report.failed() + report.rolled_back() > 0 {
        exit::FAILED
    } else {
        exit::OK
    };
    if ctx.global.json {
        render::json("run", report)?;
        return Ok(code);
    }
    if report.steps.is_empty()
        || report.nothing_to_do()
            && report.steps.iter().all(|s| {
                s.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("already at"))
            })
    {
        println!("Nothing to do: every component is where its policy wants it.");
        return Ok(code);
    }
    let mut t = Table::new(&["COMPONENT", "FROM → TO", "RESULT", "DETAIL"]);
    for s in &report.steps {
        let result = match &s.status {
            ComponentStatus::Completed if s.to < s.from => "downgraded".to_owned(),
            ComponentStatus::Completed => "upgraded".to_owned(),
            ComponentStatus::RolledBack => "rolled back".to_owned(),
            ComponentStatus::Failed => "FAILED".to_owned(),
            ComponentStatus::Skipped => "skipped".to_owned(),
            ComponentStatus::Pending => {
                if report.status == upgrade_core::journal::RunStatus::Planning {
                    "ok".into()
                } else {
                    "pending".into()
                }
            }
            ComponentStatus::InProgress { step } => format!("interrupted at {step}"),
        };
        let ft = format!(
            "{} → {}",
            s.from.as_ref().map(ToString::to_string).unwrap_or_default(),
            s.to.as_ref().map(ToString::to_string).unwrap_or_default()
        );
        t.row(vec![
            s.component.clone(),
            ft,
            result,
            s.message.clone().unwrap_or_default(),
        ]);
    }
    t.print();
    for n in &report.notes {
        println!("note: {n}");
    }
    if report.status != upgrade_core::journal::RunStatus::Planning {
        println!("run {}: {}", report.run_id, report.status);
    }
    Ok(code)
}

pub fn apply(ctx: &Ctx, sel: &Selection, a: &ApplyArgs) -> Result<u8> {
    ctx.selected(sel)?;
    let mode = if a.dry_run {
        Mode::DryRun
    } else {
        match a.mode {
            ModeArg::Safe => Mode::Safe,
            ModeArg::Standard => Mode::Standard,
            ModeArg::Fast => Mode::Fast,
        }
    };
    if a.unattended && !a.dry_run {
        let now = jiff::Timestamp::now();
        let schedule = &ctx.stack.maintenance.schedule;
        if !schedule.is_open(now) {
            let next = schedule.next_opening(now).map_or_else(
                || "no window opens in the next 400 days".to_owned(),
                |t| format!("the next one opens at {t}"),
            );
            if ctx.global.json {
                render::json(
                    "run",
                    &serde_json::json!({ "status": "OUTSIDE_WINDOW", "steps": [], "next_window": schedule.next_opening(now) }),
                )?;
            } else {
                println!("Outside every maintenance window: nothing was changed; {next}.");
            }
            return Ok(exit::OK);
        }
    }
    let guard = if a.dry_run { None } else { Some(ctx.lock()?) };
    if guard.is_some() {
        ctx.store().cleanup_partials()?;
        upgrade_state::StateStore::open(&ctx.paths().state_dir)?.remove_stale_temp_files()?;
    }
    let res = ctx.resolve();
    for (name, e) in &res.errors {
        eprintln!("error: {name}: {e}");
    }
    let plan = ctx.plan(&res);
    let mut o = options(ctx, mode);
    o.scope = Ctx::scope(sel);
    o.approve_all = a.yes;
    o.unattended = a.unattended;
    o.allow_unhealthy = a.allow_unhealthy;
    o.lock_held = guard.is_some() || a.dry_run;
    // Downloads first, with progress, before anything is stopped.
    if !a.dry_run {
        let selected: Vec<String> = ctx.selected(sel)?.iter().map(|c| c.name.clone()).collect();
        for (c, v, r) in stage_all(ctx, &plan, &res.available, &selected) {
            if let Err(e) = r {
                log::warn!("{c} {v} could not be staged ahead ({e}); the run will report it");
            }
        }
    }
    let can_prompt = !a.unattended
        && !ctx.global.json
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    let report = with_ports(ctx, |p| {
        engine::apply(&ctx.stack, &plan, &res.available, p, &o, &mut |step| {
            if can_prompt {
                prompt(step)
            } else {
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
        })
    })?
    .context("the run did not complete")?;
    drop(guard);
    if !a.dry_run {
        super::unattended::write_metrics_after_run(ctx, &res.available);
    }
    let code = print_report(ctx, &report)?;
    Ok(if res.errors.is_empty() {
        code
    } else {
        exit::FAILED
    })
}

pub fn resume(ctx: &Ctx) -> Result<u8> {
    let _lock = ctx.lock()?;
    let res = ctx.resolve();
    let o = options(ctx, Mode::Standard);
    let report = with_ports(ctx, |p| engine::resume(&ctx.stack, &res.available, p, &o))?
        .context("cannot resume")?;
    print_report(ctx, &report)
}

/// Manual rollbacks go through the same wiring.
pub fn with_engine<T>(ctx: &Ctx, f: impl FnOnce(&mut Ports<'_>, &Options) -> T) -> Result<T> {
    let o = options(ctx, Mode::Standard);
    with_ports(ctx, |p| f(p, &o))
}
