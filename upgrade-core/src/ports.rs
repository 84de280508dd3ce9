//! Ports: the traits the engine talks through. Adapters live in the other crates.

use crate::journal::{HistoryRecord, RunRecord};

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
