//! The host's housekeeping: `config check`, `state reset`, the timers of
//! unattended operation, and the built-in supervisor's services.

use std::path::{Path, PathBuf};

use serde::Serialize;
use upgrade_state::{StateStore, fsutil};
use upgrade_systemd::systemctl::Systemd;
use upgrade_systemd::timers::{self, HostPaths, UNITS};

use crate::Error;
use crate::host::{Host, HostOptions, ServiceManager};

/// What `config check` found: the stack file read and validated.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigCheckReport {
    /// Always `true` (a bad stack file is an error, not a report).
    pub ok: bool,
    /// The stack file, or `None` for the built-in catalog.
    pub source: Option<PathBuf>,
    /// How many components the stack manages.
    pub components: usize,
    /// The environment whose overrides were applied.
    pub environment: Option<String>,
}

/// Reports on the stack file [`Host::open`] already read and validated, and
/// fails when the pin file the host would apply does not fit it.
pub fn config_check(host: &Host) -> Result<ConfigCheckReport, Error> {
    host.check_pins()?;
    let stack = host.stack();
    for (name, comp) in &stack.components {
        let checked = match upgrade_fetch::store::sigstore_trusted_root(comp) {
            Ok(None) => continue,
            Ok(Some(text)) => upgrade_fetch::verify::sigstore_trusted_root(&text).map_err(|why| {
                let path = comp
                    .spec
                    .sigstore_trusted_root
                    .as_deref()
                    .unwrap_or_default();
                format!("{path}: {why}")
            }),
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = checked {
            return Err(Error::Usage(format!(
                "components.{name}.sigstore_trusted_root: {why}; give a Sigstore \
                 trusted_root.json, or remove the key to use the built-in one"
            )));
        }
    }
    Ok(ConfigCheckReport {
        ok: true,
        source: stack.source.clone(),
        components: stack.components.len(),
        environment: stack.environment.clone(),
    })
}

/// Where a component's service answers, as the health checks derive it.
#[derive(Debug, Clone, Serialize)]
pub struct DerivedEndpoint {
    /// The metrics URL probed (`None`: no address could be derived, or an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
    /// How the probes authenticate (`basic`, `bearer`), if they do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// A client certificate is presented.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub client_cert: bool,
    /// The CA trusted instead of the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Where each part came from.
    pub from: Vec<String>,
    /// Why it cannot be derived (an unreadable web config, a missing credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where each component's service answers: its unit's command line (the
/// running process's, else the manager's `ExecStart`), the web config it
/// names and the stack file's `endpoint`, each part with its source.
pub fn derived_endpoints(host: &Host) -> std::collections::BTreeMap<String, DerivedEndpoint> {
    use upgrade_core::endpoint::Auth;
    let health = upgrade_systemd::health::CatalogHealth::new(host.services(), "127.0.0.1");
    let services = host.services();
    let mut out = std::collections::BTreeMap::new();
    for (name, comp) in &host.stack().components {
        let mut d = DerivedEndpoint {
            metrics_url: None,
            auth: None,
            client_cert: false,
            ca_file: None,
            from: Vec::new(),
            error: None,
        };
        let found = services
            .status(&comp.spec.unit)
            .and_then(|st| health.endpoint(comp, &st));
        match found {
            Ok(Some(ep)) => {
                d.metrics_url = Some(ep.metrics_url());
                d.auth = ep.auth.as_ref().map(|a| match a {
                    Auth::Basic(b) => format!("basic ({})", b.username),
                    Auth::BearerFile(_) => "bearer".to_owned(),
                });
                d.client_cert = ep.client_cert.is_some();
                d.ca_file.clone_from(&ep.ca_file);
                d.from.clone_from(&ep.provenance);
                d.error = (!ep.missing.is_empty()).then(|| ep.missing.join("; "));
            }
            Ok(None) => {
                d.error = Some("no port in the catalog, the command line or `endpoint`".into());
            }
            Err(e) => d.error = Some(e.to_string()),
        }
        out.insert(name.clone(), d);
    }
    out
}

/// What `state reset` did.
#[derive(Debug, Clone, Serialize)]
pub struct StateResetReport {
    /// The state file read cleanly (or there was none); it was set aside
    /// only because the reset was forced.
    pub healthy: bool,
    /// Where the damaged state file was set aside (`None`: there was none).
    pub set_aside: Option<PathBuf>,
    /// Whether the previous good copy became the state file (else the journal
    /// starts empty).
    pub restored_good_copy: bool,
}

/// Sets a damaged state file aside under the lock, restoring the previous
/// copy when it reads cleanly. A state file that reads cleanly is refused
/// ([`Error::Usage`]: putting an older copy back would force a needless
/// resume) unless `force`, which sets it aside and starts an empty journal.
pub fn state_reset(host: &Host, force: bool) -> Result<StateResetReport, Error> {
    let _lock = host.lock()?;
    let store = StateStore::open(&host.paths().state_dir)?;
    if let Ok(run) = store.load() {
        if !force {
            let last = run.map_or_else(
                || "no run recorded".to_owned(),
                |r| format!("last run {} {}", r.id, r.status),
            );
            return Err(Error::Usage(format!(
                "the state file reads cleanly ({last}): there is nothing to reset, and putting \
                 an older copy back would force a needless resume; `state reset --force` sets \
                 it aside anyway and starts an empty journal"
            )));
        }
        return Ok(StateResetReport {
            healthy: true,
            set_aside: store.set_aside("reset")?,
            restored_good_copy: false,
        });
    }
    let out = store.reset_damaged()?;
    Ok(StateResetReport {
        healthy: false,
        set_aside: out.set_aside,
        restored_good_copy: out.restored_good_copy,
    })
}

/// Options of [`timer_install`].
#[derive(Debug, Clone, Default)]
pub struct TimerInstallOptions {
    /// The `obs-upgrade` the units run (`None`: this program).
    pub binary: Option<PathBuf>,
    /// Write the units but do not enable them.
    pub no_enable: bool,
}

/// What [`timer_install`] or [`timer_remove`] changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TimerReport {
    /// Unit files written.
    pub written: Vec<PathBuf>,
    /// Unit files removed.
    pub removed: Vec<PathBuf>,
    /// Timers enabled (or disabled, for a removal) through systemctl.
    pub enabled: Vec<String>,
    /// Whether systemd manages this root (else the operator enables them).
    pub systemd: bool,
}

fn systemd(host: &Host) -> Option<Systemd> {
    let timeout = std::time::Duration::from_secs(host.stack().deadlines.systemctl_secs);
    host.uses_systemd().then(|| {
        Systemd::new(&host.options().root)
            .with_unit_dir(host.unit_dir())
            .with_timeout(timeout)
    })
}

fn timers_to_enable() -> [&'static str; 2] {
    [UNITS[1], UNITS[3]]
}

/// Writes the check and apply units (services and timers) into the unit
/// directory, each atomically, reloads systemd and enables the timers. The
/// units run with the global options the host was opened with (`--root`,
/// `--config`, `--github-api`, `--mirror`, …), read
/// `<root>/etc/obs-upgrade/environment` when it exists (tokens, proxies),
/// and may write only what each writes: the check service the store,
/// state, cache and metrics directories; the apply service also the
/// binaries and unit directories.
pub fn timer_install(host: &Host, opts: &TimerInstallOptions) -> Result<TimerReport, Error> {
    let binary = match &opts.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| {
            Error::Usage(format!(
                "cannot tell where this program is ({e}); pass the binary to run"
            ))
        })?,
    };
    let args = unit_args(host);
    let l = host.layout();
    let mut check_writable = vec![l.store_dir(), l.state_dir(), l.cache_dir()];
    if let Some(d) = host.metrics_path().parent() {
        check_writable.push(d.to_owned());
    }
    let mut writable = check_writable.clone();
    writable.extend([l.bin_dir(), host.unit_dir()]);
    let paths = HostPaths {
        writable,
        check_writable,
        environment_file: Some(l.config_dir().join("environment")),
    };
    let units = timers::render(host.stack(), &binary, &args, &paths).map_err(Error::Usage)?;
    // `ProtectSystem=strict` leaves the services no way to create a
    // directory outside these paths: the first unattended run on a fresh
    // host could not make `/opt/obs-upgrade`. They exist from here on.
    fsutil::create_dir_all(&l.state_dir())?;
    fsutil::create_dir_all(&l.cache_dir())?;
    for d in &paths.writable {
        fsutil::create_dir_all_mode(d, 0o755)?;
    }
    let dir = host.unit_dir();
    std::fs::create_dir_all(&dir).map_err(fsutil::io_err("cannot create directory", &dir))?;
    let mut report = TimerReport {
        systemd: host.uses_systemd(),
        ..TimerReport::default()
    };
    for (name, text) in &units {
        let path = dir.join(name);
        fsutil::atomic_write_mode(&path, text.as_bytes(), None, 0o644)?;
        report.written.push(path);
    }
    if let Some(sd) = systemd(host) {
        sd.daemon_reload()
            .map_err(|e| Error::port("cannot reload systemd")(e.into()))?;
        if !opts.no_enable {
            let [check, apply] = timers_to_enable();
            sd.systemctl(
                "enable",
                "obs-upgrade timers",
                &["enable", "--now", check, apply],
            )
            .map_err(|e| Error::port("cannot enable the timers")(e.into()))?;
            report.enabled = vec![check.to_owned(), apply.to_owned()];
        }
    }
    Ok(report)
}

