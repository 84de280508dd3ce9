//! Ports: the traits the engine talks through. Adapters live in the other crates.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::advisory::Advisory;
use crate::config::Component;
use crate::journal::{HistoryRecord, RunRecord};
use crate::release::Release;
use crate::version::Version;

/// An adapter's error, boxed so that every adapter keeps its own type.
pub type PortError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Durable memory of runs: the current run's record and the history log.
///
/// Implemented by `upgrade-state`'s file journal; the engine's tests use an
/// in-memory one.
pub trait Journal {
    /// The current or last run, if any.
    fn load(&mut self) -> Result<Option<RunRecord>, PortError>;
    /// Saves the run record durably (it survives a crash right after).
    fn save(&mut self, run: &RunRecord) -> Result<(), PortError>;
    /// Appends one record to the history log durably.
    fn append_history(&mut self, record: &HistoryRecord) -> Result<(), PortError>;
}

/// Where releases come from (GitHub, GitLab, a mirror).
pub trait ReleaseSource: Send + Sync {
    /// The component's releases, drafts removed; pre-releases included only
    /// when the component's policy asks for them.
    fn releases(&self, component: &Component) -> Result<Vec<Release>, PortError>;

    /// The security advisories published about the component's releases
    /// (none unless the source knows of a feed).
    fn advisories(&self, component: &Component) -> Result<Vec<Advisory>, PortError> {
        let _ = component;
        Ok(Vec::new())
    }
}

/// How a staged release was proven genuine (strongest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Proof {
    /// A digest pinned in the stack file (`sha256`) or a pin file.
    Pinned,
    /// A checksum file whose signature verified, then the digest in it.
    Signed {
        /// The checksum file.
        file: String,
        /// Who signed it (`minisign key <id>`, or the signing identity).
        by: String,
    },
    /// The release API's per-asset `digest`.
    ApiDigest,
    /// The release's checksum file.
    ChecksumFile {
        /// Its name.
        name: String,
    },
    /// Nothing: allowed only by `allow_unverified`.
    Unverified,
    /// A binary that was already installed, adopted into the store as found.
    Adopted,
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proof::Pinned => f.write_str("verified by a pinned digest (stack file or pin file)"),
            Proof::Signed { file, by } => write!(f, "verified by {file}, signed by {by}"),
            Proof::ApiDigest => f.write_str("verified by the release API's digest"),
            Proof::ChecksumFile { name } => write!(f, "verified by the checksum file {name}"),
            Proof::Unverified => f.write_str("NOT verified (allow_unverified)"),
            Proof::Adopted => f.write_str("adopted as installed"),
        }
    }
}

/// A release extracted into the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// The component.
    pub component: String,
    /// The version.
    pub version: Version,
    /// The release directory (`/opt/obs-upgrade/<component>/<version>`).
    pub dir: PathBuf,
    /// The downloaded asset's SHA-256.
    pub sha256: String,
    /// How it was verified.
    pub proof: Proof,
}

/// Progress of a download: bytes done and the total when known.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// The versioned install store.
pub trait ArtifactStore {
    /// The staged release, when it is complete and its files are intact.
    fn staged(&self, component: &str, version: &Version) -> Result<Option<Staged>, PortError>;
    /// Downloads, verifies and extracts a release (a no-op when already staged).
    fn stage(
        &self,
        component: &Component,
        release: &Release,
        progress: Progress<'_>,
    ) -> Result<Staged, PortError>;
    /// The active version (`current` symlink).
    fn current(&self, component: &str) -> Result<Option<Version>, PortError>;
    /// Points `current` at a staged version, atomically.
    fn switch(&self, component: &str, version: &Version) -> Result<(), PortError>;
    /// The versions in the store, oldest first.
    fn versions(&self, component: &str) -> Result<Vec<Version>, PortError>;
    /// Removes a version; the current and last known-good ones are refused.
    fn remove(&self, component: &str, version: &Version) -> Result<(), PortError>;
    /// Copies an unmanaged binary (and the component's other binaries beside
    /// it) into the store as `version` and makes it `current`. With
    /// `replace`, each binary is then replaced by a link into `current`,
    /// atomically; without, the binaries are left untouched and the links
    /// are made in the bin directory (`/usr/local/bin/<name>`). A no-op when
    /// already there.
    fn adopt(
        &self,
        component: &Component,
        binary: &Path,
        version: &Version,
        replace: bool,
    ) -> Result<(), PortError>;
    /// Makes every binary link (`/usr/local/bin/<name>`) point into `current`.
    fn link_binaries(&self, component: &Component) -> Result<(), PortError>;
    /// Records a version as known-good.
    fn mark_good(&self, component: &str, version: &Version) -> Result<(), PortError>;
    /// The last known-good version.
    fn last_good(&self, component: &str) -> Result<Option<Version>, PortError>;
    /// Free bytes where releases are stored.
    fn free_bytes(&self) -> Result<u64, PortError>;
}

