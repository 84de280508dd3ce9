//! The obs-upgrade domain: pure and deterministic.
//!
//! - [`version`]: versions as upstream tags and prints them, change kinds.
//! - [`policy`]: what a component tracks and how much change it accepts.
//! - [`rules`]: `requires`, stepping stones, end of life, breaking changes.
//! - [`catalog`]: upstream facts about well-known components.
//! - [`config`]: the stack file (YAML or TOML) and its resolution.
//! - [`endpoint`]: where a service answers, from its unit's command line.
//! - [`planner`]: installed + available + policy → ordered phases of steps.
//! - [`engine`]: the transactional apply, rollback, resume, prune.
//! - [`journal`]: the run record, its status machine, step journal, resume point.
//! - [`window`]: maintenance windows, blackout dates, the next opening.
//! - [`pins`]: pin files, the targets a controller resolved once for a fleet.
//! - [`ports`]: the traits adapters implement (journal, release source, artifact store).
//!
//! No network, no processes: the other crates do I/O and call into this one.
//!
//! ```
//! use std::collections::BTreeMap;
//! use upgrade_core::config::{Format, Stack};
//! use upgrade_core::planner::{plan, PlanInput, Release};
//! use upgrade_core::version::Version;
//!
//! let stack = Stack::from_text(
//!     "components:\n  node_exporter:\n    allow: minor\n",
//!     Format::Yaml, "stack.yaml", None,
//! ).unwrap();
//! let installed = BTreeMap::from([(
//!     "node_exporter".to_string(),
//!     Version::parse("1.5.0").unwrap(),
//! )]);
//! let available = BTreeMap::from([(
//!     "node_exporter".to_string(),
//!     vec![Release::new(Version::parse("1.9.1").unwrap(), None)],
//! )]);
//! let p = plan(PlanInput {
//!     stack: &stack,
//!     installed: &installed,
//!     available: &available,
//!     now: jiff::Timestamp::UNIX_EPOCH,
//!     holds: &upgrade_core::holds::Holds::default(),
//!     advisories: &std::collections::BTreeMap::new(),
//! });
//! let step = p.steps().next().unwrap();
//! assert_eq!(step.to.to_string(), "1.9.1");
//! assert!(!step.needs_approval);
//! ```
//!
//! # Limitations
//! - The `requires` check looks at the resulting set only, not at each
//!   intermediate step; the engine checks again at preflight.
//! - A release without a publish date never passes a non-zero
//!   `min_release_age`.

#![warn(missing_docs)]

pub mod advisory;
pub mod catalog;
pub mod config;
pub mod endpoint;
pub mod engine;
pub mod holds;
pub mod journal;
pub mod layout;
pub mod names;
pub mod notes;
pub mod pins;
pub mod planner;
pub mod policy;
pub mod ports;
pub mod release;
pub mod risk;
pub mod rules;
pub mod suggest;
pub mod version;
pub mod window;

pub use config::Stack;
pub use planner::{Plan, PlanInput, Release, plan};
pub use version::{ChangeKind, Version};
