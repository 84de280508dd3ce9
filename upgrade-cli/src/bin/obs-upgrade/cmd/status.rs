//! `status`, `history` and `versions`.

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, HistoryOptions};
use upgrade_core::journal::{ComponentStatus, HistoryRecord};

use crate::args::Global;
use crate::exit;
use crate::render::{self, Table};

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

pub fn status(g: &Global, host: &Host) -> Result<u8> {
    let report = ops::status(host)?;
    if g.json {
        render::json("status", &report)?;
        return Ok(exit::OK);
    }
    let lock = &report.lock;
    match &lock.holder {
        Some(h) if lock.held => outln!("lock: held by {h}"),
        _ if lock.held => outln!("lock: held (the holder has not written its details yet)"),
        _ => outln!("lock: free"),
    }
    for (name, h) in &report.holds.holds {
        outln!("held: {name} at {} ({}, by {})", h.version, h.reason, h.by);
    }
    for (name, list) in &report.holds.bad {
        for b in list {
            outln!(
                "failed here: {name} {} in run {} (never planned until `obs-upgrade \
                 quarantine clear {name}`)",
                b.version,
                b.run_id
            );
        }
    }
    for f in &report.advisories {
        outln!(
            "advisory: {f} (as of the last check){}",
            f.url
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default()
        );
    }
    let Some(run) = &report.run else {
        outln!("No run recorded yet.");
        return Ok(exit::OK);
    };
    outln!(
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
    if report.needs_resume() {
        outln!("this run was interrupted: run `obs-upgrade resume`");
    }
    let mut t = Table::new(&["COMPONENT", "FROM → TO", "STATUS", "DETAIL"]);
    for phase in &run.phases {
        for key in &phase.components {
            let c = &run.components[key];
            let name = key.split(':').next().unwrap_or(key);
            let ft = format!("{} → {}", c.from, c.to);
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
        t.print()?;
    }
    Ok(exit::OK)
}

pub fn history(
    g: &Global,
    host: &Host,
    component: Option<&str>,
    limit: usize,
    stats: bool,
) -> Result<u8> {
    if stats {
        let s = ops::history_stats(host)?;
        if g.json {
            render::json("history-stats", &s)?;
        } else {
            outln!(
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
                t.print()?;
            }
        }
        return Ok(exit::OK);
    }
    let report = ops::history(
        host,
        &HistoryOptions {
            component: component.map(str::to_owned),
            limit: Some(limit),
        },
    )?;
    for line in &report.skipped_lines {
        log::warn!("skipped damaged history line {line}");
    }
    let records = &report.records;
    if g.json {
        render::json("history", &report)?;
        return Ok(exit::OK);
    }
    if records.is_empty() {
        outln!("No history yet.");
        return Ok(exit::OK);
    }
    let mut t = Table::new(&["WHEN", "RUN", "WHAT", "OUTCOME"]);
    for r in records {
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
    t.print()?;
    Ok(exit::OK)
}

pub fn versions(g: &Global, host: &Host) -> Result<u8> {
    let rows = ops::versions(host)?;
    if g.json {
        render::json("versions", &serde_json::json!({ "components": rows }))?;
    } else {
        render::versions(&rows)?;
    }
    Ok(exit::OK)
}
