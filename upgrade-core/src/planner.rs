//! The planner: (stack, installed, available, now) → an ordered plan.
//!
//! A pure function: the same input gives the same plan.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::advisory::{Advisory, Finding, findings};
use crate::config::{Component, OnFailure, Stack};
use crate::holds::{BadRelease, Holds};
use crate::notes::breaking_lines;
use crate::policy::{Allow, Track};
use crate::rules::req_matches;
use crate::version::{ChangeKind, Version};

pub use crate::release::{Asset, Release};
pub use crate::risk::Risk;

/// One planned change of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The component.
    pub component: String,
    /// The version before the step.
    pub from: Version,
    /// The version after the step.
    pub to: Version,
    /// How large the change is.
    pub change: ChangeKind,
    /// Whether `to` is below `from` (only a pin asks for that).
    pub downgrade: bool,
    /// Whether this step stops at a stepping stone before a further step.
    pub stepping_stone: bool,
    /// The risk level.
    pub risk: Risk,
    /// Why the risk is what it is.
    pub risk_reasons: Vec<String>,
    /// Whether the policy requires explicit approval.
    pub needs_approval: bool,
    /// Other notes (versions held back and why).
    pub notes: Vec<String>,
    /// Every release the step moves across, oldest first: above `from`, up
    /// to and including `to` (what changed between the two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseInfo>,
}

/// What a release says about itself, as a step carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// Its version.
    pub version: Version,
    /// When it was published, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Timestamp>,
    /// Its release page, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its notes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The lines of its notes that announce a breaking change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaking: Vec<String>,
}

impl ReleaseInfo {
    /// The facts of `r`, its breaking lines read from its notes.
    pub fn of(r: &Release) -> ReleaseInfo {
        ReleaseInfo {
            version: r.version.clone(),
            published_at: r.published_at,
            url: r.url.clone(),
            breaking: r.notes.as_deref().map(breaking_lines).unwrap_or_default(),
            notes: r.notes.clone(),
        }
    }
}

impl Step {
    /// A step that moves a component directly (no stepping stone, no approval
    /// question): used for manual rollbacks and for prompts about a journaled step.
    pub fn direct(
        component: &str,
        from: Version,
        to: Version,
        risk: Risk,
        reason: Option<String>,
    ) -> Step {
        Step {
            component: component.to_owned(),
            change: ChangeKind::between(&from, &to),
            downgrade: to < from,
            stepping_stone: false,
            risk,
            risk_reasons: reason.into_iter().collect(),
            needs_approval: false,
            notes: Vec::new(),
            releases: Vec::new(),
            from,
            to,
        }
    }
}

/// A phase of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhasePlan {
    /// The phase's name.
    pub name: String,
    /// What a failure does to the rest of the run.
    pub on_failure: OnFailure,
    /// Whether a failure rolls back the whole phase.
    pub atomic: bool,
    /// Steps in order: dependencies first, stepping stones before their target.
    pub steps: Vec<Step>,
}

/// Why a component is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// It is not installed on this host.
    NotInstalled,
    /// Nothing newer that the policy would take.
    UpToDate {
        /// The installed version.
        installed: Version,
    },
    /// `allow: none`.
    PolicyNone {
        /// What would otherwise be planned.
        available: Version,
    },
    /// Pinned to what is installed.
    Pinned {
        /// The pin.
        version: Version,
    },
    /// Held at a version (a manual rollback, or by hand) until released.
    Held {
        /// The version it is held at.
        version: Version,
        /// Why, and since when.
        reason: String,
    },
}

/// Why a component that has updates cannot get one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BlockReason {
    /// The resulting set would break a `requires` rule.
    Incompatible {
        /// What the upgrade would have been.
        wanted: Version,
        /// The rule, in words.
        rule: String,
    },
    /// Every newer release is denied.
    Denied {
        /// The highest denied one.
        version: Version,
    },
    /// Every newer release is younger than `min_release_age`.
    TooNew {
        /// The highest held-back one.
        version: Version,
        /// When it becomes eligible (`None`: publish date unknown).
        eligible_at: Option<Timestamp>,
    },
    /// No release matches what the component tracks.
    NoMatch {
        /// What it tracks.
        track: String,
    },
    /// Every newer release failed verification on this host.
    FailedHere {
        /// The highest failed one.
        version: Version,
        /// The run it failed in.
        run_id: String,
        /// Why it failed.
        reason: String,
    },
    /// A stepping stone is required but no release is in its range.
    SteppingStoneMissing {
        /// The range the stone must come from.
        via: String,
        /// The version that may not be crossed directly.
        crossing: Version,
    },
}

