//! The status machine and the resume point of every step.

use super::*;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

#[test]
fn status_machine() {
    use RunStatus::*;
    let ok = [
        (Idle, Planning),
        (Planning, BackingUp),
        (BackingUp, Upgrading),
        (Upgrading, Validating),
        (Validating, Completed),
        (Validating, BackingUp),
        (Upgrading, RollingBack),
        (RollingBack, RolledBack),
        (Upgrading, Failed),
        (Planning, Failed),
        (RollingBack, Failed),
    ];
    for (a, b) in ok {
        assert!(a.can_become(b), "{a} -> {b}");
    }
    let refused = [
        (Idle, Upgrading),
        (Completed, Idle),
        (Completed, Planning),
        (Failed, Idle),
        (Planning, Upgrading),
        (Idle, Failed),
        (RolledBack, Completed),
    ];
    for (a, b) in refused {
        assert!(!a.can_become(b), "{a} -> {b}");
    }
    let mut run = RunRecord {
        id: "r".into(),
        started_at: t(0),
        updated_at: t(0),
        host: "h".into(),
        user: "u".into(),
        command: vec![],
        mode: "standard".into(),
        environment: None,
        status: Idle,
        phases: vec![],
        components: BTreeMap::new(),
        checkpoints: vec![],
        finished_at: None,
    };
    let err = run.transition(Completed, t(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "run status cannot go from IDLE to COMPLETED; a finished run goes back to IDLE only \
            by an explicit reset"
    );
    run.transition(Planning, t(1)).unwrap();
    assert!(run.reset(t(2)).is_err(), "an active run is not reset");
    run.transition(Completed, t(2)).unwrap();
    assert!(run.transition(Idle, t(3)).is_err());
    run.reset(t(3)).unwrap();
    assert_eq!(run.status, Idle);
}

fn with(entries: &[(TxStep, StepEvent)]) -> ComponentRecord {
    let mut c = ComponentRecord::pending("exporters", Version::new(1, 0, 0), Version::new(1, 1, 0));
    for (i, (s, e)) in entries.iter().enumerate() {
        c.record(*s, e.clone(), t(i64::try_from(i).unwrap()));
    }
    c
}

fn done() -> StepEvent {
    StepEvent::Done {
        result: String::new(),
    }
}

fn failed() -> StepEvent {
    StepEvent::Failed {
        error: "boom".into(),
    }
}

#[test]
fn resume_from_every_forward_step() {
    assert_eq!(
        resume_point(&with(&[])),
        ResumeAction::ContinueFrom {
            step: TxStep::Detect
        }
    );
    for (i, step) in TxStep::FORWARD.iter().copied().enumerate() {
        let mut entries: Vec<(TxStep, StepEvent)> = TxStep::FORWARD[..i]
            .iter()
            .flat_map(|s| [(*s, StepEvent::Began), (*s, done())])
            .collect();
        // Killed after "began": the same step again.
        entries.push((step, StepEvent::Began));
        assert_eq!(
            resume_point(&with(&entries)),
            ResumeAction::ContinueFrom { step },
            "began {step}"
        );
        // Killed after "done": the next step, or nothing after commit.
        entries.push((step, done()));
        let want = match step.next() {
            Some(n) => ResumeAction::ContinueFrom { step: n },
            None => ResumeAction::Nothing,
        };
        assert_eq!(resume_point(&with(&entries)), want, "done {step}");
        // Failed: nothing before the switch, a rollback from it on.
        entries.pop();
        entries.push((step, failed()));
        let want = if step.changes_service() {
            ResumeAction::FinishRollback {
                step: TxStep::RollbackSwap,
            }
        } else {
            ResumeAction::Nothing
        };
        let rec = with(&entries);
        assert_eq!(resume_point(&rec), want, "failed {step}");
        if !step.changes_service() {
            assert_eq!(rec.status, ComponentStatus::Failed);
        }
    }
}

#[test]
fn resume_finishes_every_rollback_step() {
    let mut base: Vec<(TxStep, StepEvent)> = TxStep::FORWARD[..6]
        .iter()
        .flat_map(|s| [(*s, StepEvent::Began), (*s, done())])
        .collect();
    base.push((TxStep::Verify, StepEvent::Began));
    base.push((TxStep::Verify, failed()));
    for (i, step) in TxStep::ROLLBACK.iter().copied().enumerate() {
        let mut entries = base.clone();
        entries.extend(
            TxStep::ROLLBACK[..i]
                .iter()
                .flat_map(|s| [(*s, StepEvent::Began), (*s, done())]),
        );
        entries.push((step, StepEvent::Began));
        assert_eq!(
            resume_point(&with(&entries)),
            ResumeAction::FinishRollback { step },
            "began {step}"
        );
        entries.push((step, done()));
        let want = step
            .next()
            .map_or(ResumeAction::Nothing, |n| ResumeAction::FinishRollback {
                step: n,
            });
        let rec = with(&entries);
        assert_eq!(resume_point(&rec), want, "done {step}");
        if step == TxStep::RollbackVerify {
            assert_eq!(rec.status, ComponentStatus::RolledBack);
        }
        entries.pop();
        entries.push((step, failed()));
        assert_eq!(
            resume_point(&with(&entries)),
            ResumeAction::FinishRollback { step },
            "failed {step}"
        );
    }
}

#[test]
fn finished_components_need_nothing() {
    let mut c = with(&[]);
    c.status = ComponentStatus::Skipped;
    assert_eq!(resume_point(&c), ResumeAction::Nothing);
}

#[test]
fn json_shape_is_stable() {
    let c = with(&[
        (TxStep::Detect, StepEvent::Began),
        (
            TxStep::Detect,
            StepEvent::Done {
                result: "1.0.0".into(),
            },
        ),
    ]);
    let j = serde_json::to_value(&c).unwrap();
    assert_eq!(j["status"], "in_progress");
    assert_eq!(j["step"], "detect");
    assert_eq!(j["journal"][1]["event"], "done");
    assert_eq!(j["journal"][1]["result"], "1.0.0");
    let back: ComponentRecord = serde_json::from_value(j).unwrap();
    assert_eq!(back, c);
}
