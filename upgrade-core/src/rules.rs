//! Compatibility rules: `requires`, stepping stones and end of life.

use jiff::civil::Date;
use semver::VersionReq;
use serde::{Deserialize, Serialize};

use crate::version::Version;

/// X in versions R needs Y in versions S, checked on the resulting set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// The component the rule is about (X).
    pub component: String,
    /// When X is in these versions (R)…
    pub versions: VersionReq,
    /// …this component (Y)…
    pub needs: String,
    /// …must be in these versions (S).
    pub needs_versions: VersionReq,
    /// Why, for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Crossing from below `crossing` to it or above stops at the highest `via` first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteppingStone {
    /// The component the rule is about.
    pub component: String,
    /// The version that may not be crossed in one step (`3.0.0`).
    pub crossing: Version,
    /// Where to stop first: the highest release in this range (`~2.55`).
    pub via: VersionReq,
    /// Why, for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A component upstream no longer maintains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndOfLife {
    /// The component.
    pub component: String,
    /// The day support ended.
    pub date: Date,
    /// What to migrate to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    /// The last release upstream made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_release: Option<Version>,
}

/// A release boundary upstream documents as breaking (raises the risk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakingChange {
    /// The component.
    pub component: String,
    /// Crossing this version from below is breaking.
    pub crossing: Version,
    /// What breaks, for the operator.
    pub note: String,
}

/// All compatibility rules of a stack: built-in ones plus the stack file's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// `requires` rules.
    #[serde(default)]
    pub requires: Vec<Requires>,
    /// Stepping stones.
    #[serde(default)]
    pub stepping_stones: Vec<SteppingStone>,
    /// End-of-life notices.
    #[serde(default)]
    pub end_of_life: Vec<EndOfLife>,
    /// Breaking-change notes.
    #[serde(default)]
    pub breaking: Vec<BreakingChange>,
}

impl Rules {
    /// Adds `other`'s rules after these.
    pub fn extend(&mut self, other: Rules) {
        self.requires.extend(other.requires);
        self.stepping_stones.extend(other.stepping_stones);
        self.end_of_life.extend(other.end_of_life);
        self.breaking.extend(other.breaking);
    }

    /// Every component a rule names, with the rule's key path.
    pub fn named_components(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (i, r) in self.requires.iter().enumerate() {
            out.push((
                format!("rules.requires[{i}].component"),
                r.component.as_str(),
            ));
            out.push((format!("rules.requires[{i}].needs"), r.needs.as_str()));
        }
        for (i, r) in self.stepping_stones.iter().enumerate() {
            out.push((
                format!("rules.stepping_stones[{i}].component"),
                r.component.as_str(),
            ));
        }
        for (i, r) in self.end_of_life.iter().enumerate() {
            out.push((
                format!("rules.end_of_life[{i}].component"),
                r.component.as_str(),
            ));
        }
        for (i, r) in self.breaking.iter().enumerate() {
            out.push((
                format!("rules.breaking[{i}].component"),
                r.component.as_str(),
            ));
        }
        out
    }
}

/// Whether `v` satisfies `req`, ignoring build metadata and letting a
/// pre-release satisfy a range its release would satisfy.
pub fn req_matches(req: &VersionReq, v: &Version) -> bool {
    let s = v.as_semver();
    let release = semver::Version::new(s.major, s.minor, s.patch);
    req.matches(s) || (!s.pre.is_empty() && req.matches(&release))
}