/// The global options this host was opened with, as the units' command
/// line: what the operator gave `timer install` is what the timers run with.
fn unit_args(host: &Host) -> Vec<String> {
    let o = host.options();
    let mut args = Vec::new();
    let mut add = |flag: &str, value: String| {
        args.push(flag.to_owned());
        args.push(value);
    };
    if o.root != Path::new("/") {
        add("--root", o.root.display().to_string());
    }
    if let Some(c) = &o.config {
        add("--config", c.display().to_string());
    }
    if let Some(e) = &host.stack().environment {
        add("--environment", e.clone());
    }
    if let Some(g) = &o.github_api {
        add("--github-api", g.clone());
    }
    if let Some(u) = &o.unit_dir {
        add("--unit-dir", u.display().to_string());
    }
    if let Some(m) = &o.mirror {
        add("--mirror", m.display().to_string());
    }
    if o.list_concurrency != HostOptions::default().list_concurrency {
        add("--list-concurrency", o.list_concurrency.to_string());
    }
    if let Some(w) = o.wait_lock {
        add("--wait-lock", w.as_secs().to_string());
    }
    match o.service_manager {
        ServiceManager::Systemd => add("--service-manager", "systemd".into()),
        ServiceManager::Supervisor => add("--service-manager", "supervisor".into()),
        ServiceManager::Auto => {}
    }
    if o.offline {
        args.push("--offline".into());
    }
    args
}

