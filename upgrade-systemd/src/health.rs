//! The `HealthProbe` port from the catalog: unit active and not restarting,
//! readiness (or liveness) over HTTP, and `*_build_info{version}` equal to
//! the target, within the component's deadline.

use std::sync::Arc;
use std::time::Duration;

use upgrade_core::config::Component;
use upgrade_core::endpoint::{self, Endpoint};
use upgrade_core::journal::HealthRecord;
use upgrade_core::ports::{HealthProbe, PortError, ServiceControl, ServiceStatus};
use upgrade_core::version::Version;

use crate::probes::{self, Access, Check, Probe};

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

    /// Where the component answers: the stack file's `endpoint` over the
    /// flags of the command its unit runs (and the web configuration file
    /// they name) over the catalog port. `None` without any port.
    pub fn endpoint(
        &self,
        component: &Component,
        status: &ServiceStatus,
    ) -> Result<Option<Endpoint>, PortError> {
        let spec = &component.spec;
        let source = match (&status.drop_ins[..], &status.fragment_path) {
            ([], Some(f)) => format!("the ExecStart of {f}"),
            ([], None) => format!("the ExecStart of {}", spec.unit),
            (d, _) => format!("the ExecStart of {} (drop-ins {})", spec.unit, d.join(", ")),
        };
        // The running process's own command line, where there is one: the
        // manager's ExecStart may hold `$ARGS` from an EnvironmentFile
        // (Debian's packages do), the process has them expanded.
        let running = status.main_pid.and_then(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let argv: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            (!argv.is_empty()).then_some((pid, argv))
        });
        let source = match &running {
            Some((pid, _)) => format!("the command line of pid {pid} ({source})"),
            None => source,
        };
        let argv = running
            .map(|(_, argv)| argv)
            .or_else(|| status.command.clone());
        let command = argv.as_deref().map(|argv| endpoint::Command {
            argv,
            source: &source,
        });
        let web_path = command
            .as_ref()
            .and_then(|c| endpoint::flag(c.argv, "web.config.file"))
            .filter(|_| spec.endpoint.as_ref().is_none_or(|e| e.scheme.is_none()));
        let web = match web_path {
            Some(path) => {
                let bytes = upgrade_state::fsutil::read_capped(std::path::Path::new(path), 1 << 20)
                    .map_err(|e| {
                        format!(
                            "{}: cannot read the web config {path} named by {source}: {e}; \
                             make it readable by root, or set `endpoint.scheme` (and its \
                             credentials) for this component to skip reading it",
                            component.name
                        )
                    })?;
                let wc =
                    endpoint::parse_web_config(&String::from_utf8_lossy(&bytes)).map_err(|e| {
                        format!(
                            "{}: web config {path} is not valid YAML: {e}; fix it (the service \
                             reads it too), or set `endpoint.scheme` to skip reading it",
                            component.name
                        )
                    })?;
                Some((path.to_owned(), wc))
            }
            None => None,
        };
        Ok(endpoint::resolve(
            spec.endpoint.as_ref(),
            spec.port,
            command,
            web.as_ref().map(|(p, w)| (p.as_str(), w)),
        ))
    }

    /// The probes for a component at a version.
    pub fn probes_for(
        &self,
        component: &Component,
        expected: &Version,
    ) -> Result<Vec<Probe>, PortError> {
        self.probes_with(component, expected, false)
    }

    /// The probes after a switch: [`CatalogHealth::probes_for`], then the
    /// component's `verify` probes (named metrics, its Prometheus targets,
    /// its journal since the process started).
    pub fn probes_after_switch(
        &self,
        component: &Component,
        expected: &Version,
    ) -> Result<Vec<Probe>, PortError> {
        self.probes_with(component, expected, true)
    }

    /// The unit's status and endpoint read once for both kinds of probes.
    fn probes_with(
        &self,
        component: &Component,
        expected: &Version,
        after_switch: bool,
    ) -> Result<Vec<Probe>, PortError> {
        let spec = &component.spec;
        let status = self.control.status(&spec.unit)?;
        let endpoint = self.endpoint(component, &status)?;
        let mut out = self.basic_probes(component, expected, &status, endpoint.as_ref())?;
        if after_switch {
            out.extend(Self::verify_probes(component, &status, endpoint.as_ref())?);
        }
        Ok(out)
    }

    fn basic_probes(
        &self,
        component: &Component,
        expected: &Version,
        status: &ServiceStatus,
        endpoint: Option<&Endpoint>,
    ) -> Result<Vec<Probe>, PortError> {
        let spec = &component.spec;
        let running = self.store.as_ref().map(|store| {
            let dir = store.join(&component.name);
            Probe::new(Check::RunningBinary {
                unit: spec.unit.clone(),
                expected: dir.join(expected.to_string()).join(spec.main_binary()),
                store: dir,
            })
        });
        let mut out = vec![Probe::new(Check::UnitActive {
            unit: spec.unit.clone(),
            n_restarts: status.n_restarts,
        })];
        if let Some(ep) = endpoint {
            if let Some(why) = ep.missing.first() {
                return Err(format!("{}: {why}", component.name).into());
            }
            let access = access_of(ep);
            if let Some(path) = spec.ready_path.as_ref().or(spec.health_path.as_ref()) {
                // `/metrics` in the catalog is the metrics path, wherever it moved.
                let url = if path == "/metrics" {
                    ep.metrics_url()
                } else {
                    ep.url(path)
                };
                out.push(Probe::new(Check::Http { url, body: None }).with_access(access.clone()));
            }
            if let Some(metric) = &spec.build_info {
                out.push(
                    Probe::new(Check::BuildInfo {
                        url: ep.metrics_url(),
                        metric: metric.clone(),
                        aliases: spec.build_info_aliases.clone(),
                        label: spec.version_label.clone(),
                        version: expected.to_string(),
                        optional: !spec.version_metric_required,
                    })
                    .with_access(access.clone()),
                );
            }
            out.extend(running);
            for path in &spec.advisory_paths {
                out.push(
                    Probe::advisory(Check::Http {
                        url: ep.url(path),
                        body: None,
                    })
                    .with_access(access.clone()),
                );
            }
        } else {
            out.extend(running);
        }
        Ok(out)
    }
}