/// An installed binary as found on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The binary's path (`/usr/local/bin/node_exporter`, or the unit's `ExecStart`).
    pub binary: PathBuf,
    /// The version it reports.
    pub version: Version,
    /// Whether it is already a link into the store.
    pub managed: bool,
    /// The package that owns the binary (`prometheus-node-exporter (dpkg)`):
    /// never overwritten, the unit is redirected instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Whether the binary may be replaced by a link into the store: it is in
    /// the tool's bin directory and no package owns it. Otherwise the unit is
    /// redirected to the managed link and the binary is left alone.
    #[serde(default)]
    pub replaceable: bool,
}

/// Looks at installed and staged binaries and runs checks.
pub trait Inspector: Send + Sync {
    /// The component's installed binary and its version, if installed.
    fn installed(&self, component: &Component) -> Result<Option<Installed>, PortError>;
    /// The version a binary reports (`--version`).
    fn binary_version(&self, component: &Component, binary: &Path) -> Result<Version, PortError>;
    /// Runs a check command; its output when it exits 0.
    fn run_check(&self, argv: &[String]) -> Result<String, PortError>;
    /// Whether a path exists on the host (root-prefixed by the adapter).
    fn exists(&self, path: &str) -> bool;
}

/// Saves and restores a component's configuration and unit files.
pub trait Backup: Send + Sync {
    /// Copies the files into `dir`; returns what was saved.
    fn backup(&self, component: &Component, dir: &Path) -> Result<Vec<PathBuf>, PortError>;
    /// Puts the files saved in `dir` back.
    fn restore(&self, component: &Component, dir: &Path) -> Result<(), PortError>;
    /// Whether a backup was taken into `dir` (a rollback restores only then).
    fn exists(&self, dir: &Path) -> bool;
}

/// Time for the engine: what time it is, and pauses between components.
///
/// The real one (`upgrade_state::SystemClock`) reads the system clock and
/// sleeps; tests pass a virtual clock that only moves when told to.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> jiff::Timestamp;
    /// Waits `duration` (a virtual clock just moves forward).
    fn sleep(&self, duration: std::time::Duration);
}

/// Proof that the caller holds the run lock.
///
/// Every engine function that changes the host takes one, so the
/// precondition cannot be forgotten: `upgrade_state::LockGuard` implements
/// it, and only exists while the lock is held.
pub trait RunLock {
    /// Who holds it, for logs (`pid 42 on host-a`).
    fn holder(&self) -> String;
}

/// Something a run tells the outside world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Updates exist (from `check`).
    UpdatesAvailable {
        /// `component from → to` lines.
        updates: Vec<String>,
    },
    /// A run began.
    RunStarted {
        /// The run.
        run_id: String,
        /// Its mode.
        mode: String,
        /// The planned steps (`component from → to`).
        steps: Vec<String>,
    },
    /// A component was upgraded and is healthy.
    ComponentUpgraded {
        /// The run.
        run_id: String,
        /// The component.
        component: String,
        /// Old version.
        from: Version,
        /// New version.
        to: Version,
    },
    /// An operator's rollback moved a component back, and it is healthy.
    ComponentReverted {
        /// The run (the rollback's).
        run_id: String,
        /// The component.
        component: String,
        /// The version it left.
        from: Version,
        /// The version it is back at.
        to: Version,
    },
    /// A component failed without touching its service, or its rollback failed.
    ComponentFailed {
        /// The run.
        run_id: String,
        /// The component.
        component: String,
        /// Old version.
        from: Version,
        /// Intended version.
        to: Version,
        /// Why.
        error: String,
    },
    /// A component failed after its switch and is back at its old version.
    ComponentRolledBack {
        /// The run.
        run_id: String,
        /// The component.
        component: String,
        /// The version it is back at.
        from: Version,
        /// The version that failed.
        to: Version,
        /// Why.
        error: String,
    },
    /// A run ended.
    RunFinished {
        /// The run.
        run_id: String,
        /// Its final status.
        status: crate::journal::RunStatus,
        /// Components upgraded.
        upgraded: usize,
        /// Components an operator's rollback moved back.
        #[serde(default)]
        reverted: usize,
        /// Components failed.
        failed: usize,
        /// Components rolled back.
        rolled_back: usize,
    },
}

impl Event {
    /// Whether the event reports a problem (for `on-error` report levels).
    pub fn is_error(&self) -> bool {
        match self {
            Event::ComponentFailed { .. } | Event::ComponentRolledBack { .. } => true,
            Event::RunFinished {
                failed,
                rolled_back,
                ..
            } => failed + rolled_back > 0,
            _ => false,
        }
    }

    /// Whether the event reports a change (for `on-change` report levels).
    pub fn is_change(&self) -> bool {
        match self {
            Event::UpdatesAvailable { .. } | Event::RunStarted { .. } => false,
            Event::RunFinished {
                upgraded,
                reverted,
                failed,
                rolled_back,
                ..
            } => upgraded + reverted + failed + rolled_back > 0,
            _ => true,
        }
    }
}

/// Tells the outside world (webhooks, chat, mail, a command).
pub trait Notifier: Send + Sync {
    /// Delivers one event. A failure never fails the run.
    fn notify(&self, event: &Event) -> Result<(), PortError>;
}

