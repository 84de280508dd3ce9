//! The process supervisor with real child processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use obs_upgrade_tests::fixtures;
use upgrade_core::ports::ServiceControl;
use upgrade_systemd::probes::{self, Check, Probe};
use upgrade_systemd::supervisor::{ProcessSpec, Supervisor};

fn spec(argv: &[&str], stop_timeout_secs: u64) -> ProcessSpec {
    ProcessSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: BTreeMap::new(),
        stop_timeout_secs,
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn start_stop_restart_and_a_process_that_ignores_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new(dir.path());
    sup.define("sleeper", &spec(&["sleep", "1000"], 5)).unwrap();
    let pid = sup.start_service("sleeper").unwrap();
    assert!(alive(pid));
    assert_eq!(
        sup.start_service("sleeper").unwrap(),
        pid,
        "start is a no-op when running"
    );
    let st = sup.status("sleeper").unwrap();
    assert!(st.is_running() && st.main_pid == Some(pid));
    let t = Instant::now();
    sup.stop_service("sleeper").unwrap();
    assert!(
        !alive(pid) && t.elapsed() < Duration::from_secs(2),
        "SIGTERM suffices: {:?}",
        t.elapsed()
    );
    assert!(!sup.status("sleeper").unwrap().is_running());

    // Ignores SIGTERM (the disposition survives exec): SIGKILL after the timeout.
    sup.define(
        "stubborn",
        &spec(&["sh", "-c", "trap '' TERM; exec sleep 1000"], 1),
    )
    .unwrap();
    let pid = sup.start_service("stubborn").unwrap();
    let t = Instant::now();
    sup.stop_service("stubborn").unwrap();
    let took = t.elapsed();
    assert!(!alive(pid), "killed");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "waited the timeout, then SIGKILL: {took:?}"
    );

    let first = sup.start_service("sleeper").unwrap();
    let second = sup.restart_service("sleeper").unwrap();
    assert_ne!(first, second);
    assert!(!alive(first) && alive(second));
    sup.stop_service("sleeper").unwrap();
}

#[test]
fn clear_errors_for_unknown_and_failing_services() {
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new(dir.path());
    let e = sup.start_service("ghost").unwrap_err().to_string();
    assert!(e.contains("no service `ghost`"), "{e}");
    sup.define(
        "broken",
        &spec(&["sh", "-c", "echo cannot bind >&2; exit 1"], 1),
    )
    .unwrap();
    let e = sup.start_service("broken").unwrap_err().to_string();
    assert!(
        e.contains("exited at once") && e.contains("broken.log"),
        "{e}"
    );
    assert!(
        std::fs::read_to_string(sup.log_file("broken"))
            .unwrap()
            .contains("cannot bind")
    );
}

#[test]
fn a_real_node_exporter_under_the_supervisor() {
    let Some(bin) = fixtures::require(
        "bookworm",
        "prometheus-node-exporter",
        "prometheus-node-exporter",
        "a_real_node_exporter_under_the_supervisor",
    ) else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let sup = Supervisor::new(dir.path());
    let listen = format!("--web.listen-address=127.0.0.1:{port}");
    sup.define(
        "node_exporter",
        &spec(
            &[bin.to_str().unwrap(), &listen, "--no-collector.systemd"],
            5,
        ),
    )
    .unwrap();
    sup.start("node_exporter").unwrap();
    let probes = [
        Probe::new(Check::UnitActive {
            unit: "node_exporter".into(),
            n_restarts: 0,
        }),
        Probe::new(Check::BuildInfo {
            url: format!("http://127.0.0.1:{port}/metrics"),
            metric: "node_exporter_build_info".into(),
            aliases: Vec::new(),
            label: "version".into(),
            version: "1.5.0".into(),
            optional: false,
        }),
    ];
    let r = probes::run(&probes, Duration::from_secs(15), Some(&sup));
    assert!(r.healthy, "{r:?}");
    sup.stop("node_exporter").unwrap();
    let r = probes::run(&probes[..1], Duration::from_millis(300), Some(&sup));
    assert!(!r.healthy);
}