impl CatalogHealth {
    /// The component's `verify` probes.
    fn verify_probes(
        component: &Component,
        status: &ServiceStatus,
        endpoint: Option<&Endpoint>,
    ) -> Result<Vec<Probe>, PortError> {
        let spec = &component.spec;
        let verify = &spec.verify;
        if verify.is_empty() {
            return Ok(Vec::new());
        }
        let since_ms = started_unix_ms(status);
        let mut out = Vec::new();
        if !verify.metrics.is_empty() {
            let ep = endpoint.ok_or_else(|| {
                format!(
                    "{}: `verify.metrics` needs the service's address; set `port` or \
                     `endpoint.address`",
                    component.name
                )
            })?;
            out.push(
                Probe::new(Check::Metrics {
                    url: ep.metrics_url(),
                    names: verify.metrics.clone(),
                })
                .with_access(access_of(ep)),
            );
        }
        if let Some(p) = &verify.prometheus {
            let address = endpoint.map(|e| e.address.clone());
            if p.job.is_none() && p.instance.is_none() && address.is_none() {
                return Err(format!(
                    "{}: `verify.prometheus` needs `job` or `instance`, or the service's address",
                    component.name
                )
                .into());
            }
            out.push(
                Probe::new(Check::PrometheusTarget {
                    api: p.url.clone(),
                    job: p.job.clone(),
                    instance: p.instance.clone(),
                    address: address.unwrap_or_default(),
                    since_ms,
                })
                .with_access(Access {
                    ca_file: p.ca_file.as_ref().map(Into::into),
                    client_cert: None,
                    auth: p
                        .bearer_token_file
                        .clone()
                        .map(upgrade_core::endpoint::Auth::BearerFile),
                }),
            );
        }
        if !verify.journal_errors.is_empty() {
            if status.started_monotonic_us == 0 {
                return Err(format!(
                    "{}: `verify.journal_errors` reads systemd's journal, and {} is not run \
                     by systemd here; remove the key for this host",
                    component.name, spec.unit
                )
                .into());
            }
            out.push(Probe::new(Check::Journal {
                unit: spec.unit.clone(),
                patterns: verify.journal_errors.clone(),
                since_ms,
            }));
        }
        Ok(out)
    }

