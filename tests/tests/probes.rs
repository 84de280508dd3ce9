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
        version: v.into(),
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
