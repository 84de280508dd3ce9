//! Giving a redirected component back to whatever installed it.
//!
//! A binary the tool must not overwrite (a package's, or one outside its bin
//! directory) is managed through a drop-in that makes the unit run the
//! managed link instead. `unmanage` removes that drop-in and the links, and
//! restarts the unit: the original binary runs again, untouched all along.

use serde::Serialize;

use crate::Error;
use crate::host::Host;

/// What `unmanage` did.
#[derive(Debug, Clone, Serialize)]
pub struct UnmanageReport {
    /// The component.
    pub component: String,
    /// Its unit.
    pub unit: String,
    /// The drop-in removed (`None`: there was none, nothing changed).
    pub drop_in: Option<String>,
    /// The links into the store removed from the bin directory.
    pub links: Vec<String>,
    /// Whether the unit was restarted onto its own binary.
    pub restarted: bool,
}

/// Removes the component's redirect drop-in and its links into the store,
/// reloads units and restarts the unit (when it runs). The store keeps its
/// versions; a later `apply` adopts and redirects again.
pub fn unmanage(host: &Host, component: &str) -> Result<UnmanageReport, Error> {
    host.check_scope(&upgrade_core::engine::Scope::Component {
        name: component.to_owned(),
    })?;
    let _lock = host.lock()?;
    let comp = &host.stack().components[component];
    let unit = comp.spec.unit.clone();
    let services = host.services();
    let drop_in = services
        .unredirect(&unit)
        .map_err(Error::port(format!("cannot remove the drop-in of {unit}")))?;
    let mut report = UnmanageReport {
        component: component.to_owned(),
        unit: unit.clone(),
        drop_in: drop_in.as_ref().map(|p| p.display().to_string()),
        links: Vec::new(),
        restarted: false,
    };
    if drop_in.is_none() {
        return Ok(report);
    }
    let inspector = host.inspector();
    for b in &comp.spec.binaries {
        let link = host.layout().bin_dir().join(&b.name);
        if inspector.is_store_link(comp, &link) {
            std::fs::remove_file(&link)
                .map_err(|e| Error::Usage(format!("cannot remove {}: {e}", link.display())))?;
            report.links.push(link.display().to_string());
        }
    }
    let running = services
        .status(&unit)
        .map_err(Error::port(format!("cannot read the status of {unit}")))?
        .is_running();
    if running {
        services
            .restart(&unit)
            .map_err(Error::port(format!("cannot restart {unit}")))?;
        report.restarted = true;
    }
    Ok(report)
}