/// What a service manager says about a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// `active`, `inactive`, `failed`, `activating`, …
    pub active_state: String,
    /// `running`, `dead`, `auto-restart`, …
    pub sub_state: String,
    /// The main process, when running.
    pub main_pid: Option<u32>,
    /// How often the manager restarted it by itself.
    pub n_restarts: u32,
    /// When the main process started (monotonic microseconds; 0 if unknown).
    pub started_monotonic_us: u64,
    /// The unit file, when known.
    pub fragment_path: Option<String>,
    /// Units that trigger it (a `.socket` means socket activation).
    pub triggered_by: Vec<String>,
    /// The command line it runs (its effective `ExecStart`, drop-ins applied),
    /// when the manager says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Its drop-in files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_ins: Vec<String>,
}

impl ServiceStatus {
    /// Active and running.
    pub fn is_running(&self) -> bool {
        self.active_state == "active" && (self.sub_state == "running" || self.sub_state.is_empty())
    }

    /// Whether a socket unit triggers it.
    pub fn socket_activated(&self) -> bool {
        self.triggered_by.iter().any(|u| u.ends_with(".socket"))
    }
}

/// Starts, stops and inspects services (systemd, or a process supervisor).
pub trait ServiceControl: Send + Sync {
    /// The unit's status.
    fn status(&self, unit: &str) -> Result<ServiceStatus, PortError>;
    /// Starts it (a no-op when running).
    fn start(&self, unit: &str) -> Result<(), PortError>;
    /// Stops it (a no-op when stopped).
    fn stop(&self, unit: &str) -> Result<(), PortError>;
    /// Restarts it.
    fn restart(&self, unit: &str) -> Result<(), PortError>;
    /// Asks it to reload its configuration.
    fn reload(&self, unit: &str) -> Result<(), PortError>;
    /// Re-reads unit definitions after files changed (systemd's
    /// `daemon-reload`); nothing where nothing caches them.
    fn reload_units(&self) -> Result<(), PortError> {
        Ok(())
    }
    /// Whether [`ServiceControl::redirect`] is possible here.
    fn supports_redirect(&self) -> bool {
        false
    }
    /// Makes `unit` run `program` instead of the program its `ExecStart=`
    /// names, every argument kept, through a drop-in the tool owns (the unit
    /// file and the binary it named stay untouched), then re-reads units.
    /// `why` is written into the drop-in. Returns the drop-in's path.
    fn redirect(&self, unit: &str, program: &Path, why: &str) -> Result<PathBuf, PortError> {
        let _ = (program, why);
        Err(format!(
            "this service manager cannot redirect {unit} to another binary (no drop-ins); \
             run it under systemd"
        )
        .into())
    }
    /// Removes that drop-in and re-reads units: the unit runs its own
    /// `ExecStart=` again from its next start. The removed drop-in, if any.
    fn unredirect(&self, unit: &str) -> Result<Option<PathBuf>, PortError> {
        let _ = unit;
        Ok(None)
    }
}

/// Judges whether a component is healthy at a version.
pub trait HealthProbe: Send + Sync {
    /// Runs the component's probes until they pass or the deadline passes.
    fn check(
        &self,
        component: &Component,
        expected: &Version,
    ) -> Result<crate::journal::HealthRecord, PortError>;

    /// After a switch to `expected`: [`HealthProbe::check`], then the
    /// component's `verify` checks (Prometheus target, metrics, journal,
    /// settle period). The same as `check` by default.
    fn check_after_switch(
        &self,
        component: &Component,
        expected: &Version,
    ) -> Result<crate::journal::HealthRecord, PortError> {
        self.check(component, expected)
    }
}

/// A notifier that only logs (the default when none is configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, event: &Event) -> Result<(), PortError> {
        log::info!("{event}");
        Ok(())
    }
}

/// One line for people (logs, notification summaries).
impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = match self {
            Event::UpdatesAvailable { updates } => {
                format!("updates available: {}", updates.join(", "))
            }
            Event::RunStarted { run_id, steps, .. } => {
                format!("run {run_id} started: {}", steps.join(", "))
            }
            Event::ComponentUpgraded {
                component,
                from,
                to,
                ..
            } => format!("{component} upgraded {from} → {to}"),
            Event::ComponentReverted {
                component,
                from,
                to,
                ..
            } => format!("{component} rolled back by an operator {from} → {to}"),
            Event::ComponentFailed {
                component,
                from,
                to,
                error,
                ..
            } => format!("{component} {from} → {to} FAILED: {error}"),
            Event::ComponentRolledBack {
                component,
                from,
                to,
                error,
                ..
            } => format!("{component} {to} failed and was rolled back to {from}: {error}"),
            Event::RunFinished {
                run_id,
                status,
                upgraded,
                reverted,
                failed,
                rolled_back,
            } => {
                let reverted = if *reverted > 0 {
                    format!(", {reverted} reverted by an operator")
                } else {
                    String::new()
                };
                format!(
                    "run {run_id} finished {status}: {upgraded} upgraded{reverted}, {failed} \
                 failed, {rolled_back} rolled back"
                )
            }
        };
        f.write_str(&line)
    }
}
