//! The systemd backend on a real systemd booted in a PID + mount namespace,
//! with Debian's `node_exporter`: install → start → probes pass → stop →
//! probes fail within the deadline → restart → socket-activated restart with
//! a poller counting refused connections → unit backup and restore.
//!
//! Needs root. Without root it says plainly that it was skipped; in CI
//! (`CI=true`) a missing prerequisite is a failure.
#![allow(clippy::print_stderr, clippy::many_single_char_names)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use obs_upgrade_tests::{fixtures, nsd};
use upgrade_core::catalog::RestartStrategy;
use upgrade_core::ports::ServiceControl;
use upgrade_systemd::probes::{self, Check, Probe};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn probes_for(port: u16, unit: &str, version: &str) -> Vec<Probe> {
    let quick = |check| Probe {
        check,
        timeout: Duration::from_millis(500),
        interval: Duration::from_millis(100),
        retries: u32::MAX,
        decides: true,
        access: probes::Access::default(),
    };
    vec![
        quick(Check::UnitActive {
            unit: unit.into(),
            n_restarts: 0,
        }),
        quick(Check::Http {
            url: format!("http://127.0.0.1:{port}/metrics"),
            body: None,
        }),
        quick(Check::BuildInfo {
            url: format!("http://127.0.0.1:{port}/metrics"),
            metric: "node_exporter_build_info".into(),
            aliases: Vec::new(),
            label: "version".into(),
            version: version.into(),
            optional: false,
        }),
    ]
}

