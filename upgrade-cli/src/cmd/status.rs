//! `status`, `history` and `versions`.

use anyhow::Result;
use serde::Serialize;
use upgrade_core::journal::{ComponentStatus, HistoryRecord, RunRecord};
use upgrade_state::history::Query;
use upgrade_state::{History, LockState, StateStore};

use crate::ctx::Ctx;
use crate::exit;
use crate::render::{self, Table};

#[derive(Serialize)]
struct StatusOut {
    run: Option<RunRecord>,
    lock: LockOut,
}

#[derive(Serialize)]
struct LockOut {
    held: bool,
    holder: Option<upgrade_state::HolderInfo>,
}

fn status_word(s: &ComponentStatus) -> String {
    match s {
        ComponentStatus::Pending => "pending".into(),
        ComponentStatus::InProgress { step } => format!("in progress ({step})"),
        ComponentStatus::Completed => "completed".into(),
        ComponentStatus::Failed => "failed".into(),
        ComponentStatus::RolledBack => "rolled back".into(),
        ComponentStatus::Skipped => "skipped".into(),
    }
}

pub fn status(ctx: &Ctx) -> Result<u8> {
    let paths = ctx.paths();
    let run = StateStore::open(&paths.state_dir)?.load()?;
    let lock = match paths.run_lock().probe()? {
        LockState::Free => LockOut {
            held: false,
            holder: None,
        },
        LockState::Held(h) => LockOut {
            held: true,
            holder: h,
        },
    };
    if ctx.global.json {
        render::json("status", &StatusOut { run, lock })?;
        return Ok(exit::OK);
    }
    match &lock.holder {
        Some(h) if lock.held => println!("lock: held by {h}"),
        _ if lock.held => println!("lock: held (the holder has not written its details yet)"),
        _ => println!("lock: free"),
    }
    let Some(run) = run else {
        println!("No run recorded yet.");
        return Ok(exit::OK);
    };
    println!(
        "run {}: {} ({}, started {}, updated {})",
        run.id,
        run.status,
        run.mode,
        run.started_at
            .round(jiff::Unit::Second)
            .unwrap_or(run.started_at),
        run.updated_at
            .round(jiff::Unit::Second)
            .unwrap_or(run.updated_at)
    );
    if run.is_unfinished() && !lock.held {
        println!("this run was interrupted: run `obs-upgrade resume`");
    }
    let mut t = Table::new(&["COMPONENT", "FROM → TO", "STATUS", "DETAIL"]);
    for phase in &run.phases {
        for key in &phase.components {
            let c = &run.components[key];
            let name = key.split(':').next().unwrap_or(key);
            let ft = format!(
                "{} → {}",
                c.from.as_ref().map(ToString::to_string).unwrap_or_default(),
                c.to.as_ref().map(ToString::to_string).unwrap_or_default()
            );
            t.row(vec![
                name.to_owned(),
                ft,
                status_word(&c.status),
                c.skip_reason
                    .clone()
                    .or_else(|| c.last_error.clone())
                    .unwrap_or_default(),
            ]);
        }
    }
    if !t.is_empty() {
        t.print();
    }
    Ok(exit::OK)
}

