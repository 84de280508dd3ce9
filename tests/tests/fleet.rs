//! A fleet rolled out with real `ansible-playbook` over SSH: three hosts,
//! each a network namespace with its own systemd, sshd and Debian's real
//! exporters, fed by a mirror served over http from the controller. The
//! collection is built and installed from its tarball first.
//!
//! One test, in order: a release that fails on the canary stops the
//! rollout (the canary rolled back, the others untouched); check mode
//! changes nothing; a rollout upgrades every host to the pinned versions
//! with no request to the release API from any host; a second rollout
//! changes nothing; the rollback playbook puts every host back.
#![allow(clippy::print_stderr)] // how long each part takes, for the CI budget

use std::collections::BTreeMap;
use std::process::Command;

use obs_upgrade_tests::e2e::{self, ROOT};
use obs_upgrade_tests::fleet::{self, COMPONENTS, Fleet};
use obs_upgrade_tests::{bin, output_text};
use upgrade_core::version::Version;

fn versions(suite: &str) -> BTreeMap<&'static str, Version> {
    COMPONENTS
        .iter()
        .map(|c| (*c, e2e::tag_version(suite, c)))
        .collect()
}

fn report(f: &Fleet, dir: &str) -> serde_json::Value {
    let path = f.controller.join(dir).join("report.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("report json")
}

#[test]
fn a_fleet_rollout_canary_first_pinned_and_undone() {
    if !fleet::available("a_fleet_rollout_canary_first_pinned_and_undone") {
        return;
    }
    let started = std::time::Instant::now();
    let f = Fleet::boot(3, &[fleet::broken_node_release("1.9.1")]);
    eprintln!("fleet booted in {:?}", started.elapsed());
    let old = versions("bookworm");
    let new = versions("trixie");

    // Positive control: an unpinned obs-upgrade on a host does reach the
    // release API (so that zero requests below means something).
    let h0 = &f.hosts[0];
    let obs = h0.ns.stage_file(&bin("obs-upgrade"));
    let before = f.api_requests();
    let o = Command::new("nsenter")
        .args(["-t", &h0.ns.pid.to_string(), "-a"])
        .arg(&obs)
        .args(["--root", ROOT, "--json", "check"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        f.api_requests() > before,
        "an unpinned host did not reach the API"
    );

    // 1. A release that fails: the canary rolls back, the rollout stops.
    let mysqld_old = format!("mysqld_exporter={}", old["mysqld_exporter"]);
    let bad = f.pin("bad.json", &["node_exporter=1.9.1", &mysqld_old]);
    let snap: Vec<_> = f.hosts.iter().map(fleet::FleetHost::snapshot).collect();
    let api_before = f.api_requests();
    let r1 = f.controller.join("r1").display().to_string();
    let (ok, out) = f.playbook(
        "rollout",
        &[
            ("obs_upgrade_pins_src", &bad.display().to_string()),
            ("obs_upgrade_report_dir", &r1),
        ],
        false,
    );
    assert!(!ok, "the rollout of a broken release succeeded:\n{out}");
    let recap = Fleet::recap(&out);
    assert_eq!(recap["host0"]["failed"], 1, "{out}");
    for h in &f.hosts[1..] {
        assert!(
            recap.get(&h.name).is_none_or(|r| r["ok"] == 0),
            "{} ran after the canary failed:\n{out}",
            h.name
        );
    }
    assert_eq!(
        h0.running_version("node_exporter").as_ref(),
        Some(&old["node_exporter"]),
        "the canary was not rolled back"
    );
    for (h, before) in f.hosts.iter().zip(&snap).skip(1) {
        assert_eq!(&h.snapshot(), before, "{} was touched", h.name);
        assert!(!h.root("etc/obs-upgrade/pins.json").exists());
    }
    let rep = report(&f, "r1");
    assert_eq!(rep["totals"]["failed"], 1, "{rep:#}");
    let msg = rep["hosts"]["host0"]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("node_exporter"), "{rep:#}");

    // 2. Check mode with the good pin: nothing changes anywhere.
    let good = f.pin(
        "good.json",
        &[
            &format!("node_exporter={}", new["node_exporter"]),
            &format!("mysqld_exporter={}", new["mysqld_exporter"]),
        ],
    );
    let snap: Vec<_> = f.hosts.iter().map(fleet::FleetHost::snapshot).collect();
    let canary_pins = std::fs::read(h0.root("etc/obs-upgrade/pins.json")).unwrap();
    let good_s = good.display().to_string();
    let r2 = f.controller.join("r2").display().to_string();
    let (ok, out) = f.playbook(
        "rollout",
        &[
            ("obs_upgrade_pins_src", &good_s),
            ("obs_upgrade_report_dir", &r2),
        ],
        true,
    );
    assert!(ok, "check mode failed:\n{out}");
    for (h, before) in f.hosts.iter().zip(&snap) {
        assert_eq!(&h.snapshot(), before, "check mode changed {}", h.name);
    }
    assert_eq!(
        std::fs::read(h0.root("etc/obs-upgrade/pins.json")).unwrap(),
        canary_pins,
        "check mode wrote the pin file"
    );

    // 3. The rollout: every host at the pinned versions, no API request.
    let (served_before, _) = f.mirror.served();
    let r3 = f.controller.join("r3").display().to_string();
    let t = std::time::Instant::now();
    let (ok, out) = f.playbook(
        "rollout",
        &[
            ("obs_upgrade_pins_src", &good_s),
            ("obs_upgrade_report_dir", &r3),
        ],
        false,
    );
    eprintln!("rollout of 3 hosts in {:?}", t.elapsed());
    assert!(ok, "the rollout failed:\n{out}");
    for h in &f.hosts {
        for c in COMPONENTS {
            assert!(
                h.wait_version(c, &new[c]),
                "{}: {c} is not at {}",
                h.name,
                new[c]
            );
        }
    }
    assert_eq!(
        f.api_requests(),
        api_before,
        "hosts asked the release API during rollouts"
    );
    let (served, bytes) = f.mirror.served();
    assert!(served > served_before, "nothing came from the mirror");
    eprintln!("mirror: {served} requests, {bytes} bytes");
    let rep = report(&f, "r3");
    assert_eq!(rep["totals"]["changed"], 3, "{rep:#}");
    for h in &f.hosts {
        let run = rep["hosts"][&h.name]["run_id"].as_str().unwrap_or_default();
        assert!(!run.is_empty(), "{}: no run id in {rep:#}", h.name);
    }
    let table = std::fs::read_to_string(f.controller.join("r3/report.txt")).unwrap();
    assert!(table.starts_with("HOST"), "{table}");
    assert!(
        table.contains("3 hosts, 3 changed, 0 unchanged, 0 failed"),
        "{table}"
    );

    // 4. Again: nothing changes, changed=0 everywhere.
    let r4 = f.controller.join("r4").display().to_string();
    let (ok, out) = f.playbook(
        "rollout",
        &[
            ("obs_upgrade_pins_src", &good_s),
            ("obs_upgrade_report_dir", &r4),
        ],
        false,
    );
    assert!(ok, "the second rollout failed:\n{out}");
    let recap = Fleet::recap(&out);
    for h in &f.hosts {
        assert_eq!(recap[&h.name]["changed"], 0, "{}:\n{out}", h.name);
    }

    // 5. The rollback playbook: every host back where it was.
    let (ok, out) = f.playbook("rollback", &[("obs_upgrade_report_dir", &r3)], false);
    assert!(ok, "the rollback failed:\n{out}");
    for h in &f.hosts {
        for c in COMPONENTS {
            assert!(
                h.wait_version(c, &old[c]),
                "{}: {c} is not back at {}",
                h.name,
                old[c]
            );
        }
    }
    assert_eq!(f.api_requests(), api_before);
    eprintln!("fleet test in {:?}", started.elapsed());
}