    fn deadline(&self, component: &Component) -> Duration {
        self.deadline_override
            .unwrap_or(Duration::from_secs(component.spec.health_deadline_secs))
    }

    /// Watches the unit for `settle`: the same main process, running, not
    /// restarted; then the probes once more.
    fn settle(
        &self,
        component: &Component,
        probes: &[Probe],
        settle: Duration,
    ) -> Result<probes::ProbeResult, PortError> {
        let unit = &component.spec.unit;
        let first = self.control.status(unit)?;
        let start = std::time::Instant::now();
        let fail = |detail: String| probes::ProbeResult {
            name: format!("settle {} s", settle.as_secs()),
            ok: false,
            decides: true,
            attempts: 1,
            detail,
            elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        while start.elapsed() < settle {
            std::thread::sleep(Duration::from_millis(250).min(settle));
            let now = self.control.status(unit)?;
            let after = start.elapsed().as_secs_f64();
            if !now.is_running() {
                return Ok(fail(format!(
                    "{unit} became {} ({}) after {after:.1} s",
                    now.active_state, now.sub_state
                )));
            }
            if now.main_pid != first.main_pid || now.n_restarts != first.n_restarts {
                return Ok(fail(format!(
                    "{unit} restarted after {after:.1} s (pid {} → {}, restarts {} → {})",
                    first.main_pid.unwrap_or(0),
                    now.main_pid.unwrap_or(0),
                    first.n_restarts,
                    now.n_restarts
                )));
            }
        }
        let again = probes::run(
            probes,
            self.deadline(component),
            Some(self.control.as_ref()),
        );
        if !again.healthy {
            let why: Vec<String> = again.to_record().detail;
            return Ok(fail(format!(
                "checks failed at the end: {}",
                why.join("; ")
            )));
        }
        let mut ok = fail(format!(
            "pid {} stayed up, checks pass at the end",
            first.main_pid.unwrap_or(0)
        ));
        ok.ok = true;
        Ok(ok)
    }
}

/// How an HTTP check reaches an endpoint.
fn access_of(ep: &Endpoint) -> Access {
    Access {
        ca_file: ep.ca_file.as_ref().map(Into::into),
        client_cert: ep.client_cert.as_ref().map(|(c, k)| (c.into(), k.into())),
        auth: ep.auth.clone(),
    }
}

/// When the unit's main process started, in Unix milliseconds: from the
/// manager's monotonic timestamp; now when unknown.
fn started_unix_ms(status: &ServiceStatus) -> i64 {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    if status.started_monotonic_us == 0 {
        return now_ms;
    }
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mono_us = i128::from(mono.tv_sec) * 1_000_000 + i128::from(mono.tv_nsec) / 1000;
    let ago_ms = (mono_us - i128::from(status.started_monotonic_us)).max(0) / 1000;
    now_ms - i64::try_from(ago_ms).unwrap_or(0)
}

impl HealthProbe for CatalogHealth {
    fn check(&self, component: &Component, expected: &Version) -> Result<HealthRecord, PortError> {
        let probes = self.probes_for(component, expected)?;
        Ok(probes::run(
            &probes,
            self.deadline(component),
            Some(self.control.as_ref()),
        )
        .to_record())
    }

    fn check_after_switch(
        &self,
        component: &Component,
        expected: &Version,
    ) -> Result<HealthRecord, PortError> {
        let probes = self.probes_after_switch(component, expected)?;
        let control = Some(self.control.as_ref());
        let mut report = probes::run(&probes, self.deadline(component), control);
        let settle = component.spec.verify.settle_secs;
        if report.healthy && settle > 0 {
            let r = self.settle(component, &probes, Duration::from_secs(settle))?;
            report.healthy = r.ok;
            report.results.push(r);
        }
        Ok(report.to_record())
    }
}
