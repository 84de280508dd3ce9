//! The forward transaction of one step: each journal step a named method.

use std::path::PathBuf;

use super::Error;
use super::run::{Journaled, Run, StepResult, TxEnd};
use crate::catalog::RestartStrategy;
use crate::config::Component;
use crate::journal::{ComponentStatus, RunStatus, TxStep};
use crate::ports::Staged;
use crate::version::Version;

/// What `detect` found.
pub(super) enum Detected {
    /// The component runs the step's target already.
    AtTarget(Version),
    /// It runs the step's `from`, as planned.
    AtFrom(Version),
}

impl Journaled for Detected {
    fn journal_text(&self) -> String {
        match self {
            Detected::AtTarget(v) => format!("already at {v}"),
            Detected::AtFrom(v) => format!("installed {v}"),
        }
    }
}

/// The facts every step of one transaction works with.
pub(super) struct Tx {
    pub key: String,
    pub comp: Component,
    pub from: Version,
    pub to: Version,
    pub backup_dir: PathBuf,
}

impl Run<'_, '_> {
    /// The transaction's facts for a journal key.
    pub(super) fn tx(&self, key: &str) -> Result<Tx, String> {
        let comp = self.component(key)?;
        let c = self.comp(key);
        Ok(Tx {
            key: key.to_owned(),
            backup_dir: self.ports.layout.backup_dir(&self.record.id, key),
            from: c.from.clone(),
            to: c.to.clone(),
            comp,
        })
    }

    /// The forward transaction of one step, from `from_step` on.
    pub(super) fn forward(&mut self, key: &str, from_step: TxStep) -> Result<TxEnd, Error> {
        let tx = match self.tx(key) {
            Ok(tx) => tx,
            Err(e) => {
                let c = self.comp_mut(key);
                c.status = ComponentStatus::Failed;
                c.last_error = Some(e.clone());
                self.save()?;
                return Ok(TxEnd::FailedClean(e));
            }
        };
        for step in TxStep::FORWARD.iter().copied().filter(|s| *s >= from_step) {
            let r = match step {
                TxStep::Detect => match self.step(key, step, |run| run.detect(&tx))? {
                    Ok(Detected::AtTarget(v)) => {
                        self.skip(key, format!("already at {v}"))?;
                        return Ok(TxEnd::AlreadyAtTarget);
                    }
                    Ok(Detected::AtFrom(_)) => Ok(()),
                    Err(e) => Err(e),
                },
                TxStep::Preflight => self.step(key, step, |run| run.preflight(&tx))?.map(drop),
                TxStep::Stage => self.step(key, step, |run| run.stage(&tx))?.map(drop),
                TxStep::Smoke => self.step(key, step, |run| run.smoke(&tx))?.map(drop),
                TxStep::Backup => {
                    self.set_status(RunStatus::BackingUp)?;
                    self.step(key, step, |run| run.back_up(&tx))?.map(drop)
                }
                TxStep::Switch => {
                    self.set_status(RunStatus::Upgrading)?;
                    self.comp_mut(key).backup = Some(tx.backup_dir.display().to_string());
                    self.step(key, step, |run| run.switch(&tx))?.map(drop)
                }
                TxStep::Verify => {
                    self.set_status(RunStatus::Validating)?;
                    self.step(key, step, |run| run.verify(&tx))?.map(drop)
                }
                TxStep::Commit => self.step(key, step, |run| run.commit(&tx))?.map(drop),
                rollback => unreachable!("{rollback} is not a forward step"),
            };
            match r {
                Ok(()) => {}
                Err(e) if step.changes_service() => {
                    return self.rollback(key, TxStep::RollbackSwap, e);
                }
                Err(e) => return Ok(TxEnd::FailedClean(e)),
            }
        }
        Ok(TxEnd::Completed)
    }

