//! The stack file: components, policies, phases, environments and rules.
//!
//! YAML or TOML by extension, one schema, unknown keys refused. See
//! `docs/config.md` for every key. Split by concern:
//! - `file`: the schema as written (every key, its default);
//! - `parse`: YAML/TOML into the schema, errors with file, line, column, key;
//! - `merge`: the catalog's facts with the stack file's overrides (each
//!   fact declared once, in `catalog::component_facts!`);
//! - `resolve`: validation and resolution for an environment;
//! - `model`: the resolved [`Stack`] the planner and the engine read.

mod error;
mod file;
mod merge;
mod model;
mod parse;
mod resolve;
#[cfg(test)]
mod tests;

pub use error::Error;
pub use file::{
    ComponentConfig, Deadlines, Email, EnvironmentConfig, Maintenance, Metrics, Notifications,
    OnFailure, PhaseSpec, ReportLevel, Retention, StackFile, Webhook, WebhookFormat,
};
pub use model::{Component, Stack};
pub use parse::Format;

/// The environment variable that chooses the environment when no flag does.
pub const ENVIRONMENT_VAR: &str = "OBS_UPGRADE_ENVIRONMENT";
