//! The operations layer of obs-upgrade: what the `obs-upgrade` binary does,
//! as a library another Rust program can embed.
//!
//! - [`host`]: opening a host — its root, its stack file, its service
//!   manager, and every adapter (store, sources, services, probes, journal);
//! - [`ops`]: one function per use case — [`ops::check`], [`ops::plan`],
//!   [`ops::stage`], [`ops::apply`], [`ops::resume`], [`ops::rollback`],
//!   [`ops::prune`], [`ops::status`], [`ops::history`], [`ops::versions`],
//!   [`ops::metrics`] — each taking an options struct and returning a typed,
//!   serializable report. The binary only parses arguments, asks, shows
//!   progress and renders.
//!
//! Every safety decision is made once, below this layer or in it: the
//! maintenance window, "an unfinished run is resumed first", the scope
//! check and approval without a terminal in `upgrade_core::engine`;
//! "downloads first, before anything is stopped" in [`ops::apply`].
//!
//! ```no_run
//! use upgrade_cli::host::{Host, HostOptions};
//! use upgrade_cli::ops::{self, ApplyOptions, Quiet};
//!
//! let host = Host::open(HostOptions::default())?;
//! let outcome = ops::apply(&host, &ApplyOptions::default(), &Quiet)?;
//! println!("{outcome:?}");
//! # Ok::<(), upgrade_cli::Error>(())
//! ```
//!
//! # Limitations
//! - One host per [`host::Host`]; fleets are driven by Ansible, not here.
//! - Progress and prompts go through [`ops::Ui`]; an embedder without a
//!   terminal passes [`ops::Quiet`], and steps that need approval then wait.

#![warn(missing_docs)]

pub mod host;
pub mod ops;

/// Why an operation could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stack file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] upgrade_core::config::Error),
    /// A bad request: an unknown component, a relative root, a missing argument.
    #[error("{0}")]
    Usage(String),
    /// Another run holds the lock (or it cannot be taken).
    #[error(transparent)]
    Lock(#[from] upgrade_state::lock::Error),
    /// The state file is damaged or too new.
    #[error(transparent)]
    State(#[from] upgrade_state::state::Error),
    /// The memory of failed releases and holds cannot be read or written.
    #[error(transparent)]
    Holds(#[from] upgrade_state::holds::Error),
    /// The history log cannot be read or written.
    #[error(transparent)]
    History(#[from] upgrade_state::history::Error),
    /// The engine refused or stopped.
    #[error(transparent)]
    Engine(#[from] upgrade_core::engine::Error),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] upgrade_state::fsutil::IoError),
    /// An adapter failed.
    #[error("{context}")]
    Port {
        /// What was being done.
        context: String,
        /// The adapter's error.
        #[source]
        source: upgrade_core::ports::PortError,
    },
}

impl Error {
    /// An adapter's error with what was being done.
    pub fn port(
        context: impl Into<String>,
    ) -> impl FnOnce(upgrade_core::ports::PortError) -> Error {
        let context = context.into();
        move |source| Error::Port { context, source }
    }
}
