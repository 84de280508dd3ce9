//! The rollback of one step, and of an atomic phase.

use super::Error;
use super::run::{Run, StepResult, TxEnd};
use super::transaction::Tx;
use crate::journal::{ComponentStatus, RunStatus, TxStep};

impl Run<'_, '_> {
    /// The rollback of one step, from `from_step` on.
    pub(super) fn rollback(
        &mut self,
        key: &str,
        from_step: TxStep,
        why: String,
    ) -> Result<TxEnd, Error> {
        self.set_status(RunStatus::RollingBack)?;
        let tx = match self.tx(key) {
            Ok(tx) => tx,
            Err(e) => return self.rollback_failed(key, &why, &e),
        };
        for step in TxStep::ROLLBACK.iter().copied().filter(|s| *s >= from_step) {
            let r = self.step(key, step, |run| match step {
                TxStep::RollbackSwap => run.swap_back(&tx),
                TxStep::RollbackRestore => run.restore(&tx),
                TxStep::RollbackRestart => run.restart_back(&tx),
                TxStep::RollbackVerify => run.verify_back(&tx),
                forward => unreachable!("{forward} is not a rollback step"),
            })?;
            if let Err(e) = r {
                return self.rollback_failed(key, &why, &e);
            }
        }
        self.set_status(RunStatus::RolledBack)?;
        Ok(TxEnd::RolledBack(why))
    }

    fn rollback_failed(&mut self, key: &str, why: &str, e: &str) -> Result<TxEnd, Error> {
        let message = format!("{why}; the rollback failed too: {e}");
        let c = self.comp_mut(key);
        c.status = ComponentStatus::Failed;
        c.last_error = Some(message.clone());
        self.set_status(RunStatus::Failed)?;
        Ok(TxEnd::RollbackFailed(message))
    }

    /// `current` and the binary links back to `from` (the service stopped
    /// first when its strategy is `stop-start`).
    fn swap_back(&mut self, tx: &Tx) -> StepResult<String> {
        let store = self.ports.store;
        if tx.comp.spec.restart == crate::catalog::RestartStrategy::StopStart {
            self.ports
                .services
                .stop(&tx.comp.spec.unit)
                .map_err(|e| e.to_string())?;
        }
        store
            .switch(&tx.comp.name, &tx.from)
            .map_err(|e| e.to_string())?;
        store.link_binaries(&tx.comp).map_err(|e| e.to_string())?;
        Ok(format!("current → {}", tx.from))
    }

    /// The files saved by `backup`, when it ran.
    fn restore(&mut self, tx: &Tx) -> StepResult<String> {
        if !self.ports.backup.exists(&tx.backup_dir) {
            return Ok("no backup to restore".into());
        }
        self.ports
            .backup
            .restore(&tx.comp, &tx.backup_dir)
            .map_err(|e| e.to_string())?;
        self.ports
            .services
            .reload_units()
            .map_err(|e| format!("cannot reload unit files: {e}"))?;
        Ok("files restored".into())
    }

    fn restart_back(&mut self, tx: &Tx) -> StepResult<String> {
        let unit = &tx.comp.spec.unit;
        self.ports
            .services
            .restart(unit)
            .map_err(|e| e.to_string())?;
        Ok(format!("{unit} restarted"))
    }

    fn verify_back(&mut self, tx: &Tx) -> StepResult<String> {
        let h = self
            .ports
            .health
            .check(&tx.comp, &tx.from)
            .map_err(|e| e.to_string())?;
        if h.healthy {
            Ok(format!("healthy at {}", tx.from))
        } else {
            Err(format!(
                "still unhealthy at {}: {}",
                tx.from,
                h.detail.join("; ")
            ))
        }
    }

    /// Atomic phase: roll back every completed step of the phase, newest first.
    pub(super) fn roll_back_phase(&mut self, done: &[String], why: &str) -> Result<(), Error> {
        for key in done.iter().rev() {
            let why = format!("rolled back with its atomic phase: {why}");
            let end = self.rollback(key, TxStep::RollbackSwap, why)?;
            if matches!(end, TxEnd::RolledBack(_)) {
                self.comp_mut(key).status = ComponentStatus::RolledBack;
            }
            self.finish_step(key, &end)?;
        }
        Ok(())
    }
}
