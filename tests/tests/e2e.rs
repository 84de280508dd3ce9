//! End to end on Debian's real exporter builds and a real systemd (in a PID
//! and mount namespace), with faults injected. Each scenario asserts on the
//! host: links, the versions the running services report in `*_build_info`,
//! units, the journal and history, not only exit codes.
#![allow(clippy::print_stderr, clippy::too_many_lines)]

use std::process::Output;

use obs_upgrade_tests::e2e::{self, Host, tag_version};
use upgrade_core::catalog;
use upgrade_core::journal::{ComponentStatus, HistoryRecord, Outcome};

fn out(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn old(c: &str) -> upgrade_core::version::Version {
    tag_version("bookworm", c)
}

fn new(c: &str) -> upgrade_core::version::Version {
    tag_version("trixie", c)
}

const ALL: [&str; 5] = [
    "node_exporter",
    "alertmanager",
    "prometheus",
    "mysqld_exporter",
    "nginx_exporter",
];

#[test]
fn adoption_upgrade_approval_idempotency_and_rollbacks() {
    if !e2e::available("adoption_upgrade_approval_idempotency_and_rollbacks") {
        return;
    }
    let h = Host::boot(
        &ALL,
        &[("alertmanager", "major"), ("mysqld_exporter", "major")],
        "",
    );
    let units_before: Vec<String> = ALL
        .iter()
        .map(|c| {
            std::fs::read_to_string(h.ns.unit_dir().join(&catalog::builtin()[*c].unit)).unwrap()
        })
        .collect();

    // 1. Adoption and upgrade; nginx's major bump waits for approval.
    let plan = h.obs(&["plan"]);
    let text = String::from_utf8_lossy(&plan.stdout).into_owned();
    let nginx_line = text
        .lines()
        .find(|l| l.contains("nginx_exporter"))
        .unwrap_or_default();
    assert!(
        nginx_line.contains("major") && nginx_line.contains("needed"),
        "{text}"
    );
    let o = h.obs(&["apply"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for c in [
        "node_exporter",
        "alertmanager",
        "prometheus",
        "mysqld_exporter",
    ] {
        assert!(
            h.wait_version(c, &new(c)),
            "{c} serves {:?}, not {}",
            h.running_version(c),
            new(c)
        );
        assert_eq!(h.current(c), Some(new(c)), "{c}");
        let link = std::fs::read_link(h.root(&format!(
            "usr/local/bin/{}",
            catalog::builtin()[c].main_binary()
        )))
        .unwrap();
        assert!(
            link.ends_with(format!(
                "{c}/current/{}",
                catalog::builtin()[c].main_binary()
            )),
            "{}",
            link.display()
        );
        let adopted = std::fs::read_dir(h.root(&format!("opt/obs-upgrade/{c}")))
            .unwrap()
            .flatten()
            .filter_map(|e| {
                upgrade_core::version::Version::parse(&e.file_name().to_string_lossy()).ok()
            })
            .any(|v| {
                v.same_release(&old(c))
                    && h.root(&format!(
                        "opt/obs-upgrade/{c}/{v}/.obs-upgrade-release.json"
                    ))
                    .exists()
            });
        assert!(adopted, "{c}: the adopted version is in the store");
    }
    assert!(
        h.running_version("nginx_exporter")
            .unwrap()
            .same_release(&old("nginx_exporter")),
        "nginx held back"
    );
    // promtool and amtool were adopted beside their services and now link into the store too.
    assert!(std::fs::read_link(h.root("usr/local/bin/promtool")).is_ok());
    let state = h.state().unwrap();
    let first_run = state.id.clone();
    let nginx = state
        .components
        .iter()
        .find(|(k, _)| k.starts_with("nginx_exporter:"))
        .unwrap()
        .1;
    assert_eq!(nginx.status, ComponentStatus::Skipped);
    assert!(
        nginx
            .skip_reason
            .as_deref()
            .unwrap()
            .starts_with("awaiting approval"),
        "{nginx:?}"
    );
    // Prometheus's configuration was checked by the new release's promtool before the switch.
    let prom = state
        .components
        .iter()
        .find(|(k, _)| k.starts_with("prometheus:"))
        .unwrap()
        .1;
    let smoke = prom
        .journal
        .iter()
        .find(|e| {
            e.step == upgrade_core::journal::TxStep::Smoke
                && matches!(e.event, upgrade_core::journal::StepEvent::Done { .. })
        })
        .unwrap();
    assert!(
        format!("{:?}", smoke.event)
            .contains(&format!("prometheus/{}/promtool", new("prometheus"))),
        "{smoke:?}"
    );
    // The units are as the operator wrote them.
    for (c, before) in ALL.iter().zip(&units_before) {
        assert_eq!(
            &std::fs::read_to_string(h.ns.unit_dir().join(&catalog::builtin()[*c].unit)).unwrap(),
            before,
            "{c}"
        );
    }
    h.check_invariants("after the first apply");

    // …then applied with --yes.
    let o = h.obs(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(h.wait_version("nginx_exporter", &new("nginx_exporter")));
    let upgraded: usize = h
        .history()
        .iter()
        .filter(|r| {
            matches!(
                r,
                HistoryRecord::Component {
                    outcome: Outcome::Upgraded,
                    ..
                }
            )
        })
        .count();
    assert_eq!(upgraded, 5);
    assert!(
        h.receiver
            .bodies()
            .iter()
            .any(|(_, b)| b.contains("\"component_upgraded\"") && b.contains("nginx_exporter")),
        "notified"
    );

    // 2. A second run: nothing to do, nothing restarted.
    let pids: Vec<Option<u32>> = ALL.iter().map(|c| h.main_pid(c)).collect();
    let o = h.obs(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Nothing to do"),
        "{}",
        out(&o)
    );
    assert_eq!(
        ALL.iter().map(|c| h.main_pid(c)).collect::<Vec<_>>(),
        pids,
        "no MainPID changed"
    );
    assert!(
        matches!(h.history().last(), Some(HistoryRecord::Run { summary, .. }) if summary == "nothing to do")
    );

    // 7. rollback --run: everything the first run upgraded goes back.
    let o = h.obs(&["rollback", "--run", &first_run]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for c in [
        "node_exporter",
        "alertmanager",
        "prometheus",
        "mysqld_exporter",
    ] {
        assert!(h.wait_version(c, &old(c)), "{c} back at {}", old(c));
    }
    assert!(
        h.running_version("nginx_exporter")
            .unwrap()
            .same_release(&new("nginx_exporter")),
        "not part of that run"
    );
    // rollback --previous: undo the last run (the rollback itself).
    let o = h.obs(&["rollback", "--previous"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    for c in ALL {
        assert!(h.wait_version(c, &new(c)), "{c} at {} again", new(c));
    }
    h.check_invariants("after the rollbacks");
}
