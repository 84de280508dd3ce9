//! `check` and `plan`: arguments → options → one library call → render.

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, CheckOptions, PlanOptions, block_text, skip_text};
use upgrade_core::advisory::{Finding, Severity};

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
            "RELEASED",
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
                r.candidate
                    .as_ref()
                    .and_then(|c| c.published_at)
                    .map(day)
                    .unwrap_or_default(),
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
        let links: Vec<_> = components
            .iter()
            .filter(|r| matches!(r.status, "update" | "blocked"))
            .filter_map(|r| Some((r, r.candidate.as_ref()?)))
            .filter(|(_, c)| c.url.is_some())
            .collect();
        if !links.is_empty() {
            outln!("\nRelease pages:");
            for (r, c) in links {
                outln!(
                    "  {} {}: {}",
                    r.name,
                    c.version,
                    c.url.as_deref().unwrap_or_default()
                );
            }
        }
        let findings: Vec<_> = components.iter().flat_map(|r| &r.advisories).collect();
        security(color, &findings)?;
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

/// A publish date as a day (UTC).
fn day(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// Advisories that affect installed versions, one paragraph each.
pub fn security(color: bool, findings: &[&Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    outln!("\n{}", render::paint(color, "31", "Security advisories:"));
    for f in findings {
        let severity = match f.severity {
            Severity::High | Severity::Critical => {
                render::paint(color, "31", &f.severity.to_string())
            }
            Severity::Medium => render::paint(color, "33", &f.severity.to_string()),
            _ => f.severity.to_string(),
        };
        let cve = f
            .cve
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default();
        outln!(
            "  {} {}: {}{cve} ({severity}) {}",
            f.component,
            f.installed,
            f.id,
            f.summary
        );
        match &f.fixed_in {
            Some(v) => outln!("    fixed in {v}"),
            None => outln!("    no fixed release yet"),
        }
        if let Some(u) = &f.url {
            outln!("    {u}");
        }
    }
    Ok(())
}

pub fn plan(g: &Global, host: &Host, sel: &Selection, notes: bool) -> Result<u8> {
    let mut report = ops::plan(host, &PlanOptions { scope: scope(sel) })?;
    let code = if report.has_errors() {
        exit::FAILED
    } else {
        exit::OK
    };
    if !notes {
        // Dates, pages and breaking lines stay; the notes themselves only when asked.
        for p in &mut report.plan.phases {
            for r in p.steps.iter_mut().flat_map(|s| s.releases.iter_mut()) {
                r.notes = None;
            }
        }
    }
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
    let findings: Vec<_> = plan
        .advisories
        .iter()
        .filter(|f| selected.contains(&f.component))
        .collect();
    security(color, &findings)?;
    if notes {
        for s in plan.steps() {
            for r in &s.releases {
                let date = r.published_at.map_or_else(|| "date unknown".into(), day);
                outln!(
                    "\n── {} {} ({date}) {}",
                    s.component,
                    r.version,
                    r.url.as_deref().unwrap_or("")
                );
                match &r.notes {
                    Some(n) => outln!("{}", n.trim_end()),
                    None => outln!("(no release notes published)"),
                }
            }
        }
    }
    for w in &plan.warnings {
        outln!("warning: {}", w.message);
    }
    Ok(code)
}
