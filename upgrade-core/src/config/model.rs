//! The resolved model: a stack for one environment, what the planner and the
//! engine read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::file::{Deadlines, Maintenance, Metrics, Notifications, PhaseSpec, Retention};
use crate::catalog::ComponentSpec;
use crate::policy::Policy;
use crate::risk::Risk;
use crate::rules::Rules;

/// A component of a resolved stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Its name.
    pub name: String,
    /// Upstream facts, catalog merged with overrides.
    pub spec: ComponentSpec,
    /// The resolved policy for the chosen environment.
    pub policy: Policy,
    /// Its phase.
    pub phase: String,
    /// What it depends on.
    pub depends_on: Vec<String>,
    /// Pinned SHA-256 digests by version.
    pub sha256: BTreeMap<String, String>,
    /// The highest risk applied unattended.
    pub auto_approve: Risk,
}

impl Component {
    /// A component from its upstream facts alone, with the default policy
    /// (a journal's copy of a component that left the stack).
    pub fn from_spec(name: &str, spec: ComponentSpec, phase: &str) -> Component {
        Component {
            name: name.to_owned(),
            spec,
            policy: Policy::default(),
            phase: phase.to_owned(),
            depends_on: Vec::new(),
            sha256: BTreeMap::new(),
            auto_approve: Risk::Low,
        }
    }
}

/// A stack resolved for one environment: what the planner and engine use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stack {
    /// Where it was read from (`None`: built-in catalog).
    pub source: Option<PathBuf>,
    /// The chosen environment.
    pub environment: Option<String>,
    /// Phases in order.
    pub phases: Vec<PhaseSpec>,
    /// Components by name.
    pub components: BTreeMap<String, Component>,
    /// All rules in force.
    pub rules: Rules,
    /// Maintenance windows and auto-approval.
    pub maintenance: Maintenance,
    /// Notifications.
    pub notifications: Notifications,
    /// Self-metrics.
    pub metrics: Metrics,
    /// What each successful run keeps.
    pub retention: Retention,
    /// How long external actions may take.
    pub deadlines: Deadlines,
}

impl Stack {
    /// The index of a phase by name.
    pub fn phase_index(&self, name: &str) -> Option<usize> {
        self.phases.iter().position(|p| p.name == name)
    }
}
