//! Service control and health probes for obs-upgrade.
//!
//! - [`systemctl::Systemd`]: the systemd backend (`systemctl` through duct,
//!   optionally behind a command prefix such as `nsenter`), unit files
//!   installed, backed up and restored under a root prefix.
//! - [`supervisor::Supervisor`]: a process supervisor for hosts and sandboxes
//!   without systemd (detached start with pidfile and log, SIGTERM then
//!   SIGKILL).
//! - [`probes`]: composable health probes with one shared deadline;
//!   [`health::CatalogHealth`] builds them from the catalog.
//! - [`detect`]: `--version` of an installed binary, stdout and stderr both.
//! - [`host`]: the `Inspector` and `Backup` ports on the local file system.
//! - [`notify`]: webhooks, chat, command hooks and mail (the `Notifier` port).
//! - [`timers`]: the systemd units of unattended operation.
//! - [`units`]: unit files as systemd reads them (standard directories,
//!   drop-ins, the effective `ExecStart=`) and obs-upgrade's own drop-in.
//!
//! ```
//! use std::time::Duration;
//! use upgrade_systemd::probes::{self, Check, Probe};
//!
//! let probe = Probe::new(Check::Command {
//!     argv: vec!["true".into()],
//! });
//! let report = probes::run(&[probe], Duration::from_secs(5), None);
//! assert!(report.healthy);
//! ```
//!
//! # Limitations
//! - The supervisor does not restart crashed services by itself.

#![warn(missing_docs)]

pub mod detect;
pub mod exposition;
pub mod health;
pub mod host;
pub mod notify;
pub mod probes;
pub mod supervisor;
pub mod systemctl;
pub mod timers;
pub mod units;
