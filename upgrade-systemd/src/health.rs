//! The `HealthProbe` port from the catalog: unit active and not restarting,
//! readiness (or liveness) over HTTP, and `*_build_info{version}` equal to
//! the target, within the component's deadline.

use std::sync::Arc;
use std::time::Duration;

use upgrade_core::config::Component;
use upgrade_core::journal::HealthRecord;
use upgrade_core::ports::{HealthProbe, PortError, ServiceControl};
use upgrade_core::version::Version;

use crate::probes::{self, Check, Probe};

/// Probes built from the catalog facts of each component.
#[derive(Clone)]
pub struct CatalogHealth {
    control: Arc<dyn ServiceControl>,
    host: String,
    deadline_override: Option<Duration>,
    store: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for CatalogHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogHealth")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl CatalogHealth {
    /// Probes on `host` (usually `127.0.0.1`) using `control` for unit state.
    pub fn new(control: Arc<dyn ServiceControl>, host: &str) -> Self {
        CatalogHealth {
            control,
            host: host.to_owned(),
            deadline_override: None,
            store: None,
        }
    }

    /// Also checks that the unit's main process runs the release's own
    /// binary from this store (`<store>/<component>/<version>/<binary>`).
    #[must_use]
    pub fn with_store(mut self, store: &std::path::Path) -> Self {
        self.store = Some(store.to_owned());
        self
    }

    /// Uses one deadline for every component (tests, impatient operators).
    #[must_use]
    pub fn with_deadline(mut self, d: Duration) -> Self {
        self.deadline_override = Some(d);
        self
    }

    /// The probes for a component at a version.
    pub fn probes_for(
        &self,
        component: &Component,
        expected: &Version,
    ) -> Result<Vec<Probe>, PortError> {
        let spec = &component.spec;
        let status = self.control.status(&spec.unit)?;
        let mut out = vec![Probe::new(Check::UnitActive {
            unit: spec.unit.clone(),
            n_restarts: status.n_restarts,
        })];
        if let Some(port) = spec.port {
            let base = format!("http://{}:{port}", self.host);
            if let Some(path) = spec.ready_path.as_ref().or(spec.health_path.as_ref()) {
                out.push(Probe::new(Check::Http {
                    url: format!("{base}{path}"),
                    body: None,
                }));
            }
            if let Some(metric) = &spec.build_info {
                out.push(Probe::new(Check::BuildInfo {
                    url: format!("{base}/metrics"),
                    metric: metric.clone(),
                    aliases: spec.build_info_aliases.clone(),
                    label: spec.version_label.clone(),
                    version: expected.to_string(),
                    optional: !spec.version_metric_required,
                }));
            }
        }
        if let Some(store) = &self.store {
            let dir = store.join(&component.name);
            out.push(Probe::new(Check::RunningBinary {
                unit: spec.unit.clone(),
                expected: dir.join(expected.to_string()).join(spec.main_binary()),
                store: dir,
            }));
        }
        if let Some(port) = spec.port {
            for path in &spec.advisory_paths {
                out.push(Probe::advisory(Check::Http {
                    url: format!("http://{}:{port}{path}", self.host),
                    body: None,
                }));
            }
        }
        Ok(out)
    }
}

impl HealthProbe for CatalogHealth {
    fn check(&self, component: &Component, expected: &Version) -> Result<HealthRecord, PortError> {
        let probes = self.probes_for(component, expected)?;
        let deadline = self
            .deadline_override
            .unwrap_or(Duration::from_secs(component.spec.health_deadline_secs));
        Ok(probes::run(&probes, deadline, Some(self.control.as_ref())).to_record())
    }
}
