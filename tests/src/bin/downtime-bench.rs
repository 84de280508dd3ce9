//! How long `node_exporter` is unreachable during a restart through
//! upgrade-systemd's backend, beside a bare `systemctl restart` in the same
//! namespace systemd, and the refused connections with socket activation.
//! Run by `scripts/bench-downtime` (root).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::needless_pass_by_value
)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use obs_upgrade_tests::{fixtures, nsd};
use upgrade_core::catalog::RestartStrategy;
use upgrade_core::ports::ServiceControl;

/// Scrapes continuously; records (time, ok, refused) per attempt.
fn poll(port: u16, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<(Instant, bool, bool)>>>) {
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        let (ok, refused) = match TcpStream::connect(("127.0.0.1", port)) {
            Err(_) => (false, true),
            Ok(mut c) => {
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
                let mut b = Vec::new();
                let _ = c.read_to_end(&mut b);
                (
                    b.starts_with(b"HTTP/1.0 200") || b.starts_with(b"HTTP/1.1 200"),
                    false,
                )
            }
        };
        log.lock().unwrap().push((t, ok, refused));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Unreachable time: from each first failure to the next success.
fn unreachable(events: &[(Instant, bool, bool)]) -> (Duration, usize) {
    let mut total = Duration::ZERO;
    let mut down_since: Option<Instant> = None;
    let mut refused = 0;
    for (t, ok, r) in events {
        refused += usize::from(*r);
        match (ok, down_since) {
            (false, None) => down_since = Some(*t),
            (true, Some(s)) => {
                total += *t - s;
                down_since = None;
            }
            _ => {}
        }
    }
    (total, refused)
}

fn measure(port: u16, rounds: usize, restart: &mut dyn FnMut()) -> (Duration, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let h = {
        let (s, l) = (stop.clone(), log.clone());
        std::thread::spawn(move || poll(port, s, l))
    };
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..rounds {
        restart();
        std::thread::sleep(Duration::from_millis(700));
    }
    stop.store(true, Ordering::SeqCst);
    h.join().unwrap();
    let events = log.lock().unwrap().clone();
    unreachable(&events)
}

fn main() {
    if let Some(why) = nsd::unavailable() {
        eprintln!("downtime-bench: {why}");
        std::process::exit(2);
    }
    let Some(bin) = fixtures::binary(
        "bookworm",
        "prometheus-node-exporter",
        "prometheus-node-exporter",
    ) else {
        eprintln!("downtime-bench: run ./scripts/fetch-fixtures first");
        std::process::exit(2);
    };
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let ns = nsd::NsSystemd::boot();
    let bin = ns.stage_file(&bin);
    let sd = ns.systemd();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unit = |exec_args: &str| {
        format!(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart={} {exec_args} \
             --no-collector.systemd\n",
            bin.display()
        )
    };
    sd.install_unit(
        "ne.service",
        &unit(&format!("--web.listen-address=127.0.0.1:{port}")),
    )
    .unwrap();
    sd.start("ne.service").unwrap();
    std::thread::sleep(Duration::from_secs(1));

    let prefix = ns.prefix();
    let (bare, bare_refused) = measure(port, rounds, &mut || {
        let ok = Command::new(&prefix[0])
            .args(&prefix[1..])
            .args(["systemctl", "restart", "ne.service"])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    });
    let (ours, ours_refused) = measure(port, rounds, &mut || {
        RestartStrategy::Restart
            .apply(&sd, "ne.service", &mut || Ok(()))
            .unwrap();
    });

    let sport = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    sd.install_unit(
        "nes.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{sport}\n"),
    )
    .unwrap();
    sd.install_unit("nes.service", &unit("--web.systemd-socket"))
        .unwrap();
    sd.start("nes.socket").unwrap();
    sd.start("nes.service").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let (sock, sock_refused) = measure(sport, rounds, &mut || {
        RestartStrategy::Restart
            .apply(&sd, "nes.service", &mut || Ok(()))
            .unwrap();
    });

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / rounds as f64;
    println!("restarts per case: {rounds}");
    println!(
        concat!(
            "bare systemctl restart      : {:.1} ms unreachable per restart, ",
            "{bare_refused} refused connections"
        ),
        per(bare),
        bare_refused = bare_refused,
    );
    println!(
        concat!(
            "upgrade-systemd restart     : {:.1} ms unreachable per restart, ",
            "{ours_refused} refused connections"
        ),
        per(ours),
        ours_refused = ours_refused,
    );
    println!(
        "ratio ours/bare             : {:.2}",
        ours.as_secs_f64() / bare.as_secs_f64().max(1e-9)
    );
    println!(
        concat!(
            "socket-activated (ours)     : {:.1} ms without a successful scrape per restart, ",
            "{sock_refused} refused connections"
        ),
        per(sock),
        sock_refused = sock_refused,
    );
}