    /// Where the component stands: at the target already, at `from`, or
    /// changed by hand since the plan.
    fn detect(&mut self, tx: &Tx) -> StepResult<Detected> {
        let name = &tx.comp.name;
        match self.ports.inspector.installed(&tx.comp) {
            // At the target already (by hand, or by an earlier run): nothing to do.
            Ok(Some(i)) if i.version.same_release(&tx.to) => Ok(Detected::AtTarget(tx.to.clone())),
            Ok(Some(i)) if i.version.same_release(&tx.from) => Ok(Detected::AtFrom(i.version)),
            Ok(Some(i)) => Err(format!(
                "{name} was changed by hand to {} since the plan (from {}); \
                 run `obs-upgrade plan` again",
                i.version, tx.from
            )),
            Ok(None) => Err(format!(
                "{name} is not installed any more; run `obs-upgrade plan` again"
            )),
            Err(e) => Err(format!("cannot detect {name}: {e}")),
        }
    }

    /// Disk space, compatibility of the resulting set, health before.
    fn preflight(&mut self, tx: &Tx) -> StepResult<String> {
        let name = &tx.comp.name;
        let largest = self
            .release(name, &tx.to)
            .and_then(|r| r.assets.iter().filter_map(|a| a.size).max())
            .unwrap_or(0);
        let need = largest.saturating_mul(2);
        match self.ports.store.free_bytes() {
            Ok(free) if free < need => {
                return Err(format!(
                    "only {free} bytes free for the store; {need} needed (twice the artifact); \
                     free some space or run `obs-upgrade prune`"
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("cannot tell free space: {e}")),
        }
        self.compatibility(name, &tx.to)?;
        if let Ok(Some(i)) = self.ports.inspector.installed(&tx.comp)
            && !i.managed
            && !i.replaceable
            && !self.ports.services.supports_redirect()
        {
            return Err(format!(
                "{}, and without systemd the tool cannot redirect {} to its managed link \
                 with a drop-in; it never overwrites such a binary: let {} upgrade it, \
                 or install the upstream binary as {}",
                foreign_reason(&i),
                tx.comp.spec.unit,
                i.package.as_deref().unwrap_or("whatever installed it"),
                self.ports
                    .layout
                    .bin_dir()
                    .join(tx.comp.spec.main_binary())
                    .display()
            ));
        }
        if !self.opts.allow_unhealthy {
            match self.ports.health.check(&tx.comp, &tx.from) {
                Ok(h) if h.healthy => {}
                Ok(h) => {
                    return Err(format!(
                        "{name} is not healthy before the upgrade ({}); fix it first, \
                         or allow upgrading an unhealthy component to repair it",
                        h.detail.join("; ")
                    ));
                }
                Err(e) => return Err(format!("cannot check the health of {name}: {e}")),
            }
        }
        Ok("disk, lock, compatibility and health ok".into())
    }

    /// The release in the store: verified once, downloaded only when missing.
    fn stage(&mut self, tx: &Tx) -> StepResult<String> {
        let known = match self.staged.get(&tx.key) {
            Some(s) => Some(s.clone()),
            None => self
                .ports
                .store
                .staged(&tx.comp.name, &tx.to)
                .ok()
                .flatten(),
        };
        let (staged, note) = match known {
            Some(s) => (s, "already staged "),
            None => {
                let release = self
                    .release(&tx.comp.name, &tx.to)
                    .ok_or_else(|| {
                        format!(
                            "no release data for {} {}; check for updates again",
                            tx.comp.name, tx.to
                        )
                    })?
                    .clone();
                let staged = self
                    .ports
                    .store
                    .stage(&tx.comp, &release, &mut |_, _| {})
                    .map_err(|e| e.to_string())?;
                (staged, "")
            }
        };
        self.comp_mut(&tx.key).artifact_sha256 = Some(staged.sha256.clone());
        self.comp_mut(&tx.key).proof = Some(staged.proof.clone());
        let text = format!("{note}({}, {})", staged.sha256, staged.proof);
        self.staged.insert(tx.key.clone(), staged);
        Ok(text)
    }

    /// The staged binary reports the target; the new release's own config check passes.
    fn smoke(&mut self, tx: &Tx) -> StepResult<String> {
        let staged: Staged = match self.staged.get(&tx.key) {
            Some(s) => s.clone(),
            None => self
                .ports
                .store
                .staged(&tx.comp.name, &tx.to)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} {} is not staged", tx.comp.name, tx.to))?,
        };
        let main = tx.comp.spec.main_binary();
        let bin = staged.dir.join(main);
        let v = self
            .ports
            .inspector
            .binary_version(&tx.comp, &bin)
            .map_err(|e| e.to_string())?;
        if !v.same_release(&tx.to) {
            return Err(format!("the staged {main} reports {v}, not {}", tx.to));
        }
        match super::check_config(self.ports, &tx.comp, &staged.dir, &tx.to) {
            Some(checker) => Ok(format!(
                "reports {v}; configuration checked by {}",
                checker?
            )),
            None => Ok(format!("reports {v}")),
        }
    }

    /// Config and unit files saved; an unmanaged binary adopted into the
    /// store: replaced by a link when it is the tool's to replace, else left
    /// untouched and the unit redirected to the managed link by a drop-in.
    fn back_up(&mut self, tx: &Tx) -> StepResult<String> {
        let saved = self
            .ports
            .backup
            .backup(&tx.comp, &tx.backup_dir)
            .map_err(|e| e.to_string())?;
        let mut text = format!("{} file(s) saved", saved.len());
        // Adoption: a plain binary becomes the store's `from` version first.
        if let Ok(Some(i)) = self.ports.inspector.installed(&tx.comp)
            && !i.managed
        {
            self.ports
                .store
                .adopt(&tx.comp, &i.binary, &i.version, i.replaceable)
                .map_err(|e| format!("cannot adopt {}: {e}", i.binary.display()))?;
            if !i.replaceable {
                let link = self.ports.layout.bin_dir().join(tx.comp.spec.main_binary());
                let why = foreign_reason(&i);
                let drop_in = self
                    .ports
                    .services
                    .redirect(&tx.comp.spec.unit, &link, &why)
                    .map_err(|e| format!("cannot redirect {}: {e}", tx.comp.spec.unit))?;
                text = format!(
                    "{text}; {why}: left untouched, {} runs {} through {}",
                    tx.comp.spec.unit,
                    link.display(),
                    drop_in.display()
                );
            }
        }
        Ok(text)
    }

    /// `current` → target, binary links, restart (or stop, swap, start).
    fn switch(&mut self, tx: &Tx) -> StepResult<String> {
        let store = self.ports.store;
        let unit = &tx.comp.spec.unit;
        let strategy = tx.comp.spec.restart;
        strategy
            .apply(self.ports.services, unit, &mut || {
                store.switch(&tx.comp.name, &tx.to)?;
                store.link_binaries(&tx.comp)
            })
            .map_err(|e| e.to_string())?;
        let how = match strategy {
            RestartStrategy::Restart => "restarted",
            RestartStrategy::StopStart => "stopped, swapped and started",
        };
        Ok(format!("current → {}, {unit} {how}", tx.to))
    }

    /// Health at the target within the component's deadline.
    fn verify(&mut self, tx: &Tx) -> StepResult<String> {
        let h = self
            .ports
            .health
            .check_after_switch(&tx.comp, &tx.to)
            .map_err(|e| e.to_string())?;
        let healthy = h.healthy;
        let detail = h.detail.join("; ");
        self.comp_mut(&tx.key).health = Some(h);
        if healthy {
            Ok("healthy".into())
        } else {
            Err(format!("unhealthy after the switch: {detail}"))
        }
    }

    /// The target becomes the last known-good version.
    fn commit(&mut self, tx: &Tx) -> StepResult<String> {
        self.ports
            .store
            .mark_good(&tx.comp.name, &tx.to)
            .map_err(|e| e.to_string())?;
        Ok(format!("{} is known-good", tx.to))
    }
}

/// Why an installed binary is not the tool's to replace.
pub(super) fn foreign_reason(i: &crate::ports::Installed) -> String {
    match &i.package {
        Some(p) => format!("{} belongs to the package {p}", i.binary.display()),
        None => format!("{} is outside the tool's bin directory", i.binary.display()),
    }
}
