//! The catalog merge: a component's facts are the catalog's, overridden by
//! the stack file; a component the catalog does not know is described
//! completely.

use super::file::ComponentConfig;
use crate::catalog::{self, ComponentSpec};

/// The facts of one component: `base` (its catalog entry, if any) with the
/// stack file's overrides applied.
pub(super) fn merge_spec(
    base: Option<&ComponentSpec>,
    c: &ComponentConfig,
) -> Result<ComponentSpec, String> {
    let mut s = match base {
        Some(b) => b.clone(),
        None => {
            let missing: Vec<&str> = [
                ("repo", c.repo.is_some()),
                ("asset", c.asset.is_some()),
                ("archive", c.archive.is_some()),
                ("binaries", c.binaries.is_some()),
            ]
            .into_iter()
            .filter_map(|(k, set)| (!set).then_some(k))
            .collect();
            if !missing.is_empty() {
                let known: Vec<String> = catalog::builtin().into_keys().collect();
                return Err(format!(
                    "not in the built-in catalog ({}); describe it completely: missing {}",
                    known.join(", "),
                    missing.join(", ")
                ));
            }
            ComponentSpec::default()
        }
    };
    c.apply_overrides(&mut s);
    if s.binaries.is_empty() {
        return Err("`binaries` is empty; name at least the service's own binary".into());
    }
    if s.artifact.is_empty() {
        s.artifact = s.binaries[0].name.clone();
    }
    if s.unit.is_empty() {
        s.unit = format!("{}.service", s.binaries[0].name);
    }
    Ok(s)
}
