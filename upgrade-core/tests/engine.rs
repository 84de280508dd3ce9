//! The engine against in-memory fakes of every port: failures at every step,
//! a crash at every journal point followed by resume, idempotency, manual
//! changes, atomic phases, dry runs, adoption, approval, rollbacks, pruning.
#![allow(clippy::many_single_char_names)] // s(tack), w(orld), f(akes), j(ournal), r(eport)

mod support;

use std::collections::BTreeMap;

use support::*;
use upgrade_core::engine::{self, Error, Mode, Options, Scope};
use upgrade_core::journal::{ComponentStatus, HistoryRecord, Outcome, RunStatus};

fn ask(f: &mut dyn FnMut(&upgrade_core::planner::Step) -> bool) -> engine::Approver<'_> {
    engine::Approver::Ask(f)
}

/// The test stack with one maintenance window, 02:00–23:00 UTC on `days`.
fn stack_with_window(days: &str) -> upgrade_core::Stack {
    let mut text = String::from("components:\n");
    for n in NAMES {
        text += &["  ", n, ": {allow: major, auto_approve: high}\n"].concat();
    }
    text += &[
        "maintenance:\n  windows:\n    - {days: ",
        days,
        ", start: '02:00', end: '23:00'}\n",
    ]
    .concat();
    upgrade_core::Stack::from_text(&text, upgrade_core::config::Format::Yaml, "w.yaml", None)
        .unwrap()
}

fn opts() -> Options {
    Options::new("run-1")
}

fn apply(
    stack: &upgrade_core::Stack,
    w: &Shared,
    disk: &Disk,
    crash_at: Option<usize>,
    o: &Options,
) -> Result<engine::RunReport, Error> {
    let plan = plan_for(stack, w);
    let f = fakes(w);
    let mut j = FakeJournal::new(disk, crash_at);
    let mut ports = f.ports(&mut j);
    engine::apply(
        stack,
        &plan,
        &releases(),
        &mut ports,
        o,
        &Lock,
        ask(&mut |_| true),
    )
}

fn resume(
    stack: &upgrade_core::Stack,
    w: &Shared,
    disk: &Disk,
) -> Result<engine::RunReport, Error> {
    let f = fakes(w);
    let mut j = FakeJournal::new(disk, None);
    let mut ports = f.ports(&mut j);
    engine::resume(stack, &releases(), &mut ports, &opts(), &Lock)
}

fn status_of(disk: &Disk, name: &str) -> Option<ComponentStatus> {
    let st = disk.state.lock().unwrap();
    st.as_ref().and_then(|r| {
        r.components
            .iter()
            .find(|(k, _)| k.starts_with(&format!("{name}:")))
            .map(|(_, c)| c.status.clone())
    })
}

/// DESIGN's invariants: every binary resolves to a complete version in the
/// store, each service runs what `current` says, at its old or new version,
/// and the journal says which.
fn check_invariants(w: &Shared, disk: &Disk, context: &str) {
    let w = w.lock().unwrap();
    for n in NAMES {
        let cur = w
            .current
            .get(n)
            .unwrap_or_else(|| panic!("{context}: {n} has no current"));
        assert!(
            w.store[n].contains(cur),
            "{context}: {n} current {cur} not complete in the store"
        );
        assert_eq!(
            w.running.get(n),
            Some(cur),
            "{context}: {n} runs what current says"
        );
        assert!(
            *cur == v("1.0.0") || *cur == v("1.1.0"),
            "{context}: {n} at {cur}"
        );
        match status_of(disk, n) {
            Some(ComponentStatus::Completed) => {
                assert_eq!(*cur, v("1.1.0"), "{context}: {n} completed");
            }
            Some(ComponentStatus::InProgress { step }) => {
                panic!("{context}: {n} still in progress at {step}")
            }
            Some(_) | None => assert_eq!(*cur, v("1.0.0"), "{context}: {n} not completed"),
        }
    }
    if let Some(r) = disk.state.lock().unwrap().as_ref() {
        assert!(
            !r.is_unfinished(),
            "{context}: run left {} and unfinished",
            r.status
        );
        // Every finished step is in history, even when the crash fell between.
        let history = disk.history.lock().unwrap();
        for (key, c) in &r.components {
            if matches!(
                c.status,
                ComponentStatus::Completed | ComponentStatus::RolledBack
            ) {
                let name = key.split(':').next().unwrap();
                let n = history.iter().filter(|h| matches!(h, HistoryRecord::Component { run_id, component, .. } if *run_id == r.id && component == name)).count();
                // Once, or twice when an atomic phase rolled a completed step back.
                assert!(
                    (1..=2).contains(&n),
                    "{context}: {name} has {n} history records"
                );
            }
        }
    }
}

