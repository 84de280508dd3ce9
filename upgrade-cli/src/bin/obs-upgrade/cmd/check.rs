//! `check` and `plan`: arguments → options → one library call → render.

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, CheckOptions, PlanOptions, block_text, skip_text};

use super::scope;
use crate::args::{Global, Selection};
use crate::exit::{self, color_enabled};
use crate::render::{self, Table};

pub fn check(g: &Global, host: &Host, exit_code: bool, notify: bool) -> Result<u8> {
    let report = ops::check(host, &CheckOptions { notify })?;
    let updates = report.updates_available;
    let components = &report.components;
    if g.json {
        render::json("check", &report)?;
    } else {
        let color = color_enabled(g.color);
        let mut t = Table::new(&[
            "COMPONENT",
            "INSTALLED",
            "AVAILABLE",
            "UPDATE",
            "CHANGE",
            "RISK",
            "NOTES",
        ]);
        for r in components {
            let update = match r.status {
                "update" => format!(
                    "→ {}{}",
                    r.target.clone().unwrap_or_default(),
                    if r.needs_approval {
                        " (needs approval)"
                    } else {
                        ""
                    }
                ),
                "not_installed" => "not installed".into(),
                "up_to_date" => "up to date".into(),
                other => other.replace('_', " "),
            };
            let notes = r
                .reason
                .iter()
                .chain(&r.notes)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            t.row(vec![
                r.name.clone(),
                r.installed.clone().unwrap_or_else(|| "-".into()),
                r.available.clone().unwrap_or_else(|| "-".into()),
                update,
                r.change.clone().unwrap_or_default(),
                r.risk
                    .as_deref()
                    .map(|x| match x {
                        "high" => render::paint(color, "31", x),
                        "medium" => render::paint(color, "33", x),
                        _ => x.to_owned(),
                    })
                    .unwrap_or_default(),
                if r.status == "up_to_date" && r.reason.is_some() {
                    r.notes.join("; ")
                } else {
                    notes
                },
            ]);
        }
        t.print()?;
        for w in &report.warnings {
            outln!("warning: {w}");
        }
    }
    // Never "up to date" (0) or "updates" (100) when something could not be read.
    Ok(if report.has_errors() {
        exit::FAILED
    } else if exit_code && updates {
        exit::UPDATES
    } else {
        exit::OK
    })
}

pub fn plan(g: &Global, host: &Host, sel: &Selection) -> Result<u8> {
    let report = ops::plan(host, &PlanOptions { scope: scope(sel) })?;
    let code = if report.has_errors() {
        exit::FAILED
    } else {
        exit::OK
    };
    if g.json {
        render::json("plan", &report)?;
        return Ok(code);
    }
    let (plan, selected) = (&report.plan, &report.selected);
    let color = color_enabled(g.color);
    if plan.is_empty() {
        outln!("Nothing to upgrade.");
    } else {
        let mut t = Table::new(&[
            "PHASE",
            "COMPONENT",
            "FROM → TO",
            "CHANGE",
            "RISK",
            "APPROVAL",
            "REASONS",
        ]);
        for phase in &plan.phases {
            for s in &phase.steps {
                let mut reasons: Vec<String> = s.risk_reasons.iter().skip(1).cloned().collect();
                reasons.extend(s.notes.iter().cloned());
                t.row(vec![
                    phase.name.clone(),
                    s.component.clone(),
                    format!(
                        "{} → {}{}",
                        s.from,
                        s.to,
                        if s.stepping_stone {
                            " (stepping stone)"
                        } else {
                            ""
                        }
                    ),
                    s.change.to_string(),
                    render::risk(color, s.risk),
                    if s.needs_approval {
                        "needed".into()
                    } else {
                        "auto".into()
                    },
                    reasons.join("; "),
                ]);
            }
        }
        t.print()?;
    }
    let mut other = Table::new(&["COMPONENT", "", "WHY"]);
    for b in &plan.blocked {
        other.row(vec![
            b.component.clone(),
            "blocked".into(),
            block_text(&b.reason),
        ]);
    }
    for (name, e) in &report.errors {
        if selected.contains(name) {
            other.row(vec![name.clone(), "error".into(), e.clone()]);
        }
    }
    for s in &plan.skipped {
        other.row(vec![
            s.component.clone(),
            "skipped".into(),
            skip_text(&s.reason),
        ]);
    }
    if !other.is_empty() {
        outln!();
        other.print()?;
    }
    for w in &plan.warnings {
        outln!("warning: {}", w.message);
    }
    Ok(code)
}
