//! `check` and `plan`.

use anyhow::Result;
use serde::Serialize;
use upgrade_core::planner::Plan;

use super::{block_text, skip_text};
use crate::args::Selection;
use crate::ctx::{Ctx, Resolution};
use crate::exit::{self, color_enabled};
use crate::render::{self, Table};

#[derive(Serialize)]
struct CheckRow {
    name: String,
    installed: Option<String>,
    available: Option<String>,
    target: Option<String>,
    change: Option<String>,
    risk: Option<String>,
    needs_approval: bool,
    status: &'static str,
    reason: Option<String>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct CheckOut {
    environment: Option<String>,
    updates_available: bool,
    components: Vec<CheckRow>,
    warnings: Vec<String>,
}

fn rows(ctx: &Ctx, res: &Resolution, plan: &Plan) -> Vec<CheckRow> {
    let mut out = Vec::new();
    for name in ctx.stack.components.keys() {
        let installed = res.installed.get(name).map(ToString::to_string);
        let available = res
            .available
            .get(name)
            .and_then(|r| r.iter().map(|r| &r.version).max())
            .map(ToString::to_string);
        let steps: Vec<_> = plan.steps().filter(|s| &s.component == name).collect();
        let notes: Vec<String> = plan
            .warnings
            .iter()
            .filter(|w| &w.component == name)
            .map(|w| w.message.clone())
            .collect();
        let mut row = CheckRow {
            name: name.clone(),
            installed,
            available,
            target: None,
            change: None,
            risk: None,
            needs_approval: false,
            status: "up_to_date",
            reason: None,
            notes,
        };
        if let Some(e) = res.errors.get(name) {
            row.status = "error";
            row.reason = Some(e.clone());
        } else if let Some(last) = steps.last() {
            row.status = "update";
            row.target = Some(last.to.to_string());
            row.change = steps.iter().map(|s| s.change).max().map(|c| c.to_string());
            row.risk = steps.iter().map(|s| s.risk).max().map(|r| r.to_string());
            row.needs_approval = steps.iter().any(|s| s.needs_approval);
            if steps.len() > 1 {
                row.reason = Some(format!(
                    "through {}",
                    steps[..steps.len() - 1]
                        .iter()
                        .map(|s| s.to.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        } else if let Some(b) = plan.blocked.iter().find(|b| &b.component == name) {
            row.status = "blocked";
            row.reason = Some(block_text(&b.reason));
        } else if let Some(s) = plan.skipped.iter().find(|s| &s.component == name) {
            row.status = match s.reason {
                upgrade_core::planner::SkipReason::NotInstalled => "not_installed",
                upgrade_core::planner::SkipReason::UpToDate { .. } => "up_to_date",
                _ => "skipped",
            };
            row.reason = Some(skip_text(&s.reason));
        }
        out.push(row);
    }
    out
}

pub fn check(ctx: &Ctx, exit_code: bool, notify: bool) -> Result<u8> {
    let res = ctx.resolve();
    let plan = ctx.plan(&res);
    let components = rows(ctx, &res, &plan);
    let updates = components.iter().any(|r| r.status == "update");
    if notify && updates {
        let lines: Vec<String> = components
            .iter()
            .filter(|r| r.status == "update")
            .map(|r| {
                format!(
                    "{} {} → {}",
                    r.name,
                    r.installed.clone().unwrap_or_default(),
                    r.target.clone().unwrap_or_default()
                )
            })
            .collect();
        if let Err(e) = ctx
            .notifier()
            .notify(&upgrade_core::ports::Event::UpdatesAvailable { updates: lines })
        {
            log::warn!("notification failed: {e}");
        }
    }
    if ctx.global.json {
        render::json(
            "check",
            &CheckOut {
                environment: ctx.stack.environment.clone(),
                updates_available: updates,
                components,
                warnings: plan.warnings.iter().map(|w| w.message.clone()).collect(),
            },
        )?;
    } else {
        let color = color_enabled(ctx.global.color);
        let mut t = Table::new(&[
            "COMPONENT",
            "INSTALLED",
            "AVAILABLE",
            "UPDATE",
            "CHANGE",
            "RISK",
            "NOTES",
        ]);
        for r in &components {
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
        t.print();
        for w in &plan.warnings {
            println!("warning: {}", w.message);
        }
    }
    Ok(if exit_code && updates {
        exit::UPDATES
    } else {
        exit::OK
    })
}

#[derive(Serialize)]
struct PlanOut<'a> {
    environment: Option<String>,
    #[serde(flatten)]
    plan: &'a Plan,
    errors: &'a std::collections::BTreeMap<String, String>,
}

pub fn plan(ctx: &Ctx, sel: &Selection) -> Result<u8> {
    let selected: Vec<String> = ctx.selected(sel)?.iter().map(|c| c.name.clone()).collect();
    let res = ctx.resolve();
    let mut plan = ctx.plan(&res);
    for p in &mut plan.phases {
        p.steps.retain(|s| selected.contains(&s.component));
    }
    plan.phases.retain(|p| !p.steps.is_empty());
    plan.skipped.retain(|s| selected.contains(&s.component));
    plan.blocked.retain(|b| selected.contains(&b.component));
    if ctx.global.json {
        render::json(
            "plan",
            &PlanOut {
                environment: ctx.stack.environment.clone(),
                plan: &plan,
                errors: &res.errors,
            },
        )?;
        return Ok(exit::OK);
    }
    let color = color_enabled(ctx.global.color);
    if plan.is_empty() {
        println!("Nothing to upgrade.");
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
        t.print();
    }
    let mut other = Table::new(&["COMPONENT", "", "WHY"]);
    for b in &plan.blocked {
        other.row(vec![
            b.component.clone(),
            "blocked".into(),
            block_text(&b.reason),
        ]);
    }
    for (name, e) in &res.errors {
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
        println!();
        other.print();
    }
    for w in &plan.warnings {
        println!("warning: {}", w.message);
    }
    Ok(exit::OK)
}
