//! Helper process for the upgrade-state tests.
//!
//! - `lock-hold LOCK HOLD_MS LOG [WAIT_MS]`: take the lock (waiting up to
//!   `WAIT_MS`, or fail fast), append `acquire <pid> <ns>` / `release <pid> <ns>`
//!   lines to LOG around a hold of `HOLD_MS` (0: hold until killed). When
//!   refused, print the holder as JSON and exit 3.
//! - `state-writer DIR WRITER COMPONENTS`: save sample runs 0, 1, 2, … forever.
//! - `history-writer DIR WRITER`: append history records 0, 1, 2, … forever.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use upgrade_core::journal::{HistoryRecord, Outcome};
use upgrade_state::lock::Error as LockError;
use upgrade_state::{History, HolderInfo, RunLock, StateStore};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

fn log_line(log: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("write log");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("lock-hold") => {
            let lock = RunLock::new(&args[1]);
            let hold: u64 = args[2].parse().expect("hold ms");
            let log = Path::new(&args[3]);
            let me = HolderInfo::current();
            let acquired = match args.get(4) {
                Some(wait) => {
                    lock.acquire_timeout(&me, Duration::from_millis(wait.parse().expect("wait ms")))
                }
                None => lock.try_acquire(&me),
            };
            match acquired {
                Ok(guard) => {
                    log_line(log, &format!("acquire {} {}", me.pid, now_ns()));
                    if hold == 0 {
                        loop {
                            std::thread::sleep(Duration::from_secs(3600));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(hold));
                    log_line(log, &format!("release {} {}", me.pid, now_ns()));
                    drop(guard);
                    ExitCode::SUCCESS
                }
                Err(LockError::Held { holder, .. } | LockError::Timeout { holder, .. }) => {
                    println!("{}", serde_json::to_string(&holder).expect("encode"));
                    ExitCode::from(3)
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Some("state-writer") => {
            let store = StateStore::open(Path::new(&args[1])).expect("open store");
            let writer: u32 = args[2].parse().expect("writer");
            let components: usize = args[3].parse().expect("components");
            for i in 0.. {
                store
                    .save(&obs_upgrade_tests::sample_run(writer, i, components))
                    .expect("save");
            }
            ExitCode::SUCCESS
        }
        Some("history-writer") => {
            let history = History::open(Path::new(&args[1])).expect("open history");
            let writer: u32 = args[2].parse().expect("writer");
            let t = jiff::Timestamp::now();
            for i in 0u64.. {
                let rec = HistoryRecord::Component {
                    run_id: format!("w{writer}-{i}"),
                    component: "node_exporter".into(),
                    from: None,
                    to: None,
                    outcome: Outcome::Upgraded,
                    started_at: t,
                    finished_at: t,
                    error: Some("x".repeat(512)),
                };
                history.append(&rec).expect("append");
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: state-helper lock-hold|state-writer|history-writer …");
            ExitCode::from(2)
        }
    }
}