pub fn history(ctx: &Ctx, component: Option<&str>, limit: usize, stats: bool) -> Result<u8> {
    let h = History::open(&ctx.paths().state_dir)?;
    if stats {
        let s = h.stats()?;
        if ctx.global.json {
            render::json("history-stats", &s)?;
        } else {
            println!(
                "runs: {} ({} completed, success rate {:.0}%), mean duration {:.1} s",
                s.runs,
                s.completed,
                s.success_rate * 100.0,
                s.mean_duration_secs
            );
            let mut t = Table::new(&[
                "COMPONENT",
                "ATTEMPTS",
                "UPGRADED",
                "FAILED",
                "ROLLED BACK",
                "MEAN",
            ]);
            for (n, c) in &s.components {
                t.row(vec![
                    n.clone(),
                    c.attempts.to_string(),
                    c.upgraded.to_string(),
                    c.failed.to_string(),
                    c.rolled_back.to_string(),
                    format!("{:.1} s", c.mean_duration_secs),
                ]);
            }
            if !t.is_empty() {
                t.print();
            }
        }
        return Ok(exit::OK);
    }
    let read = h.read_all()?;
    for s in &read.skipped {
        log::warn!(
            "skipped damaged history line {}:{}",
            s.file.display(),
            s.line
        );
    }
    let records = h.query(&Query {
        component: component.map(str::to_owned),
        limit: Some(limit),
        ..Query::default()
    })?;
    if ctx.global.json {
        render::json("history", &serde_json::json!({ "records": records }))?;
        return Ok(exit::OK);
    }
    if records.is_empty() {
        println!("No history yet.");
        return Ok(exit::OK);
    }
    let mut t = Table::new(&["WHEN", "RUN", "WHAT", "OUTCOME"]);
    for r in &records {
        let when = r
            .at()
            .round(jiff::Unit::Second)
            .unwrap_or(r.at())
            .to_string();
        match r {
            HistoryRecord::Run {
                run_id,
                status,
                mode,
                summary,
                ..
            } => t.row(vec![
                when,
                run_id.clone(),
                format!("run ({mode})"),
                format!("{status}: {summary}"),
            ]),
            HistoryRecord::Component {
                run_id,
                component,
                from,
                to,
                outcome,
                error,
                ..
            } => {
                let ft = format!(
                    "{component} {} → {}",
                    from.as_ref().map(ToString::to_string).unwrap_or_default(),
                    to.as_ref().map(ToString::to_string).unwrap_or_default()
                );
                let o = serde_json::to_value(outcome)?
                    .as_str()
                    .unwrap_or_default()
                    .replace('_', " ");
                t.row(vec![
                    when,
                    run_id.clone(),
                    ft,
                    error.as_ref().map_or(o.clone(), |e| format!("{o}: {e}")),
                ]);
            }
            HistoryRecord::NotificationFailed {
                run_id,
                notifier,
                error,
                ..
            } => t.row(vec![
                when,
                run_id.clone(),
                format!("notify {notifier}"),
                format!("failed: {error}"),
            ]),
        }
    }
    t.print();
    Ok(exit::OK)
}

#[derive(Serialize)]
pub struct VersionsRow {
    pub name: String,
    pub versions: Vec<String>,
    pub current: Option<String>,
    pub last_good: Option<String>,
}

pub fn versions_rows(ctx: &Ctx) -> Result<Vec<VersionsRow>> {
    let store = ctx.store();
    let mut rows = Vec::new();
    for name in ctx.stack.components.keys() {
        rows.push(VersionsRow {
            name: name.clone(),
            versions: store
                .versions(name)?
                .iter()
                .map(ToString::to_string)
                .collect(),
            current: store.current(name)?.map(|v| v.to_string()),
            last_good: store.last_good(name)?.map(|v| v.to_string()),
        });
    }
    Ok(rows)
}

pub fn print_versions(rows: &[VersionsRow]) {
    let mut t = Table::new(&["COMPONENT", "CURRENT", "LAST GOOD", "IN THE STORE"]);
    for r in rows {
        let dash = || "-".to_owned();
        t.row(vec![
            r.name.clone(),
            r.current.clone().unwrap_or_else(dash),
            r.last_good.clone().unwrap_or_else(dash),
            if r.versions.is_empty() {
                "(not managed yet)".into()
            } else {
                r.versions.join(", ")
            },
        ]);
    }
    t.print();
}

pub fn versions(ctx: &Ctx) -> Result<u8> {
    let rows = versions_rows(ctx)?;
    if ctx.global.json {
        render::json("versions", &serde_json::json!({ "components": rows }))?;
    } else {
        print_versions(&rows);
    }
    Ok(exit::OK)
}