#[test]
fn a_clean_run_upgrades_everything_once() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    let r = apply(&s, &w, &disk, None, &opts()).unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.upgraded(), 3);
    let wl = w.lock().unwrap().clone();
    for n in NAMES {
        assert_eq!(wl.running[n], v("1.1.0"));
        assert_eq!(wl.good[n], v("1.1.0"));
        assert_eq!(wl.restarts[n], 1, "one restart each");
    }
    assert_eq!(wl.downloads, 3);
    assert_eq!(
        wl.events,
        [
            "run_started",
            "component_upgraded",
            "component_upgraded",
            "component_upgraded",
            "run_finished"
        ]
    );
    let h = disk.history.lock().unwrap();
    assert_eq!(
        h.iter()
            .filter(|r| matches!(
                r,
                HistoryRecord::Component {
                    outcome: Outcome::Upgraded,
                    ..
                }
            ))
            .count(),
        3
    );
    assert!(
        matches!(h.last(), Some(HistoryRecord::Run { status: RunStatus::Completed, summary, .. }) if summary == "3 upgraded")
    );
    drop(h);
    check_invariants(&w, &disk, "clean run");
}

#[test]
fn a_second_run_does_nothing() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    apply(&s, &w, &disk, None, &opts()).unwrap();
    let before = w.lock().unwrap().clone();
    let r = apply(&s, &w, &disk, None, &Options::new("run-2")).unwrap();
    assert!(r.nothing_to_do() && r.steps.is_empty());
    let after = w.lock().unwrap().clone();
    assert_eq!(after.downloads, before.downloads, "nothing downloaded");
    assert_eq!(after.restarts, before.restarts, "nothing restarted");
    let h = disk.history.lock().unwrap();
    assert!(
        matches!(h.last(), Some(HistoryRecord::Run { run_id, summary, .. }) if run_id == "run-2" && summary == "nothing to do")
    );
}

#[test]
fn a_failure_at_every_step_ends_in_a_clean_stop_or_a_rollback() {
    for (i, target) in NAMES.iter().enumerate() {
        for fail in ALL_FAILS {
            let ctx = format!("{fail:?} at {target}");
            let (s, w, disk) = (stack(""), world(), Disk::default());
            inject(&w, target, fail);
            let r = apply(&s, &w, &disk, None, &opts()).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let rolled = matches!(fail, Fail::Restart | Fail::UnhealthyAfter | Fail::MarkGood);
            let want = if rolled {
                ComponentStatus::RolledBack
            } else {
                ComponentStatus::Failed
            };
            assert_eq!(status_of(&disk, target), Some(want.clone()), "{ctx}");
            assert_eq!(
                r.status,
                if rolled {
                    RunStatus::RolledBack
                } else {
                    RunStatus::Failed
                },
                "{ctx}"
            );
            for (j, other) in NAMES.iter().enumerate() {
                if j < i {
                    assert_eq!(
                        status_of(&disk, other),
                        Some(ComponentStatus::Completed),
                        "{ctx}: {other} before"
                    );
                } else if j > i {
                    assert_eq!(
                        status_of(&disk, other),
                        Some(ComponentStatus::Skipped),
                        "{ctx}: {other} after the failure is skipped"
                    );
                }
            }
            let wl = w.lock().unwrap().clone();
            assert_eq!(
                wl.running[*target],
                v("1.0.0"),
                "{ctx}: back at (or still at) the old version"
            );
            assert_eq!(
                wl.files[&format!("/etc/{target}/config.yml")],
                format!("{target} config v1"),
                "{ctx}: config intact"
            );
            let outcome = disk.history.lock().unwrap().iter().find_map(|h| match h {
                HistoryRecord::Component {
                    component, outcome, ..
                } if component == target => Some(*outcome),
                _ => None,
            });
            assert_eq!(
                outcome,
                Some(if rolled {
                    Outcome::RolledBack
                } else {
                    Outcome::Failed
                }),
                "{ctx}"
            );
            assert!(
                wl.events.contains(
                    &(if rolled {
                        "component_rolled_back"
                    } else {
                        "component_failed"
                    })
                    .to_owned()
                ),
                "{ctx}: {:?}",
                wl.events
            );
            check_invariants(&w, &disk, &ctx);
        }
    }
}