/// Disables the timers (where systemd runs) and removes the four unit files.
pub fn timer_remove(host: &Host) -> Result<TimerReport, Error> {
    let sd = systemd(host);
    let mut report = TimerReport {
        systemd: sd.is_some(),
        ..TimerReport::default()
    };
    if let Some(sd) = &sd {
        let [check, apply] = timers_to_enable();
        // Not enabled, or already gone: removing the files is what matters.
        if sd
            .systemctl(
                "disable",
                "obs-upgrade timers",
                &["disable", "--now", check, apply],
            )
            .is_ok()
        {
            report.enabled = vec![check.to_owned(), apply.to_owned()];
        }
    }
    for name in UNITS {
        let path = host.unit_dir().join(name);
        if path.symlink_metadata().is_ok() {
            std::fs::remove_file(&path).map_err(fsutil::io_err("cannot remove", &path))?;
            report.removed.push(path);
        }
    }
    if let Some(sd) = &sd {
        sd.daemon_reload()
            .map_err(|e| Error::port("cannot reload systemd")(e.into()))?;
    }
    Ok(report)
}

/// One unit of unattended operation.
#[derive(Debug, Clone, Serialize)]
pub struct TimerUnit {
    /// The unit name.
    pub unit: String,
    /// Whether its file is in the unit directory.
    pub installed: bool,
    /// `systemctl is-enabled`'s answer, or `-` where systemd does not run.
    pub enabled: String,
}

