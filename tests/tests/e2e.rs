//! End to end on Debian's real exporter builds and a real systemd (in a PID
//! and mount namespace), with faults injected. Each scenario asserts on the
//! host: links, the versions the running services report in `*_build_info`,
//! units, the journal and history, not only exit codes.
#![allow(
    clippy::print_stderr,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)] // scrape counts are small

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
    let last = h.history().last().cloned();
    assert!(
        matches!(&last, Some(HistoryRecord::Run { summary, .. }) if summary == "nothing to do"),
        "{last:?}"
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

fn run_id_of_last(h: &Host) -> String {
    h.state().map(|s| s.id).unwrap_or_default()
}

#[test]
fn a_release_that_fails_its_health_check_is_rolled_back_and_reported() {
    if !e2e::available("a_release_that_fails_its_health_check_is_rolled_back_and_reported") {
        return;
    }
    let h = Host::boot(&["node_exporter"], &[], "");
    publish_broken_node(&h);
    let o = h.obs(&["apply"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "failed and rolled back: {}",
        out(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("rolled back"),
        "{}",
        out(&o)
    );
    // The old version serves again, from the store it was adopted into.
    assert!(h.wait_version("node_exporter", &old("node_exporter")));
    assert!(
        h.current("node_exporter")
            .unwrap()
            .same_release(&old("node_exporter"))
    );
    let state = h.state().unwrap();
    let rec = state.components.values().next().unwrap();
    assert_eq!(rec.status, ComponentStatus::RolledBack);
    assert!(
        rec.last_error
            .as_deref()
            .unwrap()
            .contains("unhealthy after the switch"),
        "{rec:?}"
    );
    assert!(h.history().iter().any(|r| matches!(
        r,
        HistoryRecord::Component {
            outcome: Outcome::RolledBack,
            ..
        }
    )));
    let hooks = h.receiver.bodies();
    assert!(
        hooks
            .iter()
            .any(|(_, b)| b.contains("\"component_rolled_back\"") && b.contains("1.9.9+broken")),
        "{hooks:?}"
    );
    h.check_invariants("after the automatic rollback");
}

#[test]
fn sigkill_at_every_journal_point_then_resume() {
    if !e2e::available("sigkill_at_every_journal_point_then_resume") {
        return;
    }
    let comps = ["node_exporter", "mysqld_exporter", "nginx_exporter"];
    let h = Host::boot(
        &comps,
        &[("mysqld_exporter", "major"), ("nginx_exporter", "major")],
        "",
    );
    let mut k = 1;
    loop {
        let ctx = format!("killed after journal save {k}");
        let o = h.obs_env(
            &[("OBS_UPGRADE_TEST_KILL_AFTER_SAVE", &k.to_string())],
            &["apply", "--mode", "fast"],
        );
        let killed = o.status.code().is_none() || o.status.code() == Some(137);
        if killed {
            // The next run must refuse until the interrupted one is resumed…
            let o2 = h.obs(&["apply"]);
            let code = o2.status.code();
            assert!(code == Some(4) || code == Some(0), "{ctx}: {}", out(&o2));
            let r = h.obs(&["resume"]);
            assert!(
                matches!(r.status.code(), Some(0 | 1)),
                "{ctx}: resume: {}",
                out(&r)
            );
        } else {
            assert_eq!(o.status.code(), Some(0), "{ctx}: {}", out(&o));
        }
        h.check_invariants(&ctx);
        if !killed {
            eprintln!(
                "the run has {} journal saves; each was followed by a SIGKILL and a resume",
                k - 1
            );
            assert!(k > 30, "{k}");
            break;
        }
        // Back to the old versions for the next point: undo the run.
        let id = run_id_of_last(&h);
        let rb = h.obs(&["rollback", "--run", &id]);
        assert!(
            matches!(rb.status.code(), Some(0 | 1)),
            "{ctx}: reset: {}",
            out(&rb)
        );
        for c in comps {
            assert!(h.wait_version(c, &old(c)), "{ctx}: reset of {c}");
            // The rollback holds what it moved; the next point upgrades again.
            let o = h.obs(&["hold", "release", c]);
            assert_eq!(o.status.code(), Some(0), "{ctx}: {}", out(&o));
        }
        k += 1;
    }
}

#[test]
fn concurrent_applies_one_runs_the_others_exit_3_naming_the_holder() {
    if !e2e::available("concurrent_applies_one_runs_the_others_exit_3_naming_the_holder") {
        return;
    }
    let h = Host::boot(
        &["node_exporter", "mysqld_exporter"],
        &[("mysqld_exporter", "major")],
        "",
    );
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| h.obs(&["apply", "--mode", "standard"])))
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(3)).count(),
        2,
        "{codes:?}"
    );
    for o in outs.iter().filter(|o| o.status.code() == Some(3)) {
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("another obs-upgrade run holds the lock")
                && e.contains("pid ")
                && e.contains("running `")
                && e.contains("apply"),
            "{e}"
        );
    }
    for c in ["node_exporter", "mysqld_exporter"] {
        assert!(h.wait_version(c, &new(c)));
    }
    h.check_invariants("after concurrent applies");
}