#[test]
fn on_failure_continue_goes_on() {
    let (s, w, disk) = (stack(", on_failure: continue"), world(), Disk::default());
    inject(&w, "mysqld_exporter", Fail::UnhealthyAfter);
    let r = apply(&s, &w, &disk, None, &opts()).unwrap();
    assert_eq!((r.upgraded(), r.rolled_back()), (2, 1));
    check_invariants(&w, &disk, "continue");
}

#[test]
fn a_failed_rollback_is_reported_as_failed() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    inject(&w, "nginx_exporter", Fail::UnhealthyAfter);
    w.lock().unwrap().fail = Some(("nginx_exporter".into(), Fail::RollbackRestart));
    let r = apply(&s, &w, &disk, None, &opts()).unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(
        status_of(&disk, "nginx_exporter"),
        Some(ComponentStatus::Failed)
    );
    let msg = r
        .steps
        .iter()
        .find(|s| s.component == "nginx_exporter")
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(msg.contains("the rollback failed too"), "{msg}");
}

fn saves_of_a_clean_run(extra: impl Fn(&Shared)) -> usize {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    extra(&w);
    apply(&s, &w, &disk, None, &opts()).unwrap();
    *disk.saves.lock().unwrap()
}

#[test]
fn a_crash_at_every_journal_point_is_resumed() {
    for (label, setup) in [
        ("clean", None),
        (
            "verify fails",
            Some(("nginx_exporter", Fail::UnhealthyAfter)),
        ),
    ] {
        let prepare = |w: &Shared| {
            if let Some((n, f)) = setup {
                inject(w, n, f);
            }
        };
        let total = saves_of_a_clean_run(prepare);
        assert!(total > 40, "{total} journal points");
        for k in 1..=total {
            let ctx = format!("{label}: crash at journal point {k}/{total}");
            let (s, w, disk) = (stack(""), world(), Disk::default());
            prepare(&w);
            let crashed = apply(&s, &w, &disk, Some(k), &opts());
            assert!(
                matches!(crashed, Err(Error::Journal(_))),
                "{ctx}: {crashed:?}"
            );
            *disk.saves.lock().unwrap() = 0;
            match resume(&s, &w, &disk) {
                Ok(r) => assert!(!r.status.is_active(), "{ctx}"),
                Err(Error::NothingToResume) => {}
                Err(e) => panic!("{ctx}: {e}"),
            }
            check_invariants(&w, &disk, &ctx);
            // A clean run after resume has a plan only for what is still at 1.0.0.
            if setup.is_none() {
                let state = disk.state.lock().unwrap().clone();
                if state.is_some() {
                    for n in NAMES {
                        let st = status_of(&disk, n);
                        assert!(
                            matches!(
                                st,
                                Some(ComponentStatus::Completed | ComponentStatus::Skipped)
                            ),
                            "{ctx}: {n} {st:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn manual_changes_are_respected() {
    // At the target by hand: skipped, no restart.
    let (s, w, disk) = (stack(""), world(), Disk::default());
    let plan = plan_for(&s, &w);
    {
        let mut wl = w.lock().unwrap();
        wl.store
            .get_mut("node_exporter")
            .unwrap()
            .insert(v("1.1.0"));
        wl.current.insert("node_exporter".into(), v("1.1.0"));
        wl.running.insert("node_exporter".into(), v("1.1.0"));
    }
    let f = fakes(&w);
    let mut j = FakeJournal::new(&disk, None);
    let r = engine::apply(
        &s,
        &plan,
        &releases(),
        &mut f.ports(&mut j),
        &opts(),
        &Lock,
        ask(&mut |_| true),
    )
    .unwrap();
    let node = r
        .steps
        .iter()
        .find(|s| s.component == "node_exporter")
        .unwrap();
    assert_eq!(node.status, ComponentStatus::Skipped);
    assert!(
        node.message
            .as_deref()
            .unwrap()
            .contains("already at 1.1.0")
    );
    assert_eq!(w.lock().unwrap().restarts.get("node_exporter"), None);

    // Changed to another version: reported, nothing touched.
    let (s, w, disk) = (stack(""), world(), Disk::default());
    let plan = plan_for(&s, &w);
    {
        let mut wl = w.lock().unwrap();
        wl.store
            .get_mut("mysqld_exporter")
            .unwrap()
            .insert(v("0.9.0"));
        wl.current.insert("mysqld_exporter".into(), v("0.9.0"));
        wl.running.insert("mysqld_exporter".into(), v("0.9.0"));
    }
    let f = fakes(&w);
    let mut j = FakeJournal::new(&disk, None);
    let r = engine::apply(
        &s,
        &plan,
        &releases(),
        &mut f.ports(&mut j),
        &opts(),
        &Lock,
        ask(&mut |_| true),
    )
    .unwrap();
    let m = r
        .steps
        .iter()
        .find(|s| s.component == "mysqld_exporter")
        .unwrap();
    assert_eq!(m.status, ComponentStatus::Failed);
    assert!(
        m.message
            .as_deref()
            .unwrap()
            .contains("changed by hand to 0.9.0"),
        "{m:?}"
    );
    assert_eq!(w.lock().unwrap().running["mysqld_exporter"], v("0.9.0"));
    // Planned again, it starts from where it is.
    let again = plan_for(&s, &w);
    assert!(
        again
            .steps()
            .any(|st| st.component == "mysqld_exporter" && st.from == v("0.9.0"))
    );
}

#[test]
fn an_atomic_phase_rolls_back_as_a_whole() {
    let (s, w, disk) = (stack(", atomic: true"), world(), Disk::default());
    inject(&w, "node_exporter", Fail::UnhealthyAfter);
    let r = apply(&s, &w, &disk, None, &opts()).unwrap();
    assert_eq!(r.upgraded(), 0);
    for n in NAMES {
        assert_eq!(
            status_of(&disk, n),
            Some(ComponentStatus::RolledBack),
            "{n}"
        );
        assert_eq!(w.lock().unwrap().running[n], v("1.0.0"), "{n}");
    }
    let st = disk.state.lock().unwrap().clone().unwrap();
    assert_eq!(
        st.phases[0].status,
        upgrade_core::journal::PhaseStatus::RolledBack
    );
    check_invariants(&w, &disk, "atomic");
}

#[test]
fn a_dry_run_changes_nothing() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    inject(&w, "nginx_exporter", Fail::UnhealthyBefore);
    let before = w.lock().unwrap().clone();
    let mut o = opts();
    o.mode = Mode::DryRun;
    let r = apply(&s, &w, &disk, None, &o).unwrap();
    assert_eq!(*w.lock().unwrap(), before, "the world is untouched");
    assert_eq!(*disk.saves.lock().unwrap(), 0, "the journal is untouched");
    assert!(disk.state.lock().unwrap().is_none());
    let nginx = r
        .steps
        .iter()
        .find(|s| s.component == "nginx_exporter")
        .unwrap();
    assert!(
        nginx.message.as_deref().unwrap().contains("unhealthy now"),
        "{nginx:?}"
    );
    assert!(r.notes.iter().any(|n| n.contains("checked with")));
}

#[test]
fn an_unmanaged_binary_is_adopted_and_is_the_first_rollback_target() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    {
        let mut wl = w.lock().unwrap();
        wl.store.remove("node_exporter");
        wl.current.remove("node_exporter");
        wl.good.remove("node_exporter");
        wl.plain.insert("node_exporter".into(), v("1.0.0"));
    }
    inject(&w, "node_exporter", Fail::UnhealthyAfter);
    let mut o = opts();
    o.scope = Scope::Component {
        name: "node_exporter".into(),
    };
    apply(&s, &w, &disk, None, &o).unwrap();
    let wl = w.lock().unwrap().clone();
    assert!(wl.plain.is_empty(), "the plain binary became a link");
    assert_eq!(
        wl.store["node_exporter"]
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        [v("1.0.0"), v("1.1.0")]
    );
    assert_eq!(
        wl.current["node_exporter"],
        v("1.0.0"),
        "rolled back to the adopted version"
    );
    assert_eq!(wl.running["node_exporter"], v("1.0.0"));
    assert_eq!(
        status_of(&disk, "mysqld_exporter"),
        Some(ComponentStatus::Skipped),
        "outside the scope"
    );
}

#[test]
fn approval_scope_window_and_lock() {
    // Steps needing approval: skipped unless approved.
    let s = upgrade_core::Stack::from_text(
        "components:\n  node_exporter: {allow: patch}\n",
        upgrade_core::config::Format::Yaml,
        "a.yaml",
        None,
    )
    .unwrap();
    let w = world();
    let disk = Disk::default();
    let plan = plan_for(&s, &w);
    assert!(plan.steps().all(|st| st.needs_approval));
    let f = fakes(&w);
    let mut j = FakeJournal::new(&disk, None);
    let mut asked = 0;
    let r = engine::apply(
        &s,
        &plan,
        &releases(),
        &mut f.ports(&mut j),
        &opts(),
        &Lock,
        ask(&mut |_| {
            asked += 1;
            false
        }),
    )
    .unwrap();
    assert_eq!(asked, 1);
    assert!(
        r.steps[0]
            .message
            .as_deref()
            .unwrap()
            .starts_with("awaiting approval")
    );
    let mut o = Options::new("run-2");
    o.approve_all = true;
    let mut j = FakeJournal::new(&disk, None);
    let r = engine::apply(
        &s,
        &plan,
        &releases(),
        &mut f.ports(&mut j),
        &o,
        &Lock,
        ask(&mut |_| panic!("no prompt with --yes")),
    )
    .unwrap();
    assert_eq!(r.upgraded(), 1);

    // Unattended outside a window: refused, nothing written.
    // The virtual clock says Tuesday 10:00 UTC; the only window is on Sundays.
    let (s, w, disk) = (stack_with_window("[sun]"), world(), Disk::default());
    let mut o = opts();
    o.unattended = true;
    let e = apply(&s, &w, &disk, None, &o).unwrap_err();
    let Error::OutsideWindow { next: Some(next) } = e else {
        panic!("{e}")
    };
    assert_eq!(next.to_string(), "2026-11-22T02:00:00Z");
    assert_eq!(*disk.saves.lock().unwrap(), 0);
    assert!(disk.history.lock().unwrap().is_empty());
    // Inside a window (Tuesdays): it goes ahead.
    let (s, w, disk) = (stack_with_window("[tue]"), world(), Disk::default());
    let r = apply(&s, &w, &disk, None, &o).unwrap();
    assert_eq!(r.upgraded(), 3);
    let mut o = opts();
    o.scope = Scope::Component {
        name: "nope".into(),
    };
    let e = apply(&s, &w, &disk, None, &o).unwrap_err().to_string();
    assert!(e.contains("unknown component `nope`"), "{e}");
}

#[test]
fn an_interrupted_run_blocks_a_new_one_until_resumed() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    assert!(apply(&s, &w, &disk, Some(10), &opts()).is_err());
    let e = apply(&s, &w, &disk, None, &Options::new("run-2")).unwrap_err();
    assert!(matches!(e, Error::InProgress { .. }), "{e}");
    assert!(e.to_string().contains("obs-upgrade resume"));
    resume(&s, &w, &disk).unwrap();
    check_invariants(&w, &disk, "after resume");
}

#[test]
fn manual_rollback_of_a_component_and_of_a_run() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    apply(&s, &w, &disk, None, &opts()).unwrap();
    let f = fakes(&w);
    let mut j = FakeJournal::new(&disk, None);
    let r = engine::rollback_component(
        &s,
        "node_exporter",
        &v("1.0.0"),
        &mut f.ports(&mut j),
        &Options::new("rb-1"),
        &Lock,
    )
    .unwrap();
    assert_eq!(r.upgraded(), 1);
    assert_eq!(w.lock().unwrap().running["node_exporter"], v("1.0.0"));
    let e = engine::rollback_component(
        &s,
        "node_exporter",
        &v("0.1.0"),
        &mut f.ports(&mut j),
        &Options::new("rb-2"),
        &Lock,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("not in the store; versions there: 1.0.0, 1.1.0"),
        "{e}"
    );

    let history = disk.history.lock().unwrap().clone();
    let r = engine::rollback_run(
        &s,
        "run-1",
        &history,
        &mut f.ports(&mut j),
        &Options::new("rb-3"),
        &Lock,
    )
    .unwrap();
    assert_eq!(r.upgraded(), 2, "the two still at 1.1.0");
    for n in NAMES {
        assert_eq!(w.lock().unwrap().running[n], v("1.0.0"), "{n}");
    }
    let e = engine::rollback_run(
        &s,
        "no-such-run",
        &history,
        &mut f.ports(&mut j),
        &Options::new("rb-4"),
        &Lock,
    )
    .unwrap_err();
    assert!(e.to_string().contains("upgraded nothing"), "{e}");
}

#[test]
fn prune_keeps_current_good_and_newest() {
    let (s, w) = (stack(""), world());
    {
        let mut wl = w.lock().unwrap();
        let st = wl.store.get_mut("node_exporter").unwrap();
        for x in ["0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.1.0"] {
            st.insert(v(x));
        }
        wl.good.insert("node_exporter".into(), v("0.5.0"));
    }
    let f = fakes(&w);
    // 0.7.0 is protected (held, or the target of an unfinished run).
    let protected = std::collections::BTreeSet::from([("node_exporter".to_owned(), v("0.7.0"))]);
    let r = engine::prune(&s, &f.store, 2, &protected, true, &Lock).unwrap();
    assert_eq!(r.removed["node_exporter"], [v("0.6.0"), v("0.8.0")]);
    assert_eq!(
        r.kept["node_exporter"],
        [v("0.5.0"), v("0.7.0"), v("1.0.0"), v("1.1.0")]
    );
    let left = upgrade_core::ports::ArtifactStore::versions(&f.store, "node_exporter").unwrap();
    assert_eq!(left.len(), 6, "a dry run removes nothing");
    let r = engine::prune(
        &s,
        &f.store,
        2,
        &std::collections::BTreeSet::new(),
        false,
        &Lock,
    )
    .unwrap();
    assert_eq!(
        r.removed["node_exporter"],
        [v("0.6.0"), v("0.7.0"), v("0.8.0")]
    );
    assert_eq!(
        r.kept["node_exporter"],
        [v("0.5.0"), v("1.0.0"), v("1.1.0")]
    );
}

#[test]
fn a_failing_notifier_never_fails_the_run() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    w.lock().unwrap().notifier_fails = true;
    let r = apply(&s, &w, &disk, None, &opts()).unwrap();
    assert_eq!(r.upgraded(), 3);
    let failures = disk
        .history
        .lock()
        .unwrap()
        .iter()
        .filter(|h| matches!(h, HistoryRecord::NotificationFailed { .. }))
        .count();
    assert_eq!(failures, 5, "each failed notification is in history");
    let _ = BTreeMap::<u8, u8>::new();
}

#[test]
fn unattended_applies_only_up_to_the_auto_approve_risk() {
    // 1.0.0 → 1.1.0 is a minor change: medium risk. auto_approve low holds it back.
    let (s, w, disk) = (stack(""), world(), Disk::default());
    let mut o = opts();
    o.unattended = true;
    let r = apply(&s, &w, &disk, None, &o).unwrap();
    assert_eq!(r.upgraded(), 0);
    assert!(
        r.steps.iter().all(|st| st
            .message
            .as_deref()
            .unwrap()
            .contains("medium risk is above auto_approve `low`")),
        "{r:?}"
    );
    // Raised for one component, that one goes ahead.
    let yaml = "maintenance: {auto_approve: low}\ncomponents:\n  node_exporter: {allow: major, auto_approve: medium}\n  mysqld_exporter: {allow: major}\n  nginx_exporter: {allow: major}\n";
    let s =
        upgrade_core::Stack::from_text(yaml, upgrade_core::config::Format::Yaml, "u.yaml", None)
            .unwrap();
    let (w, disk) = (world(), Disk::default());
    let r = apply(&s, &w, &disk, None, &o).unwrap();
    assert_eq!(r.upgraded(), 1);
    assert_eq!(w.lock().unwrap().running["node_exporter"], v("1.1.0"));
}

#[test]
fn a_rollback_restores_the_files_a_release_rewrote_with_a_virtual_clock() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    w.lock().unwrap().migrates_config = true;
    inject(&w, "node_exporter", Fail::UnhealthyAfter);
    let plan = plan_for(&s, &w);
    let f = fakes(&w);
    let mut j = FakeJournal::new(&disk, None);
    let mut o = opts();
    o.pause = Some(std::time::Duration::from_secs(3600));
    let r = engine::apply(
        &s,
        &plan,
        &releases(),
        &mut f.ports(&mut j),
        &o,
        &Lock,
        ask(&mut |_| true),
    )
    .unwrap();
    let node = r
        .steps
        .iter()
        .find(|s| s.component == "node_exporter")
        .unwrap();
    assert_eq!(node.status, ComponentStatus::RolledBack);
    let wl = w.lock().unwrap();
    // The switch rewrote it; the rollback's restore put the saved copy back.
    assert_eq!(
        wl.files["/etc/node_exporter/config.yml"],
        "node_exporter config v1"
    );
    assert_eq!(
        wl.files["/etc/mysqld_exporter/config.yml"], "mysqld_exporter config migrated by 1.1.0",
        "an upgraded component keeps its migrated file"
    );
    drop(wl);
    let state = disk.state.lock().unwrap().clone().unwrap();
    let c = state.components.get("node_exporter:1.1.0").unwrap();
    let restore = c
        .journal
        .iter()
        .find(|e| e.step == upgrade_core::journal::TxStep::RollbackRestore)
        .unwrap();
    assert!(
        matches!(&restore.event, upgrade_core::journal::StepEvent::Began),
        "{restore:?}"
    );
    assert!(c.journal.iter().any(|e| matches!(
        &e.event,
        upgrade_core::journal::StepEvent::Done { result } if result == "files restored"
    )));
    // Two pauses of an hour between three components, on the virtual clock only.
    assert_eq!(f.clock.slept.lock().unwrap().len(), 2);
    assert_eq!(state.started_at.to_string(), "2026-11-17T10:00:00Z");
    assert_eq!(
        state.finished_at.unwrap().to_string(),
        "2026-11-17T12:00:00Z"
    );
}