/// A component left out of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The component.
    pub component: String,
    /// Why.
    pub reason: SkipReason,
}

/// A component that could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// The component.
    pub component: String,
    /// Its installed version.
    pub installed: Version,
    /// Why.
    pub reason: BlockReason,
}

/// A notice shown on every check (end of life, an already broken rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The component it is about.
    pub component: String,
    /// What to know.
    pub message: String,
}

/// The result of planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Plan {
    /// Phases in order; phases without steps are left out.
    pub phases: Vec<PhasePlan>,
    /// Components left alone, with the reason.
    pub skipped: Vec<Skipped>,
    /// Components that could not be planned, with the reason.
    pub blocked: Vec<Blocked>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// Security advisories that affect an installed version, by component.
    #[serde(default)]
    pub advisories: Vec<Finding>,
}

impl Plan {
    /// Every step in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.phases.iter().flat_map(|p| p.steps.iter())
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.phases.iter().all(|p| p.steps.is_empty())
    }

    /// The version each component ends at: the last step's target, else installed.
    pub fn resulting_versions(
        &self,
        installed: &BTreeMap<String, Version>,
    ) -> BTreeMap<String, Version> {
        let mut out = installed.clone();
        for s in self.steps() {
            out.insert(s.component.clone(), s.to.clone());
        }
        out
    }
}

/// What the planner needs to know.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The resolved stack.
    pub stack: &'a Stack,
    /// Installed versions by component (absent: not installed).
    pub installed: &'a BTreeMap<String, Version>,
    /// Upstream releases by component.
    pub available: &'a BTreeMap<String, Vec<Release>>,
    /// The time "now" is, for `min_release_age`.
    pub now: Timestamp,
    /// Releases that failed here (never planned) and holds (never moved).
    pub holds: &'a Holds,
    /// Security advisories by component (absent: none known).
    pub advisories: &'a BTreeMap<String, Vec<Advisory>>,
}

/// One component's outcome before the cross-component checks.
enum Outcome {
    Planned(Vec<Step>),
    Skipped(SkipReason),
    Blocked(BlockReason),
}

/// Plans upgrades. Pure and deterministic.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let stack = input.stack;
    let mut outcomes: BTreeMap<&str, Outcome> = BTreeMap::new();
    let mut warnings = Vec::new();

    for eol in &stack.rules.end_of_life {
        if stack.components.contains_key(&eol.component) {
            let mut message = format!("{} reached end of life on {}", eol.component, eol.date);
            if let Some(last) = &eol.last_release {
                let _ = write!(message, " (last release {last})");
            }
            if let Some(s) = &eol.successor {
                let _ = write!(message, "; migrate to {s}");
            }
            warnings.push(Warning {
                component: eol.component.clone(),
                message,
            });
        }
    }

    let mut advisories = Vec::new();
    for (name, comp) in &stack.components {
        let bad = input.holds.bad.get(name).map_or(&[][..], Vec::as_slice);
        let known = input.advisories.get(name).map_or(&[][..], Vec::as_slice);
        if let Some(installed) = input.installed.get(name) {
            let releases = input.available.get(name).map_or(&[][..], Vec::as_slice);
            advisories.extend(findings(
                name,
                installed,
                known,
                &releases.iter().map(|r| &r.version).collect::<Vec<_>>(),
            ));
        }
        let outcome = match (input.installed.get(name), input.holds.hold(name)) {
            (None, _) => Outcome::Skipped(SkipReason::NotInstalled),
            (Some(_), Some(hold)) => Outcome::Skipped(SkipReason::Held {
                version: hold.version.clone(),
                reason: format!(
                    "{} (since {}, by {})",
                    hold.reason,
                    hold.at.round(jiff::Unit::Second).unwrap_or(hold.at),
                    hold.by
                ),
            }),
            (Some(installed), None) => {
                let releases = input.available.get(name).map_or(&[][..], Vec::as_slice);
                let ctx = Context {
                    comp,
                    installed,
                    releases,
                    bad,
                    advisories: known,
                    now: input.now,
                    stack,
                };
                plan_component(&ctx)
            }
        };
        outcomes.insert(name.as_str(), outcome);
    }

    enforce_requires(stack, input.installed, &mut outcomes, &mut warnings);

    // Assemble phases in order, dependency order inside each.
    let mut plan = Plan {
        warnings,
        advisories,
        ..Plan::default()
    };
    let mut steps_by_component: BTreeMap<&str, Vec<Step>> = BTreeMap::new();
    for (name, outcome) in outcomes {
        match outcome {
            Outcome::Planned(steps) => {
                steps_by_component.insert(name, steps);
            }
            Outcome::Skipped(reason) => plan.skipped.push(Skipped {
                component: name.to_owned(),
                reason,
            }),
            Outcome::Blocked(reason) => plan.blocked.push(Blocked {
                component: name.to_owned(),
                installed: input.installed[name].clone(),
                reason,
            }),
        }
    }
    for phase in &stack.phases {
        let members: BTreeSet<&str> = steps_by_component
            .keys()
            .copied()
            .filter(|n| stack.components[*n].phase == phase.name)
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut steps = Vec::new();
        for name in topo_order(stack, &members) {
            steps.extend(steps_by_component.remove(name).unwrap_or_default());
        }
        plan.phases.push(PhasePlan {
            name: phase.name.clone(),
            on_failure: phase.on_failure,
            atomic: phase.atomic,
            steps,
        });
    }
    plan
}