#[test]
fn faults_are_refused_cleanly_and_leave_the_host_unchanged() {
    if !e2e::available("faults_are_refused_cleanly_and_leave_the_host_unchanged") {
        return;
    }
    let h = Host::boot(&["node_exporter"], &[], "");
    let pid = h.main_pid("node_exporter");
    let unchanged = |ctx: &str, before: &std::collections::BTreeMap<String, String>| {
        assert_eq!(&h.tree(), before, "{ctx}: the host changed");
        assert_eq!(
            h.main_pid("node_exporter"),
            pid,
            "{ctx}: the service was restarted"
        );
        assert!(
            h.running_version("node_exporter")
                .unwrap()
                .same_release(&old("node_exporter")),
            "{ctx}"
        );
    };
    let before = h.tree();

    // A wrong checksum.
    h.server.state().faults.corrupt = true;
    let o = h.obs(&["apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("does not match") && out(&o).contains("the partial download was removed"),
        "{}",
        out(&o)
    );
    unchanged("bad checksum", &before);
    h.server.state().faults.corrupt = false;

    // A truncated download.
    h.server.state().faults.truncate_after = Some(4096);
    let o = h.obs(&["apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("ended after") && out(&o).contains("resumed"),
        "{}",
        out(&o)
    );
    unchanged("truncated download", &before);
    h.server.state().faults.truncate_after = None;

    // Rate limit used up, nothing cached: a clear error with the reset time.
    let _ = std::fs::remove_dir_all(h.root("var/cache/obs-upgrade/api"));
    h.server.state().rate_remaining = 0;
    let o = h.obs(&["apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        out(&o).contains("rate limit") && out(&o).contains("until 2030-03-17T17:46:40Z"),
        "{}",
        out(&o)
    );
    unchanged("rate limit without cache", &before);
    // …with a cached answer from an earlier check: the cache stands in.
    h.server.state().rate_remaining = 60;
    assert_eq!(h.obs(&["check"]).status.code(), Some(0));
    h.server.state().rate_remaining = 0;
    let o = h.obs(&["plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!(
            "{} → {}",
            old("node_exporter"),
            new("node_exporter")
        )),
        "{}",
        out(&o)
    );
    h.server.state().rate_remaining = 60;

    // A full disk: the store on a small tmpfs.
    let store = format!("{}/opt/obs-upgrade", e2e::ROOT);
    let mounted = std::process::Command::new("nsenter")
        .args([
            "-t",
            &h.ns.pid.to_string(),
            "-m",
            "sh",
            "-c",
            &format!("mkdir -p {store} && mount -t tmpfs -o size=256k tmpfs {store}"),
        ])
        .status()
        .unwrap()
        .success();
    assert!(mounted);
    let o = h.obs(&["apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.contains("No space left on device") || text.contains("bytes free for the store"),
        "{text}"
    );
    unchanged("full disk", &before);
    let left: Vec<_> = std::process::Command::new("find")
        .arg(h.root("opt/obs-upgrade"))
        .args(["-type", "f"])
        .output()
        .unwrap()
        .stdout;
    assert!(
        left.is_empty(),
        "nothing left in the full store: {}",
        String::from_utf8_lossy(&left)
    );
    std::process::Command::new("nsenter")
        .args(["-t", &h.ns.pid.to_string(), "-m", "umount", &store])
        .status()
        .unwrap();

    // And after all that, a clean run upgrades.
    let o = h.obs(&["apply"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(h.wait_version("node_exporter", &new("node_exporter")));
    h.check_invariants("after the faults");
}

/// Scrapes in a loop; counts failed scrapes and refused connections.
struct Poller {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<(u64, u64, u64)>>,
}

impl Poller {
    fn start(port: u16) -> Self {
        use std::io::{Read, Write};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut failed, mut refused, mut ok) = (0, 0, 0);
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                match std::net::TcpStream::connect(("127.0.0.1", port)) {
                    Err(_) => {
                        refused += 1;
                        failed += 1;
                    }
                    Ok(mut c) => {
                        let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                        let _ = c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
                        let mut b = Vec::new();
                        let _ = c.read_to_end(&mut b);
                        if b.starts_with(b"HTTP/1.0 200") || b.starts_with(b"HTTP/1.1 200") {
                            ok += 1;
                        } else {
                            failed += 1;
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            (failed, refused, ok)
        });
        Poller {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> (u64, u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}

#[test]
fn downtime_of_a_switch_and_socket_activation() {
    if !e2e::available("downtime_of_a_switch_and_socket_activation") {
        return;
    }
    let h = Host::boot(
        &ALL,
        &[
            ("alertmanager", "major"),
            ("mysqld_exporter", "major"),
            ("nginx_exporter", "major"),
        ],
        "",
    );
    let sd = h.ns.systemd();
    let rounds = 3;
    let mut lines = Vec::new();
    for c in ALL {
        let port = h.ports[c];
        let unit = catalog::builtin()[c].unit.clone();
        // Baseline: failed scrapes across bare `systemctl restart`s of the same unit.
        let p = Poller::start(port);
        std::thread::sleep(std::time::Duration::from_millis(200));
        for _ in 0..rounds {
            // As our backend does: a deliberate restart is not a crash loop.
            sd.reset_start_limit(&unit);
            sd.systemctl("restart", &unit, &["restart", &unit]).unwrap();
            assert!(h.wait_version(c, &old(c)), "{c} back after a bare restart");
        }
        let (bare_failed, bare_refused, _) = p.finish();
        // Ours: as many switches through obs-upgrade (upgrade, rollback, upgrade).
        let p = Poller::start(port);
        std::thread::sleep(std::time::Duration::from_millis(200));
        for i in 0..rounds {
            let args: Vec<&str> = if i % 2 == 0 {
                vec!["apply", "--ignore-holds", "--component", c]
            } else {
                vec!["rollback", "--component", c, "--previous"]
            };
            let o = h.obs(&args);
            assert_eq!(o.status.code(), Some(0), "{c}: {}", out(&o));
        }
        let (ours_failed, ours_refused, ok) = p.finish();
        assert!(ok > 10, "{c}: the poller scraped: {ok}");
        let line = format!(
            concat!(
                "DOWNTIME {c}: {rounds} switches through obs-upgrade: {ours_failed} failed ",
                "scrapes ({ours_refused} refused); {rounds} bare systemctl restarts: ",
                "{bare_failed} failed ({bare_refused} refused); ratio {ratio:.2}"
            ),
            c = c,
            rounds = rounds,
            ours_failed = ours_failed,
            ours_refused = ours_refused,
            bare_failed = bare_failed,
            bare_refused = bare_refused,
            ratio = (ours_failed as f64 + 1.0) / (bare_failed as f64 + 1.0)
        );
        eprintln!("{line}");
        lines.push(line);
    }
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-downtime.txt"),
        lines.join("\n") + "\n",
    )
    .unwrap();

    // Socket activation: the socket keeps listening through the switch.
    let sport = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = h.ports["node_exporter"];
    let bin = format!("{}/usr/local/bin/node_exporter", e2e::ROOT);
    sd.systemctl(
        "stop",
        "node_exporter.service",
        &["stop", "node_exporter.service"],
    )
    .unwrap();
    sd.install_unit(
        "node_exporter.socket",
        &format!(
            "[Socket]\nListenStream=127.0.0.1:{sport}\n\n[Install]\nWantedBy=sockets.target\n"
        ),
    )
    .unwrap();
    let unit = format!(
        concat!(
            "[Unit]\nRequires=node_exporter.socket\n\n[Service]\n",
            "ExecStart={bin} --web.systemd-socket --no-collector.systemd\n"
        ),
        bin = bin
    );
    sd.install_unit("node_exporter.service", &unit).unwrap();
    sd.systemctl(
        "start",
        "node_exporter.socket",
        &["start", "node_exporter.socket"],
    )
    .unwrap();
    sd.systemctl(
        "start",
        "node_exporter.service",
        &["start", "node_exporter.service"],
    )
    .unwrap();
    // The stack's port follows the socket.
    let stack = h.root("etc/obs-upgrade/stack.yaml");
    let text = std::fs::read_to_string(&stack)
        .unwrap()
        .replace(&format!("port: {port}"), &format!("port: {sport}"));
    std::fs::write(&stack, text).unwrap();
    let p = Poller::start(sport);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let o = h.obs(&["rollback", "--component", "node_exporter", "--previous"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = h.obs(&["apply", "--ignore-holds", "--component", "node_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let (failed, refused, ok) = p.finish();
    eprintln!(
        concat!(
            "DOWNTIME node_exporter with socket activation: 2 switches: {refused} refused ",
            "connections, {failed} failed scrapes, {ok} ok"
        ),
        refused = refused,
        failed = failed,
        ok = ok
    );
    assert_eq!(refused, 0, "no connection refused with socket activation");
    assert!(ok > 20);
}

/// Publishes a `node_exporter` release built from the sandbox exporter
/// (`+broken` in the version: it starts, but every scrape fails).
fn publish_node(h: &Host, version: &str) {
    let exporter = std::fs::read(obs_upgrade_tests::bin("sandbox-exporter")).unwrap();
    h.publish_node_binary(
        version,
        &obs_upgrade_tests::sandbox::patched(&exporter, version),
    );
}

fn v(s: &str) -> upgrade_core::version::Version {
    upgrade_core::version::Version::parse(s).unwrap()
}

/// Starts `obs-upgrade apply --unattended` as a transient service of the
/// namespace's systemd (as its timer would), and waits for the verify step.
fn apply_as_a_service(h: &Host, unit: &str) {
    let obs = h.obs.display().to_string();
    let started = std::process::Command::new("nsenter")
        .args([
            "-t",
            &h.ns.pid.to_string(),
            "-a",
            "systemd-run",
            "--unit",
            unit,
        ])
        .args(["--service-type=exec", "--property=TimeoutStopSec=300"])
        .arg("--property=KillMode=mixed")
        .args(["--setenv=NO_COLOR=1", &obs, "--root", e2e::ROOT])
        .args([
            "--unit-dir",
            "/run/systemd/system",
            "--service-manager",
            "systemd",
        ])
        .args(["apply", "--unattended"])
        .status()
        .unwrap();
    assert!(started.success(), "systemd-run {unit}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let verifying = || {
        h.state().is_some_and(|r| {
            r.components.values().any(|c| {
                c.status
                    == ComponentStatus::InProgress {
                        step: upgrade_core::journal::TxStep::Verify,
                    }
            })
        })
    };
    while !verifying() {
        assert!(
            std::time::Instant::now() < deadline,
            "{unit} never reached verify"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn unattended_failure_memory_holds_signals_and_recovery_on_systemd() {
    if !e2e::available("unattended_failure_memory_holds_signals_and_recovery_on_systemd") {
        return;
    }
    // Only patch releases of the installed line (low risk: an unattended
    // run applies them), so trixie's 1.9.0 is withdrawn.
    let h = Host::boot(&["node_exporter"], &[("node_exporter", "patch")], "");
    h.server
        .state()
        .github
        .get_mut("prometheus/node_exporter")
        .unwrap()
        .retain(|r| !r.tag.starts_with("v1.9"));
    let ctx = |what: &str, o: &Output| format!("{what}: {}", out(o));
    // 1. A failing patch release, applied unattended twice: switched once,
    // untouched the second time; a newer good release is still planned.
    publish_node(&h, "1.5.1+broken");
    let o = h.obs(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(1), "{}", ctx("first", &o));
    assert!(h.wait_version("node_exporter", &old("node_exporter")));
    let pid = h.main_pid("node_exporter");
    let downloads = h.server.seen("/dl/").len();
    let o = h.obs(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", ctx("second", &o));
    assert_eq!(
        h.main_pid("node_exporter"),
        pid,
        "untouched the second time"
    );
    assert_eq!(h.server.seen("/dl/").len(), downloads, "nothing downloaded");
    publish_node(&h, "1.5.2");
    let o = h.obs(&["plan"]);
    let plan = out(&o);
    assert!(plan.contains("1.5.0 → 1.5.2"), "{plan}");
    let o = h.obs(&["quarantine", "list"]);
    assert!(out(&o).contains("1.5.1+broken"), "{}", out(&o));
    let o = h.obs(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", ctx("good", &o));
    assert!(h.wait_version("node_exporter", &v("1.5.2")));

    // 2. A manual rollback (never to the failed release), then an unattended
    // run: nothing moves.
    let o = h.obs(&["rollback", "--component", "node_exporter", "--previous"]);
    assert_eq!(o.status.code(), Some(0), "{}", ctx("rollback", &o));
    assert!(h.wait_version("node_exporter", &old("node_exporter")));
    let pid = h.main_pid("node_exporter");
    let o = h.obs(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", ctx("held", &o));
    assert_eq!(
        h.main_pid("node_exporter"),
        pid,
        "a held component is not moved"
    );

    // 3. `systemctl stop` of the apply service while a failing release is
    // being verified: when the stop returns, the old version is live and
    // healthy; the next unattended run ends cleanly.
    let o = h.obs(&["hold", "release", "node_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{}", ctx("release", &o));
    publish_node(&h, "1.5.3+broken");
    apply_as_a_service(&h, "obs-apply-stop");
    let sd = h.ns.systemd();
    sd.systemctl("stop", "obs-apply-stop", &["stop", "obs-apply-stop"])
        .unwrap();
    assert!(
        h.running_version("node_exporter")
            .is_some_and(|r| r.same_release(&old("node_exporter"))),
        "the old version serves when the stop returns"
    );
    assert!(sd.show("node_exporter.service").unwrap().is_running());
    let o = h.obs(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", ctx("after the stop", &o));
    assert!(
        h.wait_version("node_exporter", &v("1.5.2")),
        "1.5.2, not 1.5.3+broken"
    );

    // 4. SIGKILL during verify: the next unattended run finishes the rollback.
    publish_node(&h, "1.5.4+broken");
    apply_as_a_service(&h, "obs-apply-kill");
    sd.systemctl(
        "kill",
        "obs-apply-kill",
        &["kill", "--signal=SIGKILL", "obs-apply-kill"],
    )
    .unwrap();
    let o = h.obs(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", ctx("after the kill", &o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("finished the interrupted run"));
    assert!(h.wait_version("node_exporter", &v("1.5.2")));
    assert!(sd.show("node_exporter.service").unwrap().is_running());

    // 5. Releases that cannot be listed: never "up to date".
    h.server.state().faults.api_500 = 1000;
    std::fs::remove_dir_all(h.root("var/cache/obs-upgrade/api")).ok();
    for args in [&["check"][..], &["check", "--exit-code"], &["plan"]] {
        let o = h.obs(args);
        assert_eq!(o.status.code(), Some(1), "{}", ctx(&args.join(" "), &o));
    }
}

#[test]
fn a_unit_whose_stop_hangs_is_given_up_at_the_deadline() {
    if !e2e::available("a_unit_whose_stop_hangs_is_given_up_at_the_deadline") {
        return;
    }
    let h = Host::boot(&["node_exporter"], &[], "deadlines:\n  systemctl_secs: 5\n");
    // An operator's drop-in whose ExecStop never returns (for 10 minutes).
    let dropins = h.ns.unit_dir().join("node_exporter.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        dropins.join("hang.conf"),
        "[Service]\nExecStop=/bin/sleep 600\nTimeoutStopSec=600\n",
    )
    .unwrap();
    let sd = h.ns.systemd();
    sd.daemon_reload().unwrap();
    let t = std::time::Instant::now();
    let o = h.obs(&["apply", "--yes"]);
    let took = t.elapsed();
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("did not return within 5 s"), "{text}");
    assert!(text.contains("node_exporter.service"), "{text}");
    // Switch and rollback each give up after 5 s, far from the unit's 600.
    assert!(took < std::time::Duration::from_secs(90), "{took:?}");
    // The journal says what happened; nothing is left half-done to resume.
    let status = out(&h.obs(&["status"]));
    assert!(!status.contains("interrupted"), "{status}");
}

/// Upstream publishes `node_exporter` 1.9.9: it starts, but every scrape fails.
fn publish_broken_node(h: &Host) {
    let exporter = std::fs::read(
        std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("sandbox-exporter"),
    )
    .unwrap();
    let bad = obs_upgrade_tests::sandbox::patched(&exporter, "1.9.9+broken");
    let (name, tgz) = obs_upgrade_tests::archives::promu(
        "node_exporter",
        "1.9.9+broken",
        "amd64",
        &[("node_exporter", &bad)],
    );
    let sums = obs_upgrade_tests::archives::checksums(&[(&name, &tgz)]);
    h.server
        .state()
        .github
        .get_mut("prometheus/node_exporter")
        .unwrap()
        .insert(
            0,
            obs_upgrade_tests::release_server::FakeRelease::new(
                "v1.9.9+broken",
                "2025-09-01T00:00:00Z",
                vec![
                    obs_upgrade_tests::release_server::FakeAsset {
                        name,
                        data: std::sync::Arc::new(tgz),
                        with_digest: true,
                    },
                    obs_upgrade_tests::release_server::FakeAsset {
                        name: "sha256sums.txt".into(),
                        data: std::sync::Arc::new(sums),
                        with_digest: false,
                    },
                ],
            ),
        );
}

/// A service that runs as its own unprivileged user (as the
/// prometheus-community roles set them up) keeps working when obs-upgrade
/// runs under umask 077: the store and binaries are 0755 whatever the
/// umask, an automatic rollback leaves its config (owned by that user,
/// 0600) readable to it, and a manual rollback to the older release in the
/// same store starts too.
#[test]
fn an_unprivileged_service_survives_upgrade_and_rollbacks_under_umask_077() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let test = "an_unprivileged_service_survives_upgrade_and_rollbacks_under_umask_077";
    if !e2e::available(test) {
        return;
    }
    let h = Host::boot(
        &["node_exporter"],
        &[],
        "    config_path: /etc/node_exporter/web.yml\n",
    );
    // The service's own web config, readable by the service user only.
    let web = h.root("etc/node_exporter/web.yml");
    std::fs::create_dir_all(web.parent().unwrap()).unwrap();
    std::fs::write(&web, "# plain http, no users\n").unwrap();
    std::os::unix::fs::chown(&web, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&web, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = h.ports["node_exporter"];
    let dropins = h.ns.unit_dir().join("node_exporter.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        dropins.join("user.conf"),
        format!(
            "[Service]\nUser=nobody\nExecStart=\nExecStart={}/usr/local/bin/node_exporter \
             --web.listen-address=127.0.0.1:{port} --no-collector.systemd \
             --web.config.file={}/etc/node_exporter/web.yml\n",
            e2e::ROOT,
            e2e::ROOT
        ),
    )
    .unwrap();
    let sd = h.ns.systemd();
    sd.daemon_reload().unwrap();
    sd.systemctl(
        "restart",
        "node_exporter",
        &["restart", "node_exporter.service"],
    )
    .unwrap();
    assert!(h.wait_version("node_exporter", &old("node_exporter")));
    assert_eq!(h.service_user("node_exporter").as_deref(), Some("nobody"));

    // The upgrade, by a run under umask 077.
    let o = h.obs_umask("077", &["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(h.wait_version("node_exporter", &new("node_exporter")));
    assert_eq!(h.service_user("node_exporter").as_deref(), Some("nobody"));
    let store = h.root("opt/obs-upgrade/node_exporter");
    for p in [
        h.root("opt/obs-upgrade"),
        store.clone(),
        store.join(new("node_exporter").to_string()),
        store.join(format!("{}/node_exporter", new("node_exporter"))),
    ] {
        let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o755, "{}", p.display());
    }

    // A broken release: the automatic rollback restores the config as it
    // was (still the service user's) and the service starts again.
    publish_broken_node(&h);
    // As if the API cache's 15 minutes had passed.
    std::fs::remove_dir_all(h.root("var/cache/obs-upgrade/api")).unwrap();
    let o = h.obs_umask("077", &["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("rolled back"),
        "{}",
        out(&o)
    );
    assert!(h.wait_version("node_exporter", &new("node_exporter")));
    assert_eq!(h.service_user("node_exporter").as_deref(), Some("nobody"));
    let meta = std::fs::metadata(&web).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (65534, 65534, 0o600)
    );

    // A manual rollback to the older release in the same store.
    let o = h.obs_umask(
        "077",
        &["rollback", "--component", "node_exporter", "--previous"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(h.wait_version("node_exporter", &old("node_exporter")));
    assert_eq!(h.service_user("node_exporter").as_deref(), Some("nobody"));
    h.check_invariants("after the rollbacks");
}

#[test]
fn the_hardened_apply_timer_upgrades_a_component() {
    let test = "the_hardened_apply_timer_upgrades_a_component";
    if !e2e::available(test) {
        return;
    }
    // A window open now (UTC), and unattended runs allowed medium risk.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let at = |hours: i64| {
        let t = now.checked_add(jiff::Span::new().hours(hours)).unwrap();
        format!("{:02}:{:02}", t.hour(), t.minute())
    };
    let extra = format!(
        "maintenance:\n  auto_approve: high\n  windows:\n    - {{start: '{}', end: '{}'}}\n",
        at(-1),
        at(2)
    );
    let h = Host::boot(&["node_exporter"], &[("node_exporter", "minor")], &extra);
    let pid = h.main_pid("node_exporter");
    let o = h.obs(&["timer", "install", "--no-enable"]);
    assert!(o.status.success(), "{}", out(&o));
    // The test fires the unmodified units now: the timer's calendar is
    // replaced by "a second after it starts".
    let dropin = "/run/systemd/system/obs-upgrade-apply.timer.d";
    let fire_now = format!(
        "mkdir -p {dropin} && printf '[Timer]\\nOnCalendar=\\nOnActiveSec=1s\\n\
         RandomizedDelaySec=0\\nAccuracySec=1s\\n' > {dropin}/now.conf && \
         systemctl daemon-reload && systemctl start obs-upgrade-apply.timer"
    );
    h.ns.run(&["sh", "-c", &fire_now]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let show = |prop: &str| {
        h.ns.run(&[
            "systemctl",
            "show",
            "-p",
            prop,
            "--value",
            "obs-upgrade-apply.service",
        ])
        .trim()
        .to_owned()
    };
    let journal = || {
        h.ns.run(&[
            "journalctl",
            "-u",
            "obs-upgrade-apply.service",
            "--no-pager",
        ])
    };
    loop {
        let ran =
            show("ExecMainExitTimestampMonotonic") != "0" && show("ActiveState") == "inactive";
        if ran {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the apply timer did not run the service:\n{}",
            journal()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(show("Result"), "success", "{}", journal());
    assert_eq!(show("ProtectSystem"), "strict");
    assert!(
        h.wait_version("node_exporter", &new("node_exporter")),
        "{}",
        journal()
    );
    assert_eq!(h.current("node_exporter"), Some(new("node_exporter")));
    assert_ne!(
        h.main_pid("node_exporter"),
        pid,
        "restarted on the new release"
    );
    let metrics =
        std::fs::read_to_string(h.root("var/lib/prometheus/node-exporter/obs_upgrade.prom"))
            .unwrap_or_default();
    assert!(
        metrics.contains("obs_upgrade_last_success_timestamp_seconds"),
        "ExecStopPost wrote the metrics file: {metrics}"
    );
    h.check_invariants("after the timer-started run");
}