#[test]
fn resume_finishes_a_component_that_left_the_stack_from_the_journal() {
    // Killed right after the switch of the first component; the stack file
    // then loses that component before `resume`.
    let (s, w, disk) = (stack(""), world(), Disk::default());
    let plan = plan_for(&s, &w);
    inject(&w, "mysqld_exporter", Fail::UnhealthyAfter);
    let f = fakes(&w);
    let mut j = FakeJournal::new(&disk, Some(14));
    let _ = engine::apply(
        &s,
        &plan,
        &releases(),
        &mut f.ports(&mut j),
        &opts(),
        &Lock,
        ask(&mut |_| true),
    );
    assert!(matches!(
        status_of(&disk, "mysqld_exporter"),
        Some(ComponentStatus::InProgress { .. })
    ));
    let text = "components:\n  node_exporter: {allow: major}\n  nginx_exporter: {allow: major}\n";
    let smaller =
        upgrade_core::Stack::from_text(text, upgrade_core::config::Format::Yaml, "s.yaml", None)
            .unwrap();
    let r = resume(&smaller, &w, &disk).unwrap();
    let m = r
        .steps
        .iter()
        .find(|s| s.component == "mysqld_exporter")
        .unwrap();
    assert_eq!(m.status, ComponentStatus::RolledBack, "{m:?}");
    assert_eq!(w.lock().unwrap().running["mysqld_exporter"], v("1.0.0"));
}

#[test]
fn safe_mode_asks_with_the_planned_risk() {
    let (s, w, disk) = (stack(""), world(), Disk::default());
    let plan = plan_for(&s, &w);
    let planned: Vec<_> = plan.steps().map(|s| s.risk).collect();
    let f = fakes(&w);
    let mut j = FakeJournal::new(&disk, None);
    let mut o = opts();
    o.mode = Mode::Safe;
    let mut asked = Vec::new();
    engine::apply(
        &s,
        &plan,
        &releases(),
        &mut f.ports(&mut j),
        &o,
        &Lock,
        ask(&mut |step| {
            asked.push(step.risk);
            true
        }),
    )
    .unwrap();
    assert_eq!(asked, planned);
    assert!(
        asked.iter().all(|r| *r != upgrade_core::risk::Risk::Low),
        "{asked:?}"
    );
}
