//! The engine with every real adapter on a temporary root, under the process
//! supervisor: Debian's `node_exporter` 1.5.0, installed as a plain binary, is
//! adopted and upgraded to 1.9.0, then rolled back by hand.

use obs_upgrade_tests::world::{Sandbox, free_port, running_version};
use upgrade_core::engine::{self, Options};
use upgrade_core::journal::{ComponentStatus, HistoryRecord, Outcome, RunStatus};
use upgrade_core::ports::Proof;
use upgrade_core::version::Version;

#[test]
fn node_exporter_is_adopted_upgraded_and_rolled_back() {
    let sb = Sandbox::new();
    let Some((old, _)) =
        sb.serve_debian_node_exporters("node_exporter_is_adopted_upgraded_and_rolled_back")
    else {
        return;
    };
    let plain = sb.install_plain("node_exporter", &old);
    let port = free_port();
    sb.run_service(
        "node_exporter.service",
        "node_exporter",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--no-collector.systemd".into(),
        ],
    );
    let stack = sb.stack(&format!(
        "components:\n  node_exporter: {{api_url: '{{api}}', port: {port}, allow: minor}}\n"
    ));
    let releases = sb.releases(&stack);
    let first = sb.plan(&stack, &releases);
    let steps: Vec<_> = first.steps().collect();
    assert_eq!(steps.len(), 1, "{first:?}");
    assert_eq!(
        (steps[0].from.to_string(), steps[0].to.to_string()),
        ("1.5.0".into(), "1.9.0".into())
    );

    let report = sb
        .with_ports(|p| {
            engine::apply(
                &stack,
                &first,
                &releases,
                p,
                &Options::new("run-real-1"),
                &sb.lock(),
                engine::Approver::Ask(&mut |_| true),
            )
        })
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert_eq!(report.steps[0].status, ComponentStatus::Completed);

    // On the host: the binary is a link into the store; the service runs 1.9.0.
    let link = std::fs::read_link(&plain).unwrap();
    assert_eq!(
        link,
        sb.layout
            .store_dir()
            .join("node_exporter/current/node_exporter")
    );
    let store = sb.store();
    assert_eq!(
        store.current("node_exporter").unwrap(),
        Some(Version::parse("1.9.0").unwrap())
    );
    assert_eq!(store.versions("node_exporter").unwrap().len(), 2);
    assert_eq!(
        store
            .staged("node_exporter", &Version::parse("1.5.0").unwrap())
            .unwrap()
            .unwrap()
            .proof,
        Proof::Adopted
    );
    assert_eq!(
        store
            .staged("node_exporter", &Version::parse("1.9.0").unwrap())
            .unwrap()
            .unwrap()
            .proof,
        Proof::ChecksumFile {
            name: "sha256sums.txt".into()
        }
    );
    assert_eq!(
        running_version(port, "node_exporter_build_info").as_deref(),
        Some("1.9.0")
    );
    let history = sb.with_ports(|_| {
        upgrade_state::History::open(&sb.layout.state_dir())
            .unwrap()
            .read_all()
            .unwrap()
            .records
    });
    let upgraded = |h: &HistoryRecord| {
        matches!(h, HistoryRecord::Component { outcome: Outcome::Upgraded, component, .. }
            if component == "node_exporter")
    };
    assert!(history.iter().any(upgraded));

    // A second run: nothing to do, no restart.
    let pid = sb.supervisor.running_pid("node_exporter.service");
    let again = sb.plan(&stack, &releases);
    let r = sb
        .with_ports(|p| {
            engine::apply(
                &stack,
                &again,
                &releases,
                p,
                &Options::new("run-real-2"),
                &sb.lock(),
                engine::Approver::Ask(&mut |_| true),
            )
        })
        .unwrap();
    assert!(r.nothing_to_do());
    assert_eq!(
        sb.supervisor.running_pid("node_exporter.service"),
        pid,
        "not restarted"
    );

    // A manual rollback to the adopted version.
    let r = sb
        .with_ports(|p| {
            engine::rollback_component(
                &stack,
                "node_exporter",
                &Version::parse("1.5.0").unwrap(),
                p,
                &Options::new("run-real-3"),
                &sb.lock(),
            )
        })
        .unwrap();
    assert_eq!(r.status, RunStatus::Completed, "{r:?}");
    assert_eq!(
        running_version(port, "node_exporter_build_info").as_deref(),
        Some("1.5.0")
    );
    assert_eq!(
        store.current("node_exporter").unwrap(),
        Some(Version::parse("1.5.0").unwrap())
    );
}