/// Scrapes in a loop; counts refused connections and failed scrapes.
struct Poller {
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    ok: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    fn start(port: u16) -> Self {
        let (stop, refused, failed, ok) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, r, f, o) = (stop.clone(), refused.clone(), failed.clone(), ok.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match TcpStream::connect(("127.0.0.1", port)) {
                    Err(_) => {
                        r.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(mut c) => {
                        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let _ = c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
                        let mut buf = Vec::new();
                        let _ = c.read_to_end(&mut buf);
                        if buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200") {
                            o.fetch_add(1, Ordering::SeqCst);
                        } else {
                            f.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Poller {
            stop,
            refused,
            failed,
            ok,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap();
        (
            self.refused.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            self.ok.load(Ordering::SeqCst),
        )
    }
}

#[test]
fn node_exporter_on_a_real_systemd() {
    if let Some(why) = nsd::unavailable() {
        assert!(!nsd::in_ci(), "namespace systemd unavailable in CI: {why}");
        eprintln!("SKIPPED node_exporter_on_a_real_systemd: {why}");
        return;
    }
    let Some(bin) = fixtures::require(
        "bookworm",
        "prometheus-node-exporter",
        "prometheus-node-exporter",
        "node_exporter_on_a_real_systemd",
    ) else {
        return;
    };
    let ns = nsd::NsSystemd::boot();
    let bin = ns.stage_file(&bin);
    let sd = ns.systemd();
    let port = free_port();
    let unit = "node_exporter.service";
    let contents = format!(
        concat!(
            "[Unit]\nDescription=node_exporter\n[Service]\nExecStart={} ",
            "--web.listen-address=127.0.0.1:{port} --no-collector.systemd\nRestart=on-failure\n"
        ),
        bin.display(),
        port = port
    );

    // Install → start → probes pass.
    sd.install_unit(unit, &contents).unwrap();
    sd.start(unit).unwrap();
    let r = probes::run(
        &probes_for(port, unit, "1.5.0"),
        Duration::from_secs(20),
        Some(&sd),
    );
    assert!(r.healthy, "{r:?}");
    let st = sd.status(unit).unwrap();
    assert!(
        st.is_running()
            && st.main_pid.is_some()
            && st.started_monotonic_us > 0
            && !st.socket_activated()
    );
    assert_eq!(
        st.fragment_path.as_deref(),
        Some("/run/systemd/system/node_exporter.service")
    );
    // A wrong target version fails the build-info probe.
    let r = probes::run(
        &probes_for(port, unit, "1.9.0")[2..],
        Duration::from_millis(500),
        Some(&sd),
    );
    assert!(
        !r.healthy && r.results[0].detail.contains("expected 1.9.0"),
        "{r:?}"
    );

    // Stop → probes fail within the deadline.
    sd.stop(unit).unwrap();
    let t = Instant::now();
    let r = probes::run(
        &probes_for(port, unit, "1.5.0"),
        Duration::from_secs(1),
        Some(&sd),
    );
    assert!(!r.healthy);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(r.results[0].detail.contains("inactive"), "{r:?}");

    // Restart: a new main process, healthy again.
    sd.start(unit).unwrap();
    let before = sd.status(unit).unwrap().main_pid;
    sd.restart(unit).unwrap();
    let after = sd.status(unit).unwrap().main_pid;
    assert_ne!(before, after);
    assert!(
        probes::run(
            &probes_for(port, unit, "1.5.0"),
            Duration::from_secs(20),
            Some(&sd)
        )
        .healthy
    );

    // Errors carry the unit and systemctl's own words.
    let e = sd.start("no-such-thing.service").unwrap_err().to_string();
    assert!(
        e.contains("no-such-thing.service") && e.contains("not found"),
        "{e}"
    );

    // Socket activation: only the service restarts; no connection is refused.
    let sport = free_port();
    sd.install_unit(
        "ne-sock.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{sport}\n[Install]\nWantedBy=sockets.target\n"),
    )
    .unwrap();
    sd.install_unit(
        "ne-sock.service",
        &format!(
            "[Service]\nExecStart={} --web.systemd-socket --no-collector.systemd\n",
            bin.display()
        ),
    )
    .unwrap();
    sd.start("ne-sock.socket").unwrap();
    sd.start("ne-sock.service").unwrap();
    assert!(
        probes::run(
            &probes_for(sport, "ne-sock.service", "1.5.0"),
            Duration::from_secs(20),
            Some(&sd)
        )
        .healthy
    );
    let status = sd.status("ne-sock.service").unwrap();
    assert!(status.socket_activated(), "{status:?}");
    // `restart` on a socket-activated unit restarts only the service.
    let strategy = RestartStrategy::Restart;
    let poller = Poller::start(sport);
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        strategy
            .apply(&sd, "ne-sock.service", &mut || Ok(()))
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let (refused, failed, ok) = poller.finish();
    eprintln!("socket-activated restarts: {refused} refused, {failed} failed, {ok} ok scrapes");
    assert_eq!(refused, 0, "no refused connection with socket activation");
    assert!(ok > 10, "the poller scraped: {ok}");

    // `stop-start`: the swap happens while the service is stopped.
    let mut state_at_swap = String::new();
    let pid_before = sd.status(unit).unwrap().main_pid;
    RestartStrategy::StopStart
        .apply(&sd, unit, &mut || {
            state_at_swap = sd.status(unit)?.active_state;
            Ok(())
        })
        .unwrap();
    assert_eq!(state_at_swap, "inactive");
    let after = sd.status(unit).unwrap();
    assert!(
        after.is_running() && after.main_pid != pid_before,
        "{after:?}"
    );

    // Unit backup and restore.
    let backup = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("unit-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&backup);
    assert!(sd.backup_unit(unit, &backup).unwrap());
    sd.install_unit(unit, "[Service]\nExecStart=/bin/false\n")
        .unwrap();
    sd.restore_unit(unit, &backup).unwrap();
    assert_eq!(
        std::fs::read_to_string(sd.unit_dir().join(unit)).unwrap(),
        contents
    );
    sd.restart(unit).unwrap();
    assert!(
        probes::run(
            &probes_for(port, unit, "1.5.0"),
            Duration::from_secs(20),
            Some(&sd)
        )
        .healthy
    );
    assert!(!sd.backup_unit("absent.service", &backup).unwrap());
    let _ = std::fs::remove_dir_all(&backup);
}
