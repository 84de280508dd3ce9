//! Health probes against real HTTP endpoints on loopback.

use std::time::{Duration, Instant};

use obs_upgrade_tests::http_stub::{Answer, Stub};
use upgrade_systemd::probes::{self, Check, Probe};

const BUILD_INFO: &str = "# TYPE node_exporter_build_info gauge\nnode_exporter_build_info{branch=\"HEAD\",version=\"1.5.0\"} 1\nnode_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12\n";

fn probe(check: Check, timeout_ms: u64) -> Probe {
    Probe {
        check,
        timeout: Duration::from_millis(timeout_ms),
        interval: Duration::from_millis(50),
        retries: u32::MAX,
        decides: true,
        access: probes::Access::default(),
    }
}

#[test]
fn readiness_503_then_200_passes_after_retries() {
    let s = Stub::start();
    s.on(
        "/ready",
        vec![
            Answer::now(503, "Ingester not ready: waiting for 15s after being ready"),
            Answer::now(503, "not ready"),
            Answer::now(503, "not ready"),
            Answer::now(200, "ready"),
        ],
    );
    let r = probes::run(
        &[probe(
            Check::Http {
                url: s.url("/ready"),
                body: Some("ready".into()),
            },
            500,
        )],
        Duration::from_secs(5),
        None,
    );
    assert!(r.healthy, "{r:?}");
    assert_eq!(r.results[0].attempts, 4);
    assert_eq!(s.hits("/ready"), 4);
}

#[test]
fn slow_answers_hit_the_probe_timeout_but_pass_with_a_longer_one() {
    let s = Stub::start();
    s.on(
        "/-/healthy",
        vec![Answer {
            delay: Duration::from_millis(400),
            status: 200,
            body: "Healthy".into(),
        }],
    );
    let t = Instant::now();
    let r = probes::run(
        &[probe(
            Check::Http {
                url: s.url("/-/healthy"),
                body: None,
            },
            100,
        )],
        Duration::from_millis(700),
        None,
    );
    assert!(!r.healthy, "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the deadline holds: {:?}",
        t.elapsed()
    );
    let r = probes::run(
        &[probe(
            Check::Http {
                url: s.url("/-/healthy"),
                body: None,
            },
            1000,
        )],
        Duration::from_secs(3),
        None,
    );
    assert!(r.healthy, "{r:?}");
}

#[test]
fn build_info_must_report_the_target_version() {
    let s = Stub::start();
    s.on("/metrics", vec![Answer::now(200, BUILD_INFO)]);
    let check = |v: &str| Check::BuildInfo {
        url: s.url("/metrics"),
        metric: "node_exporter_build_info".into(),
        aliases: Vec::new(),
        label: "version".into(),
        version: v.into(),
        optional: false,
    };
    let ok = probes::run(&[probe(check("1.5.0"), 500)], Duration::from_secs(2), None);
    assert!(ok.healthy, "{ok:?}");
    let bad = probes::run(
        &[probe(check("1.9.0"), 500)],
        Duration::from_millis(400),
        None,
    );
    assert!(!bad.healthy);
    assert_eq!(bad.results[0].detail, "running 1.5.0, expected 1.9.0");
    let rec = bad.to_record();
    assert!(
        rec.detail[0].contains("FAILED") && rec.detail[0].contains("expected 1.9.0"),
        "{rec:?}"
    );
}

#[test]
fn metrics_present_tcp_and_command() {
    let s = Stub::start();
    s.on("/metrics", vec![Answer::now(200, BUILD_INFO)]);
    let present = Check::Metrics {
        url: s.url("/metrics"),
        names: vec!["node_cpu_seconds_total".into()],
    };
    let missing = Check::Metrics {
        url: s.url("/metrics"),
        names: vec!["node_memory_MemTotal_bytes".into()],
    };
    let addr = s.url("").trim_start_matches("http://").to_owned();
    let r = probes::run(
        &[
            probe(present, 500),
            probe(Check::Tcp { addr }, 500),
            probe(
                Check::Command {
                    argv: vec!["sh".into(), "-c".into(), "exit 0".into()],
                },
                500,
            ),
        ],
        Duration::from_secs(3),
        None,
    );
    assert!(r.healthy, "{r:?}");
    let r = probes::run(
        &[
            probe(missing, 500),
            probe(
                Check::Command {
                    argv: vec![
                        "sh".into(),
                        "-c".into(),
                        "echo bad config >&2; exit 1".into(),
                    ],
                },
                500,
            ),
        ],
        Duration::from_millis(300),
        None,
    );
    assert!(!r.healthy);
    assert!(r.results[0].detail.contains("node_memory_MemTotal_bytes"));
    assert!(
        r.results[1].detail.contains("exit 1: bad config"),
        "{:?}",
        r.results[1]
    );
    // Refused connections fail fast, within the deadline.
    let t = Instant::now();
    let r = probes::run(
        &[probe(
            Check::Tcp {
                addr: "127.0.0.1:1".into(),
            },
            200,
        )],
        Duration::from_millis(500),
        None,
    );
    assert!(!r.healthy && t.elapsed() < Duration::from_secs(2));
}

