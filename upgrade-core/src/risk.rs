//! How risky a step is: the scale the planner rates with and the stack's
//! `auto_approve` limits.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How risky a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// A patch release.
    Low,
    /// A minor release, a pre-release or an end-of-life component.
    Medium,
    /// A major release, a stepping stone, a documented breaking change or a downgrade.
    High,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        })
    }
}
