//! Applies one component with a health probe of your own: the catalog's
//! probes, then a metric your dashboards depend on must still be exported.
//! When it is missing the engine rolls the component back by itself.
//!
//! ```text
//! cargo run -p obs-upgrade-examples --example custom_probe -- \
//!     ROOT COMPONENT METRIC
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use upgrade_cli::host::{Host, HostOptions};
use upgrade_cli::ops::{self, ApplyOptions, ApplyOutcome, Quiet};
use upgrade_core::config::Component;
use upgrade_core::engine::Scope;
use upgrade_core::journal::HealthRecord;
use upgrade_core::ports::{HealthProbe, PortError};
use upgrade_core::version::Version;
use upgrade_systemd::health::CatalogHealth;
use upgrade_systemd::probes::{self, Check, Probe};

/// The catalog's probes, then `metric` in the service's `/metrics`.
struct KeepsMetric {
    catalog: CatalogHealth,
    metric: String,
}

impl HealthProbe for KeepsMetric {
    fn check(&self, c: &Component, expected: &Version) -> Result<HealthRecord, PortError> {
        let mut record = self.catalog.check(c, expected)?;
        let port = c.spec.port.ok_or("the component has no port")?;
        let probe = Probe::new(Check::Metrics {
            url: format!("http://127.0.0.1:{port}/metrics"),
            names: vec![self.metric.clone()],
        });
        let report = probes::run(&[probe], Duration::from_secs(5), None);
        record.healthy &= report.healthy;
        record.detail.extend(report.to_record().detail);
        Ok(record)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, component, metric] = args.as_slice() else {
        eprintln!("usage: custom_probe ROOT COMPONENT METRIC");
        return ExitCode::from(2);
    };
    let opts = HostOptions {
        root: PathBuf::from(root),
        ..HostOptions::default()
    };
    let run = Host::open(opts).and_then(|host| {
        let probe = KeepsMetric {
            catalog: CatalogHealth::new(host.services(), "127.0.0.1"),
            metric: metric.clone(),
        };
        let host = host.with_health_probe(Arc::new(probe));
        let apply = ApplyOptions {
            scope: Scope::Component {
                name: component.clone(),
            },
            approve_all: true,
            ..ApplyOptions::default()
        };
        ops::apply(&host, &apply, &Quiet)
    });
    match run {
        Ok(ApplyOutcome::Ran { report, .. }) => {
            for s in &report.steps {
                let to = s.to.as_ref().map(ToString::to_string).unwrap_or_default();
                let why = s.message.as_deref().unwrap_or("");
                println!("{} → {to}: {:?} {why}", s.component, s.status);
            }
            println!("run {}: {:?}", report.run_id, report.status);
            ExitCode::from(u8::from(report.failed() + report.rolled_back() > 0))
        }
        Ok(other) => {
            println!("{other:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