/// The fail2ban exporter's shape: the version is the `exporter` label of
/// `f2b_version`, and `/health` reflects fail2ban itself, so it is advisory.
#[test]
fn another_version_label_and_an_advisory_endpoint() {
    let s = Stub::start();
    s.on(
        "/metrics",
        vec![Answer::now(
            200,
            "f2b_up 1\nf2b_version{exporter=\"0.10.1\",fail2ban=\"1.0.2\"} 1\n",
        )],
    );
    s.on("/health", vec![Answer::now(503, "{\"healthy\":false}")]);
    let version = |v: &str| Check::BuildInfo {
        url: s.url("/metrics"),
        metric: "f2b_version".into(),
        aliases: Vec::new(),
        label: "exporter".into(),
        version: v.into(),
        optional: false,
    };
    let health = Probe::advisory(Check::Http {
        url: s.url("/health"),
        body: None,
    });
    let r = probes::run(
        &[probe(version("0.10.1"), 500), health.clone()],
        Duration::from_secs(2),
        None,
    );
    assert!(r.healthy, "an advisory failure does not decide: {r:?}");
    assert!(!r.results[1].ok && !r.results[1].decides);
    assert_eq!(r.results[1].attempts, 1, "advisory probes are tried once");
    let rec = r.to_record();
    assert!(
        rec.detail[1].contains("(advisory)") && rec.detail[1].contains("not deciding"),
        "{rec:?}"
    );
    // The other label is read: 1.0.2 is fail2ban's version, not the exporter's.
    let r = probes::run(
        &[probe(version("1.0.2"), 500)],
        Duration::from_millis(300),
        None,
    );
    assert!(!r.healthy);
    assert_eq!(r.results[0].detail, "running 0.10.1, expected 1.0.2");
    // fail2ban down: no f2b_version at all, which an optional check allows.
    s.on("/metrics", vec![Answer::now(200, "f2b_up 0\n")]);
    let absent = |optional| Check::BuildInfo {
        url: s.url("/metrics"),
        metric: "f2b_version".into(),
        aliases: Vec::new(),
        label: "exporter".into(),
        version: "0.10.1".into(),
        optional,
    };
    let r = probes::run(&[probe(absent(true), 500)], Duration::from_secs(1), None);
    assert!(r.healthy, "{r:?}");
    let r = probes::run(
        &[probe(absent(false), 500)],
        Duration::from_millis(300),
        None,
    );
    assert!(!r.healthy, "{r:?}");
}

/// The main process's executable is compared with the release's binary by
/// identity: another release from the store fails, a program from outside
/// the store (a wrapper) is reported but not judged.
#[test]
fn the_running_binary_must_be_the_release() {
    use upgrade_systemd::supervisor::{ProcessSpec, Supervisor};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store/comp");
    let sleep = which("sleep");
    for v in ["1.0.0", "2.0.0"] {
        std::fs::create_dir_all(store.join(v)).unwrap();
        std::fs::copy(&sleep, store.join(v).join("comp")).unwrap();
    }
    let sup = Supervisor::new(dir.path().join("sup"));
    let define = |unit: &str, prog: &std::path::Path| {
        sup.define(
            unit,
            &ProcessSpec {
                argv: vec![prog.display().to_string(), "30".into()],
                env: std::collections::BTreeMap::new(),
                stop_timeout_secs: 2,
            },
        )
        .unwrap();
        sup.start_service(unit).unwrap();
    };
    define("old.service", &store.join("1.0.0/comp"));
    define("wrapped.service", &sleep);
    let check = |unit: &str| {
        probe(
            Check::RunningBinary {
                unit: unit.into(),
                expected: store.join("2.0.0/comp"),
                store: store.clone(),
            },
            500,
        )
    };
    let r = probes::run(
        &[check("old.service")],
        Duration::from_millis(300),
        Some(&sup),
    );
    assert!(!r.healthy, "{r:?}");
    assert!(
        r.results[0]
            .detail
            .contains("did not pick up the new release"),
        "{r:?}"
    );
    let r = probes::run(
        &[check("wrapped.service")],
        Duration::from_secs(1),
        Some(&sup),
    );
    assert!(
        r.healthy && r.results[0].detail.contains("not judged"),
        "{r:?}"
    );
    sup.stop_service("old.service").unwrap();
    define("new.service", &store.join("2.0.0/comp"));
    let r = probes::run(&[check("new.service")], Duration::from_secs(1), Some(&sup));
    assert!(r.healthy, "{r:?}");
    for u in ["wrapped.service", "new.service"] {
        sup.stop_service(u).unwrap();
    }
}

fn which(prog: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{prog} on PATH"))
}