/// A note on a release held back because it failed here.
pub fn failed_note(f: &BadRelease) -> String {
    format!(
        "{} failed verification here in run {} ({}): {}; held back until \
         `obs-upgrade quarantine clear`",
        f.version,
        f.run_id,
        f.at.round(jiff::Unit::Second).unwrap_or(f.at),
        f.reason
    )
}

/// Kahn's algorithm over `depends_on` restricted to `members`, ties by name.
fn topo_order<'a>(stack: &'a Stack, members: &BTreeSet<&'a str>) -> Vec<&'a str> {
    let mut indegree: BTreeMap<&str, usize> = members.iter().map(|m| (*m, 0)).collect();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in members {
        for d in &stack.components[*m].depends_on {
            if members.contains(d.as_str()) {
                *indegree.get_mut(m).expect("member") += 1;
                dependents.entry(d.as_str()).or_default().push(m);
            }
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::with_capacity(members.len());
    while let Some(n) = ready.pop_first() {
        order.push(n);
        for dep in dependents.get(n).into_iter().flatten() {
            let d = indegree.get_mut(dep).expect("member");
            *d -= 1;
            if *d == 0 {
                ready.insert(dep);
            }
        }
    }
    // Cycles are refused when the stack is loaded; keep any leftover anyway.
    for m in members {
        if !order.contains(m) {
            order.push(m);
        }
    }
    order
}

fn matches_track(comp: &Component, v: &Version) -> bool {
    match &comp.policy.track {
        Track::Latest => true,
        Track::Lts => comp.spec.lts.iter().any(|r| req_matches(r, v)),
        Track::Pinned(p) => p.same_release(v),
        Track::Range(r) => r.matches(v.as_semver()),
    }
}

/// What one component is planned from.
struct Context<'a> {
    comp: &'a Component,
    installed: &'a Version,
    releases: &'a [Release],
    bad: &'a [BadRelease],
    advisories: &'a [Advisory],
    now: Timestamp,
    stack: &'a Stack,
}

/// The most breaking lines quoted in one step's reasons (the rest are counted).
const MAX_QUOTED: usize = 8;

fn plan_component(ctx: &Context<'_>) -> Outcome {
    let Context {
        comp,
        installed,
        releases,
        bad,
        now,
        stack,
        ..
    } = *ctx;
    let policy = &comp.policy;
    // Versions let through `min_release_age` because they fix an advisory
    // affecting the installed version, with the advisory.
    let mut bypassed: BTreeMap<&Version, &Advisory> = BTreeMap::new();
    let mut denied: Option<&Version> = None;
    let mut failed: Option<&BadRelease> = None;
    let mut too_new: Option<(&Version, Option<Timestamp>)> = None;
    let mut eligible: Vec<&Release> = Vec::new();
    let mut passing: Vec<&Release> = Vec::new();
    let mut matched_any = false;
    for r in releases {
        if (r.prerelease || r.version.is_prerelease()) && !policy.prereleases {
            continue;
        }
        let in_track = matches_track(comp, &r.version);
        matched_any |= in_track;
        let above = r.version.cmp_precedence(installed).is_gt();
        if policy.deny.iter().any(|d| d.matches(&r.version)) {
            if in_track && above && denied.is_none_or(|d| r.version > *d) {
                denied = Some(&r.version);
            }
            continue;
        }
        if let Some(b) = bad.iter().find(|b| b.version.same_release(&r.version)) {
            if in_track && above && failed.is_none_or(|f| r.version > f.version) {
                failed = Some(b);
            }
            continue;
        }
        if policy.min_release_age.0.as_secs() > 0 {
            let eligible_at = r
                .published_at
                .and_then(|p| p.checked_add(policy.min_release_age.0).ok());
            let fixes = policy
                .advisories_bypass_age
                .then(|| {
                    ctx.advisories
                        .iter()
                        .filter(|a| a.affects(installed) && !a.affects(&r.version))
                        .max_by_key(|a| a.severity)
                })
                .flatten();
            if let (true, Some(a)) = (eligible_at.is_none_or(|at| at > now), fixes) {
                bypassed.insert(&r.version, a);
            } else if eligible_at.is_none_or(|at| at > now) {
                if in_track && above && too_new.is_none_or(|(v, _)| r.version > *v) {
                    too_new = Some((&r.version, eligible_at));
                }
                continue;
            }
        }
        // Stepping stones may come from outside the track: they are transit only.
        passing.push(r);
        if in_track {
            eligible.push(r);
        }
    }
    eligible.sort_by(|a, b| a.version.cmp(&b.version));
    passing.sort_by(|a, b| a.version.cmp(&b.version));

    // Notes on versions held back above the target.
    let held_back_notes = |target: &Version| {
        let mut notes = Vec::new();
        if let Some(d) = denied.filter(|d| *d > target) {
            notes.push(format!("{d} is denied by policy"));
        }
        if let Some(f) = failed.filter(|f| f.version > *target) {
            notes.push(failed_note(f));
        }
        if let Some((v, at)) = too_new.filter(|(v, _)| *v > target) {
            notes.push(match at {
                Some(at) => format!(
                    "{v} is younger than min_release_age {} (eligible at {at})",
                    policy.min_release_age
                ),
                None => format!("{v} has no publish date, so min_release_age cannot be checked"),
            });
        }
        notes
    };

    let target: &Version = if let Track::Pinned(pin) = &policy.track {
        if pin.same_release(installed) {
            return Outcome::Skipped(SkipReason::Pinned {
                version: installed.clone(),
            });
        }
        match eligible.iter().rev().find(|r| r.version.same_release(pin)) {
            Some(r) => &r.version,
            None => {
                return Outcome::Blocked(if let Some(f) = failed {
                    BlockReason::FailedHere {
                        version: f.version.clone(),
                        run_id: f.run_id.clone(),
                        reason: f.reason.clone(),
                    }
                } else if let Some(d) = denied {
                    BlockReason::Denied { version: d.clone() }
                } else if let Some((v, at)) = too_new {
                    BlockReason::TooNew {
                        version: v.clone(),
                        eligible_at: at,
                    }
                } else {
                    BlockReason::NoMatch {
                        track: pin.to_string(),
                    }
                });
            }
        }
    } else {
        match eligible
            .last()
            .filter(|r| r.version.cmp_precedence(installed).is_gt())
        {
            Some(r) => &r.version,
            None => {
                if let Some(f) = failed {
                    return Outcome::Blocked(BlockReason::FailedHere {
                        version: f.version.clone(),
                        run_id: f.run_id.clone(),
                        reason: f.reason.clone(),
                    });
                }
                if let Some(d) = denied {
                    return Outcome::Blocked(BlockReason::Denied { version: d.clone() });
                }
                if let Some((v, at)) = too_new {
                    return Outcome::Blocked(BlockReason::TooNew {
                        version: v.clone(),
                        eligible_at: at,
                    });
                }
                if !matched_any
                    && !releases.is_empty()
                    && !matches!(policy.track, Track::Latest)
                    && !matches_track(comp, installed)
                {
                    return Outcome::Blocked(BlockReason::NoMatch {
                        track: policy.track.to_string(),
                    });
                }
                if releases.is_empty() {
                    return Outcome::Blocked(BlockReason::NoMatch {
                        track: policy.track.to_string(),
                    });
                }
                return Outcome::Skipped(SkipReason::UpToDate {
                    installed: installed.clone(),
                });
            }
        }
    };

    if policy.allow == Allow::None && !matches!(policy.track, Track::Pinned(_)) {
        return Outcome::Skipped(SkipReason::PolicyNone {
            available: target.clone(),
        });
    }

    // The path: stepping stones first.
    let mut path: Vec<(Version, bool)> = Vec::new();
    let mut at = installed.clone();
    let mut stones: Vec<_> = stack
        .rules
        .stepping_stones
        .iter()
        .filter(|s| s.component == comp.name)
        .collect();
    stones.sort_by(|a, b| a.crossing.cmp(&b.crossing));
    for stone in stones {
        let crosses = at.cmp_precedence(&stone.crossing).is_lt()
            && target.cmp_precedence(&stone.crossing).is_ge();
        if !crosses {
            continue;
        }
        let best = passing.iter().rev().find(|r| {
            req_matches(&stone.via, &r.version) && r.version.cmp_precedence(&stone.crossing).is_lt()
        });
        match best {
            Some(r) if r.version.cmp_precedence(&at).is_gt() => {
                path.push((r.version.clone(), true));
                at = r.version.clone();
            }
            _ if req_matches(&stone.via, &at) => {}
            _ => {
                return Outcome::Blocked(BlockReason::SteppingStoneMissing {
                    via: stone.via.to_string(),
                    crossing: stone.crossing.clone(),
                });
            }
        }
    }
    path.push((target.clone(), false));

    let eol = stack
        .rules
        .end_of_life
        .iter()
        .find(|e| e.component == comp.name);
    let mut steps = Vec::new();
    let mut from = installed.clone();
    for (to, is_stone) in path {
        let change = ChangeKind::between(&from, &to);
        let downgrade = to.cmp_precedence(&from).is_lt();
        let mut risk = match change {
            ChangeKind::None | ChangeKind::Patch => Risk::Low,
            ChangeKind::Minor => Risk::Medium,
            ChangeKind::Major => Risk::High,
        };
        let mut reasons = vec![format!("{change} change")];
        let mut raise = |r: Risk, why: String, risk: &mut Risk| {
            *risk = (*risk).max(r);
            reasons.push(why);
        };
        if is_stone {
            raise(
                Risk::High,
                format!("stepping stone before crossing to {target}"),
                &mut risk,
            );
        }
        for s in stack
            .rules
            .stepping_stones
            .iter()
            .filter(|s| s.component == comp.name)
        {
            if from.cmp_precedence(&s.crossing).is_lt() && to.cmp_precedence(&s.crossing).is_ge() {
                let why = s.note.as_deref().unwrap_or("a stepping stone rule applies");
                raise(
                    Risk::High,
                    format!("crosses {} after a stepping stone: {why}", s.crossing),
                    &mut risk,
                );
            }
        }
        for b in stack
            .rules
            .breaking
            .iter()
            .filter(|b| b.component == comp.name)
        {
            if from.cmp_precedence(&b.crossing).is_lt() && to.cmp_precedence(&b.crossing).is_ge() {
                raise(
                    Risk::High,
                    format!("breaking change at {}: {}", b.crossing, b.note),
                    &mut risk,
                );
            }
        }
        if let Some(e) = eol {
            raise(
                Risk::Medium,
                format!("end of life since {}", e.date),
                &mut risk,
            );
        }
        if to.is_prerelease() {
            raise(Risk::Medium, "pre-release".into(), &mut risk);
        }
        if downgrade {
            raise(
                Risk::High,
                format!("downgrade from {from} asked for by the pin"),
                &mut risk,
            );
        }
        let crossed: Vec<ReleaseInfo> = if downgrade {
            Vec::new()
        } else {
            let mut c: Vec<&Release> = releases
                .iter()
                .filter(|r| {
                    r.version.cmp_precedence(&from).is_gt() && r.version.cmp_precedence(&to).is_le()
                })
                .collect();
            c.sort_by(|a, b| a.version.cmp(&b.version));
            c.dedup_by(|a, b| a.version == b.version);
            c.into_iter().map(ReleaseInfo::of).collect()
        };
        let breaking: Vec<(&Version, &String)> = crossed
            .iter()
            .flat_map(|r| r.breaking.iter().map(move |l| (&r.version, l)))
            .collect();
        for (v, line) in breaking.iter().take(MAX_QUOTED) {
            raise(
                Risk::High,
                format!("breaking change in the {v} release notes: \"{line}\""),
                &mut risk,
            );
        }
        if breaking.len() > MAX_QUOTED {
            raise(
                Risk::Low,
                format!(
                    "and {} more breaking lines in the release notes",
                    breaking.len() - MAX_QUOTED
                ),
                &mut risk,
            );
        }
        for a in ctx.advisories {
            if a.affects(&from) && !a.affects(&to) {
                raise(
                    Risk::Low,
                    format!("fixes {} ({}) affecting {from}", a.id, a.severity),
                    &mut risk,
                );
            } else if a.affects(&to) && !a.affects(&from) {
                raise(
                    Risk::High,
                    format!(
                        "{to} is affected by {} ({}): {}",
                        a.id, a.severity, a.summary
                    ),
                    &mut risk,
                );
            }
        }
        if let Some(a) = bypassed.get(&to) {
            raise(
                Risk::Low,
                format!(
                    "min_release_age {} bypassed (advisories_bypass_age): {to} fixes {} ({}) \
                     affecting {installed}",
                    policy.min_release_age, a.id, a.severity
                ),
                &mut risk,
            );
        }
        let needs_approval = downgrade || !policy.allow.permits(change);
        let notes = if is_stone {
            Vec::new()
        } else {
            held_back_notes(target)
        };
        steps.push(Step {
            component: comp.name.clone(),
            from: from.clone(),
            to: to.clone(),
            change,
            downgrade,
            stepping_stone: is_stone,
            risk,
            risk_reasons: reasons,
            needs_approval,
            notes,
            releases: crossed,
        });
        from = to;
    }
    Outcome::Planned(steps)
}

fn resulting<'a>(
    name: &str,
    installed: &'a BTreeMap<String, Version>,
    outcomes: &'a BTreeMap<&str, Outcome>,
) -> Option<&'a Version> {
    match outcomes.get(name) {
        Some(Outcome::Planned(steps)) => steps.last().map(|s| &s.to),
        _ => installed.get(name),
    }
}