/// The timers and the maintenance windows they follow.
#[derive(Debug, Clone, Serialize)]
pub struct TimerStatus {
    /// The four units.
    pub units: Vec<TimerUnit>,
    /// Whether the stack defines any maintenance window.
    pub windows_defined: bool,
    /// Whether a window is open now.
    pub window_open: bool,
    /// When the next window opens (`None`: none within 400 days, or open now).
    pub next_window: Option<jiff::Timestamp>,
}

/// The four units' state and the maintenance schedule.
pub fn timer_status(host: &Host) -> TimerStatus {
    let sd = systemd(host);
    let schedule = &host.stack().maintenance.schedule;
    let now = jiff::Timestamp::now();
    let units = UNITS
        .iter()
        .map(|u| TimerUnit {
            unit: (*u).to_owned(),
            installed: host.unit_dir().join(u).exists(),
            enabled: sd
                .as_ref()
                .and_then(|sd| sd.systemctl("is-enabled", u, &["is-enabled", u]).ok())
                .map_or_else(|| "-".to_owned(), |s| s.trim().to_owned()),
        })
        .collect();
    TimerStatus {
        units,
        windows_defined: !schedule.windows.is_empty(),
        window_open: schedule.is_open(now),
        next_window: schedule.next_opening(now),
    }
}

/// A service of the built-in supervisor.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRow {
    /// The unit name.
    pub unit: String,
    /// Its pid, when running.
    pub pid: Option<u32>,
}

/// The supervisor's services of this stack (those it has a definition for).
fn supervised(host: &Host, units: &[String]) -> Result<Vec<String>, Error> {
    let sup = host.supervisor();
    let all: Vec<String> = host
        .stack()
        .components
        .values()
        .map(|c| c.spec.unit.clone())
        .filter(|u| sup.spec(u).is_ok())
        .collect();
    if units.is_empty() {
        return Ok(all);
    }
    match units.iter().find(|u| !all.contains(u)) {
        Some(u) => Err(Error::Usage(format!(
            "the supervisor has no service `{u}`; services: {}",
            if all.is_empty() {
                "(none)".to_owned()
            } else {
                all.join(", ")
            }
        ))),
        None => Ok(units.to_vec()),
    }
}

/// Starts the given services (none: all) under the built-in supervisor.
pub fn supervisor_start(host: &Host, units: &[String]) -> Result<Vec<ServiceRow>, Error> {
    let sup = host.supervisor();
    supervised(host, units)?
        .into_iter()
        .map(|u| {
            let pid = sup
                .start_service(&u)
                .map_err(|e| Error::port(format!("cannot start {u}"))(e.into()))?;
            Ok(ServiceRow {
                unit: u,
                pid: Some(pid),
            })
        })
        .collect()
}

/// Stops the given services (none: all) of the built-in supervisor.
pub fn supervisor_stop(host: &Host, units: &[String]) -> Result<Vec<ServiceRow>, Error> {
    let sup = host.supervisor();
    supervised(host, units)?
        .into_iter()
        .map(|u| {
            sup.stop_service(&u)
                .map_err(|e| Error::port(format!("cannot stop {u}"))(e.into()))?;
            Ok(ServiceRow { unit: u, pid: None })
        })
        .collect()
}

/// Every service of the built-in supervisor and its pid when running.
pub fn supervisor_status(host: &Host) -> Result<Vec<ServiceRow>, Error> {
    let sup = host.supervisor();
    Ok(supervised(host, &[])?
        .into_iter()
        .map(|u| ServiceRow {
            pid: sup.running_pid(&u),
            unit: u,
        })
        .collect())
}
