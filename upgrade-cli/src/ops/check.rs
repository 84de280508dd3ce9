//! `check` and `plan`.

use std::collections::BTreeMap;

use serde::Serialize;
use upgrade_core::advisory::Finding;
use upgrade_core::config::ReportLevel;
use upgrade_core::engine::Scope;
use upgrade_core::planner::{BlockReason, Plan, SkipReason};

use crate::Error;
use crate::host::{Host, Resolution};

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Send an "updates available" notification when there are updates.
    pub notify: bool,
}

/// One component in `check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// The component.
    pub name: String,
    /// The installed version.
    pub installed: Option<String>,
    /// The highest release upstream.
    pub available: Option<String>,
    /// Where the plan takes it.
    pub target: Option<String>,
    /// The largest change on the way.
    pub change: Option<String>,
    /// The highest risk on the way.
    pub risk: Option<String>,
    /// Whether a step needs approval.
    pub needs_approval: bool,
    /// `update`, `up_to_date`, `not_installed`, `blocked`, `skipped` or `error`.
    pub status: &'static str,
    /// Why it is not updated, or the stepping stones.
    pub reason: Option<String>,
    /// The planner's warnings about it.
    pub notes: Vec<String>,
    /// Why the risk is what it is (breaking lines quoted from the release
    /// notes among them).
    pub risk_reasons: Vec<String>,
    /// The release it would move to (else the newest one upstream): its
    /// date and page.
    pub candidate: Option<Candidate>,
    /// Security advisories that affect the installed version.
    pub advisories: Vec<Finding>,
}

/// A release as `check` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Its version.
    pub version: String,
    /// When it was published, when known.
    pub published_at: Option<jiff::Timestamp>,
    /// Its release page, when known.
    pub url: Option<String>,
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The environment.
    pub environment: Option<String>,
    /// Whether any component has an update.
    pub updates_available: bool,
    /// Per component.
    pub components: Vec<CheckRow>,
    /// The planner's warnings.
    pub warnings: Vec<String>,
}

impl CheckReport {
    /// Whether a component's installed version could not be read or its
    /// releases could not be listed: then "up to date" cannot be said.
    pub fn has_errors(&self) -> bool {
        self.components.iter().any(|c| c.status == "error")
    }
}

impl PlanReport {
    /// Whether a selected component could not be detected or listed (the
    /// plan is then incomplete).
    pub fn has_errors(&self) -> bool {
        self.errors.keys().any(|n| self.selected.contains(n))
    }
}

/// A skip reason in words.
pub fn skip_text(r: &SkipReason) -> String {
    match r {
        SkipReason::NotInstalled => "not installed".into(),
        SkipReason::UpToDate { installed } => format!("up to date ({installed})"),
        SkipReason::PolicyNone { available } => {
            format!("policy `allow: none` ({available} available)")
        }
        SkipReason::Pinned { version } => format!("pinned at {version}"),
        SkipReason::Held { version, reason } => {
            format!("held at {version}: {reason}; `obs-upgrade hold release` lets it move again")
        }
    }
}

/// A block reason in words.
pub fn block_text(r: &BlockReason) -> String {
    match r {
        BlockReason::Incompatible { wanted, rule } => format!("{wanted} is incompatible: {rule}"),
        BlockReason::Denied { version } => format!("{version} is denied by policy"),
        BlockReason::TooNew {
            version,
            eligible_at,
        } => match eligible_at {
            Some(at) => format!(
                "{version} is younger than min_release_age (eligible at {})",
                at.round(jiff::Unit::Minute).unwrap_or(*at)
            ),
            None => format!("{version} has no publish date to check min_release_age against"),
        },
        BlockReason::NoMatch { track } => format!("no release matches `{track}`"),
        BlockReason::FailedHere {
            version,
            run_id,
            reason,
        } => format!(
            "{version} failed verification here in run {run_id}: {reason}; held back until \
             `obs-upgrade quarantine clear`"
        ),
        BlockReason::SteppingStoneMissing { via, crossing } => {
            format!("crossing {crossing} needs a stepping stone in {via}, and none is published")
        }
    }
}

