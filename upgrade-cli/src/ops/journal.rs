//! Wiring the engine to a host's adapters.

use upgrade_core::engine::{self, Mode, Options, Ports};
use upgrade_core::journal::{HistoryRecord, RunRecord};
use upgrade_core::ports::{Journal, PortError, RunLock};
use upgrade_state::{FileJournal, SystemClock};

use super::Ui;
use crate::Error;
use crate::host::Host;

/// The file journal; with the `test-hooks` feature, the fault injection of
/// the end-to-end tests: `OBS_UPGRADE_TEST_KILL_AFTER_SAVE=k` makes the
/// process SIGKILL itself right after its k-th durable save of the run
/// record (docs/testing.md). Release builds have no such hook.
struct HostJournal {
    inner: FileJournal,
    #[cfg(feature = "test-hooks")]
    saves: usize,
    #[cfg(feature = "test-hooks")]
    kill_after: Option<usize>,
}

impl HostJournal {
    fn open(host: &Host) -> Result<Self, Error> {
        let inner =
            FileJournal::open(&host.paths()).map_err(Error::port("cannot open the journal"))?;
        Ok(HostJournal {
            inner,
            #[cfg(feature = "test-hooks")]
            saves: 0,
            #[cfg(feature = "test-hooks")]
            kill_after: std::env::var("OBS_UPGRADE_TEST_KILL_AFTER_SAVE")
                .ok()
                .and_then(|v| v.parse().ok()),
        })
    }
}

impl Journal for HostJournal {
    fn load(&mut self) -> Result<Option<RunRecord>, PortError> {
        self.inner.load()
    }

    fn save(&mut self, run: &RunRecord) -> Result<(), PortError> {
        self.inner.save(run)?;
        #[cfg(feature = "test-hooks")]
        {
            self.saves += 1;
            if self.kill_after == Some(self.saves) {
                let _ = rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::KILL,
                );
            }
        }
        Ok(())
    }

    fn append_history(&mut self, record: &HistoryRecord) -> Result<(), PortError> {
        self.inner.append_history(record)
    }
}

/// Options of a run on this host: a fresh run id, who and where.
pub(super) fn run_options(host: &Host, mode: Mode) -> Options {
    let id = engine::run_id(jiff::Timestamp::now(), std::process::id());
    let mut o = Options::new(&id);
    o.mode = mode;
    o.host = upgrade_state::sys::host_name();
    o.user = upgrade_state::sys::user_name();
    o.command = std::env::args().collect();
    o.environment.clone_from(&host.stack().environment);
    o.pause = None;
    o.stop = host.options().stop.clone();
    o
}

/// The state file must read cleanly before a run: a damaged one is a
/// `state reset` matter, not a `resume` one.
pub(super) fn ensure_state_readable(host: &Host) -> Result<(), Error> {
    upgrade_state::StateStore::open(&host.paths().state_dir)?.load()?;
    Ok(())
}

/// The checks before a run changes anything, against the state file only:
/// it reads cleanly, and the engine's preconditions (scope, window, no
/// unfinished run) hold.
pub(super) fn before_run(host: &Host, opts: &Options, lock: &dyn RunLock) -> Result<(), Error> {
    ensure_state_readable(host)?;
    let mut journal = HostJournal::open(host)?;
    let now = jiff::Timestamp::now();
    Ok(engine::preconditions(
        host.stack(),
        &mut journal,
        now,
        opts,
        lock,
    )?)
}

/// Runs `f` with every real adapter of the host wired in.
pub(super) fn with_ports<T>(
    host: &Host,
    ui: &dyn Ui,
    f: impl FnOnce(&mut Ports<'_>) -> T,
) -> Result<T, Error> {
    let mut journal = HostJournal::open(host)?;
    let store = host.store();
    let services = host.services();
    let health = host.health();
    let inspector = host.inspector();
    let backup = host.backup();
    let notifier = host.notifier();
    let layout = host.layout().clone();
    let observe = |key: &str, step, ev: &_| ui.journal(key, step, ev);
    let mut ports = Ports {
        journal: &mut journal,
        store: &store,
        services: services.as_ref(),
        health: health.as_ref(),
        inspector: &inspector,
        backup: &backup,
        notifier: notifier.as_ref(),
        clock: &SystemClock,
        layout: &layout,
        observer: Some(&observe),
    };
    let out = f(&mut ports);
    ui.done();
    Ok(out)
}
