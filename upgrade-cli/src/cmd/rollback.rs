//! `rollback` and `prune`.

use anyhow::{Context as _, Result, bail};
use upgrade_core::engine;
use upgrade_core::journal::{HistoryRecord, Outcome};
use upgrade_core::version::Version;
use upgrade_state::History;

use super::apply::{print_report, with_engine};
use super::status::{print_versions, versions_rows};
use crate::ctx::Ctx;
use crate::exit;
use crate::render::{self, Table};

/// Runs that upgraded something, newest first: (run id, when, what).
fn runs(ctx: &Ctx) -> Result<Vec<(String, String, Vec<String>)>> {
    let records = History::open(&ctx.paths().state_dir)?.read_all()?.records;
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in &records {
        if let HistoryRecord::Component {
            run_id,
            component,
            from,
            to,
            outcome: Outcome::Upgraded,
            finished_at,
            ..
        } = r
        {
            let what = format!(
                "{component} {} → {}",
                from.as_ref().map(ToString::to_string).unwrap_or_default(),
                to.as_ref().map(ToString::to_string).unwrap_or_default()
            );
            match out.iter_mut().find(|(id, ..)| id == run_id) {
                Some(e) => e.2.push(what),
                None => out.push((
                    run_id.clone(),
                    finished_at
                        .round(jiff::Unit::Second)
                        .unwrap_or(*finished_at)
                        .to_string(),
                    vec![what],
                )),
            }
        }
    }
    out.reverse();
    Ok(out)
}

pub fn rollback(
    ctx: &Ctx,
    component: Option<&str>,
    to: Option<&str>,
    run: Option<&str>,
    previous: bool,
    list: bool,
) -> Result<u8> {
    if list {
        let rows = versions_rows(ctx)?;
        let runs = runs(ctx)?;
        if ctx.global.json {
            let runs: Vec<_> = runs.iter().map(|(id, when, what)| serde_json::json!({"run_id": id, "finished_at": when, "upgraded": what})).collect();
            render::json(
                "rollback-list",
                &serde_json::json!({ "components": rows, "runs": runs }),
            )?;
        } else {
            print_versions(&rows);
            if !runs.is_empty() {
                println!();
                let mut t = Table::new(&["RUN", "FINISHED", "UPGRADED"]);
                for (id, when, what) in &runs {
                    t.row(vec![id.clone(), when.clone(), what.join(", ")]);
                }
                t.print();
            }
        }
        return Ok(exit::OK);
    }
    let _lock = ctx.lock()?;
    let report = match (component, to, run, previous) {
        (Some(c), Some(v), None, _) => {
            let v = Version::parse(v)?;
            with_engine(ctx, |p, o| {
                engine::rollback_component(&ctx.stack, c, &v, p, o)
            })??
        }
        (Some(c), None, None, true) => {
            let store = ctx.store();
            let current = store.current(c)?.with_context(|| {
                format!("{c} is not managed by the store yet; nothing to roll back")
            })?;
            let prev = store
                .versions(c)?
                .into_iter()
                .filter(|v| *v < current)
                .max()
                .with_context(|| {
                    format!("no version of {c} older than {current} is in the store")
                })?;
            with_engine(ctx, |p, o| {
                engine::rollback_component(&ctx.stack, c, &prev, p, o)
            })??
        }
        (None, None, run @ Some(_), _) | (None, None, run @ None, true) => {
            let id = match run {
                Some(id) => id.to_owned(),
                None => runs(ctx)?
                    .first()
                    .map(|r| r.0.clone())
                    .context("no run has upgraded anything yet")?,
            };
            let history = History::open(&ctx.paths().state_dir)?.read_all()?.records;
            with_engine(ctx, |p, o| {
                engine::rollback_run(&ctx.stack, &id, &history, p, o)
            })??
        }
        _ => bail!(
            "say what to roll back: --component X --previous | --component X --to VERSION | --run RUN_ID | --previous | --list"
        ),
    };
    print_report(ctx, &report)
}

pub fn prune(ctx: &Ctx, keep: usize, backup_days: u64, dry_run: bool) -> Result<u8> {
    let _lock = ctx.lock()?;
    let store = ctx.store();
    let report =
        engine::prune(&ctx.stack, &store, keep, dry_run).map_err(|e| anyhow::anyhow!("{e}"))?;
    let last_run = upgrade_state::StateStore::open(&ctx.paths().state_dir)?
        .load()
        .ok()
        .flatten()
        .map(|r| r.id);
    let backups = if dry_run {
        Vec::new()
    } else {
        upgrade_state::prune_backups(
            &ctx.paths(),
            std::time::Duration::from_secs(backup_days * 86_400),
            last_run.as_deref(),
        )?
    };
    if ctx.global.json {
        render::json(
            "prune",
            &serde_json::json!({ "dry_run": dry_run, "removed": report.removed, "kept": report.kept, "backups_removed": backups }),
        )?;
        return Ok(exit::OK);
    }
    if report.removed.is_empty() {
        println!(
            "Nothing to prune (keeping {keep} versions per component, the current and the last known-good)."
        );
    }
    for (name, vs) in &report.removed {
        println!(
            "{} {name} {}",
            if dry_run { "would remove" } else { "removed" },
            vs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for b in &backups {
        println!("removed backup {}", b.display());
    }
    Ok(exit::OK)
}