/// Blocks upgrades until the resulting set satisfies every `requires` rule.
fn enforce_requires(
    stack: &Stack,
    installed: &BTreeMap<String, Version>,
    outcomes: &mut BTreeMap<&str, Outcome>,
    warnings: &mut Vec<Warning>,
) {
    // Each pass blocks at least one planned component or ends; bounded by their number.
    loop {
        let mut to_block: Option<(String, BlockReason)> = None;
        for rule in &stack.rules.requires {
            let (Some(x), Some(y)) = (
                resulting(&rule.component, installed, outcomes),
                resulting(&rule.needs, installed, outcomes),
            ) else {
                continue;
            };
            if !req_matches(&rule.versions, x) || req_matches(&rule.needs_versions, y) {
                continue;
            }
            let words = format!(
                "{} {} needs {} {}, which would be {y}{}",
                rule.component,
                rule.versions,
                rule.needs,
                rule.needs_versions,
                rule.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
            let planned = |n: &str| matches!(outcomes.get(n), Some(Outcome::Planned(_)));
            let culprit = if planned(&rule.component) {
                Some((rule.component.clone(), x.clone()))
            } else if planned(&rule.needs) {
                Some((rule.needs.clone(), y.clone()))
            } else {
                None
            };
            if let Some((name, wanted)) = culprit {
                to_block = Some((
                    name,
                    BlockReason::Incompatible {
                        wanted,
                        rule: words,
                    },
                ));
                break;
            }
            let w = Warning {
                component: rule.component.clone(),
                message: format!("already incompatible: {words}"),
            };
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        match to_block {
            Some((name, reason)) => {
                if let Some(o) = outcomes.get_mut(name.as_str()) {
                    *o = Outcome::Blocked(reason);
                }
            }
            None => break,
        }
    }
}