fn row(name: &str, res: &Resolution, plan: &Plan) -> CheckRow {
    let steps: Vec<_> = plan.steps().filter(|s| s.component == name).collect();
    let mut row = CheckRow {
        name: name.to_owned(),
        installed: res.installed.get(name).map(ToString::to_string),
        available: res
            .available
            .get(name)
            .and_then(|r| r.iter().map(|r| &r.version).max())
            .map(ToString::to_string),
        target: None,
        change: None,
        risk: None,
        needs_approval: false,
        status: "up_to_date",
        reason: None,
        notes: plan
            .warnings
            .iter()
            .filter(|w| w.component == name)
            .map(|w| w.message.clone())
            .collect(),
        risk_reasons: steps
            .iter()
            .flat_map(|s| s.risk_reasons.iter().skip(1).cloned())
            .collect(),
        candidate: None,
        advisories: plan
            .advisories
            .iter()
            .filter(|f| f.component == name)
            .cloned()
            .collect(),
    };
    let releases = res.available.get(name).map_or(&[][..], Vec::as_slice);
    let wanted = steps
        .last()
        .map(|s| &s.to)
        .or_else(|| releases.iter().map(|r| &r.version).max());
    row.candidate = wanted
        .and_then(|v| releases.iter().find(|r| &r.version == v))
        .map(|r| Candidate {
            version: r.version.to_string(),
            published_at: r.published_at,
            url: r.url.clone(),
        });
    if let Some(e) = res.errors.get(name) {
        row.status = "error";
        row.reason = Some(e.clone());
    } else if let Some(last) = steps.last() {
        row.status = "update";
        row.target = Some(last.to.to_string());
        row.change = steps.iter().map(|s| s.change).max().map(|c| c.to_string());
        row.risk = steps.iter().map(|s| s.risk).max().map(|r| r.to_string());
        row.needs_approval = steps.iter().any(|s| s.needs_approval);
        // Versions held back above the target, and why.
        row.notes.extend(last.notes.iter().cloned());
        if let [stones @ .., _] = steps.as_slice()
            && !stones.is_empty()
        {
            let via: Vec<String> = stones.iter().map(|s| s.to.to_string()).collect();
            row.reason = Some(format!("through {}", via.join(", ")));
        }
    } else if let Some(b) = plan.blocked.iter().find(|b| b.component == name) {
        row.status = "blocked";
        row.reason = Some(block_text(&b.reason));
    } else if let Some(s) = plan.skipped.iter().find(|s| s.component == name) {
        row.status = match s.reason {
            SkipReason::NotInstalled => "not_installed",
            SkipReason::UpToDate { .. } => "up_to_date",
            _ => "skipped",
        };
        row.reason = Some(skip_text(&s.reason));
    }
    row
}

/// Sends "updates available" — at `on-change`, once per new set of updates
/// (the set last sent is kept in the state directory; it is forgotten when
/// there are no updates, so a set that comes back is sent again).
fn notify_updates(host: &Host, components: &[CheckRow]) {
    let lines: Vec<String> = components
        .iter()
        .filter(|r| r.status == "update")
        .map(|r| {
            let installed = r.installed.as_deref().unwrap_or_default();
            let target = r.target.as_deref().unwrap_or_default();
            format!("{} {installed} → {target}", r.name)
        })
        .collect();
    let sent = host.paths().state_dir.join("notified-updates");
    if lines.is_empty() {
        let _ = std::fs::remove_file(&sent);
        return;
    }
    let text = lines.join("\n");
    let on_change = host.stack().notifications.level == ReportLevel::OnChange;
    if on_change && std::fs::read_to_string(&sent).is_ok_and(|t| t == text) {
        log::info!("these updates were already notified; not sending them again");
        return;
    }
    let event = upgrade_core::ports::Event::UpdatesAvailable { updates: lines };
    match host.notifier().notify(&event) {
        Ok(()) => {
            let dir = &host.paths().state_dir;
            let saved = upgrade_state::fsutil::create_dir_all(dir)
                .and_then(|()| upgrade_state::fsutil::atomic_write(&sent, text.as_bytes(), None));
            if let Err(e) = saved {
                log::warn!("cannot remember the notified updates: {e}");
            }
        }
        Err(e) => log::warn!("notification failed: {e}"),
    }
}

/// Installed and available versions of every component, and what the plan
/// would do with each.
pub fn check(host: &Host, opts: &CheckOptions) -> Result<CheckReport, Error> {
    host.check_pins()?;
    let res = host.resolve();
    let plan = host.plan(&res)?;
    let components: Vec<CheckRow> = host
        .stack()
        .components
        .keys()
        .map(|name| row(name, &res, &plan))
        .collect();
    let updates = components.iter().any(|r| r.status == "update");
    if opts.notify {
        notify_updates(host, &components);
    }
    Ok(CheckReport {
        environment: host.stack().environment.clone(),
        updates_available: updates,
        components,
        warnings: plan.warnings.iter().map(|w| w.message.clone()).collect(),
    })
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Which components.
    pub scope: Scope,
}

/// The plan for a selection.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// The environment.
    pub environment: Option<String>,
    /// The plan, narrowed to the selection.
    #[serde(flatten)]
    pub plan: Plan,
    /// Components that could not be detected or listed (left out of the plan).
    pub errors: BTreeMap<String, String>,
    /// The components the selection named.
    #[serde(skip)]
    pub selected: Vec<String>,
}

/// The plan: phases, steps, risk, approval, and why others are skipped or blocked.
pub fn plan(host: &Host, opts: &PlanOptions) -> Result<PlanReport, Error> {
    let selected = host.selected(&opts.scope)?;
    host.check_pins()?;
    let res = host.resolve();
    let mut plan = host.plan(&res)?;
    for p in &mut plan.phases {
        p.steps.retain(|s| selected.contains(&s.component));
    }
    plan.phases.retain(|p| !p.steps.is_empty());
    plan.skipped.retain(|s| selected.contains(&s.component));
    plan.blocked.retain(|b| selected.contains(&b.component));
    Ok(PlanReport {
        environment: host.stack().environment.clone(),
        plan,
        errors: res.errors,
        selected,
    })
}
