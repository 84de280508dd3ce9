//! Driving a run: phases in order, pauses, prompts, stop on failure,
//! atomic phases.

use super::run::{Run, TxEnd};
use super::{Approver, Error, Mode, component_of_key};
use crate::config::OnFailure;
use crate::journal::{ComponentStatus, PhaseStatus, TxStep};
use crate::planner::Step;

impl Run<'_, '_> {
    /// Why the rest of the run is skipped: a failure in a phase that stops
    /// the run (re-derived from the journal, so it holds across a resume).
    fn stop_reason(&self) -> Option<String> {
        self.record.phases.iter().find_map(|p| {
            let stops = self
                .stack
                .phases
                .iter()
                .find(|s| s.name == p.name)
                .is_none_or(|s| s.on_failure == OnFailure::Stop);
            let failed = p.components.iter().find(|k| {
                matches!(
                    self.comp(k).status,
                    ComponentStatus::Failed | ComponentStatus::RolledBack
                )
            })?;
            stops.then(|| format!("the run stopped after {} failed", component_of_key(failed)))
        })
    }

    /// Why no new component may start now: a stop was requested (a
    /// signal), or an unattended run's maintenance window closed.
    fn halt_reason(&self) -> Option<String> {
        if self.opts.stop.is_requested() {
            return Some("not started: the run was stopped (a signal)".into());
        }
        let schedule = &self.stack.maintenance.schedule;
        if self.opts.unattended && !schedule.windows.is_empty() && !schedule.is_open(self.now()) {
            return Some("not started: the maintenance window closed".into());
        }
        None
    }

    /// Whether an earlier step of the same component did not complete.
    fn earlier_step_incomplete(&self, key: &str) -> bool {
        let name = component_of_key(key);
        let to = &self.comp(key).to;
        self.record.components.iter().any(|(k, c)| {
            k != key
                && component_of_key(k) == name
                && &c.to < to
                && c.status != ComponentStatus::Completed
        })
    }

    /// The step to show at a prompt: the planned one (with its real risk),
    /// else one rebuilt from the journal.
    fn step_of(&self, key: &str) -> Step {
        if let Some(step) = self.planned.get(key) {
            return step.clone();
        }
        let c = self.comp(key);
        Step::direct(
            component_of_key(key),
            c.from.clone(),
            c.to.clone(),
            crate::risk::Risk::High,
            Some("resumed from the journal".into()),
        )
    }

    /// Runs every pending step in phase order; returns when done or stopped.
    pub(super) fn drive(&mut self, approver: &mut Approver<'_>) -> Result<(), Error> {
        let phases = self.record.phases.clone();
        let mut stop_reason = self.stop_reason();
        let mut first = true;
        for (pi, phase) in phases.iter().enumerate() {
            let spec = self.stack.phases.iter().find(|p| p.name == phase.name);
            let (on_failure, atomic) =
                spec.map_or((OnFailure::Stop, false), |p| (p.on_failure, p.atomic));
            let mut done_in_phase: Vec<String> = Vec::new();
            let mut phase_failed = false;
            if phase.components.iter().any(|k| {
                matches!(
                    self.comp(k).status,
                    ComponentStatus::Pending | ComponentStatus::InProgress { .. }
                )
            }) {
                self.record.phases[pi].status = PhaseStatus::InProgress;
            }
            for key in &phase.components {
                if stop_reason.is_none() {
                    stop_reason = self.halt_reason();
                }
                let status = self.comp(key).status.clone();
                if status == ComponentStatus::Completed {
                    done_in_phase.push(key.clone());
                }
                if status != ComponentStatus::Pending {
                    continue;
                }
                if let Some(why) = &stop_reason {
                    self.skip(key, why.clone())?;
                    continue;
                }
                // A later step of a component whose earlier step did not complete waits.
                if self.earlier_step_incomplete(key) {
                    let why = "an earlier step of this component did not complete";
                    self.skip(key, why.into())?;
                    continue;
                }
                if self.opts.mode == Mode::Safe {
                    let step = self.step_of(key);
                    if !approver.approves(&step, self.opts.mode) {
                        // A signal while the question was open stops the run.
                        stop_reason = self.halt_reason();
                        let why = stop_reason.clone();
                        self.skip(key, why.unwrap_or_else(|| "declined at the prompt".into()))?;
                        continue;
                    }
                }
                if !first {
                    let pause = self.opts.pause.unwrap_or_else(|| self.opts.mode.pause());
                    self.ports.clock.sleep(pause);
                }
                first = false;
                self.comp_mut(key).attempts += 1;
                let end = self.forward(key, TxStep::Detect)?;
                self.finish_step(key, &end)?;
                match end {
                    TxEnd::Completed => done_in_phase.push(key.clone()),
                    TxEnd::AlreadyAtTarget => {}
                    TxEnd::FailedClean(e) | TxEnd::RolledBack(e) | TxEnd::RollbackFailed(e) => {
                        phase_failed = true;
                        if atomic {
                            self.roll_back_phase(&done_in_phase, &e)?;
                            done_in_phase.clear();
                        }
                        if on_failure == OnFailure::Stop {
                            let name = component_of_key(key);
                            stop_reason = Some(format!("the run stopped after {name} failed"));
                        }
                    }
                }
            }
            self.record.phases[pi].status = self.phase_status(pi, phase_failed, atomic);
            self.save()?;
        }
        Ok(())
    }

    fn phase_status(&self, pi: usize, failed: bool, atomic: bool) -> PhaseStatus {
        let phase = &self.record.phases[pi];
        if failed {
            return if atomic {
                PhaseStatus::RolledBack
            } else {
                PhaseStatus::Failed
            };
        }
        let all_done = phase.components.iter().all(|k| {
            matches!(
                self.comp(k).status,
                ComponentStatus::Completed | ComponentStatus::Skipped
            )
        });
        if all_done {
            PhaseStatus::Completed
        } else {
            phase.status
        }
    }
}
