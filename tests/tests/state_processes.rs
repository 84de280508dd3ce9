//! upgrade-state against real processes: the run lock across processes,
//! SIGKILL of a holder, and state and history writers killed at random.
#![allow(clippy::print_stderr)] // the random seed is printed for reproduction

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use obs_upgrade_tests::{parse_sample_id, sample_run};
use upgrade_state::lock::{HolderInfo, LockState, RunLock};
use upgrade_state::{History, StateStore};

const HELPER: &str = env!("CARGO_BIN_EXE_state-helper");

fn helper(args: &[&str]) -> Command {
    let mut c = Command::new(HELPER);
    c.args(args).stdin(Stdio::null());
    c
}

/// A small xorshift generator: random kill moments without a dependency.
struct Rng(u64);
impl Rng {
    fn seeded() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        eprintln!("rng seed {seed}");
        Rng(u64::try_from(seed & u128::from(u64::MAX)).unwrap() | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn wait_for_line(log: &Path, prefix: &str, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(prefix))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no `{prefix}` line in {} after {timeout:?}", log.display());
}

fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

#[test]
fn contending_processes_hold_the_lock_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    let log = dir.path().join("log");
    let children: Vec<Child> = (0..6)
        .map(|_| {
            helper(&[
                "lock-hold",
                lock.to_str().unwrap(),
                "40",
                log.to_str().unwrap(),
                "20000",
            ])
            .spawn()
            .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let mut spans: Vec<(u32, u128, u128)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (pid, t): (u32, u128) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        match f[0] {
            "acquire" => spans.push((pid, t, 0)),
            "release" => spans.iter_mut().find(|s| s.0 == pid).unwrap().2 = t,
            other => panic!("{other}"),
        }
    }
    assert_eq!(spans.len(), 6, "{text}");
    spans.sort_by_key(|s| s.1);
    for w in spans.windows(2) {
        assert!(w[0].2 > 0 && w[0].2 <= w[1].1, "holders overlap: {w:?}");
    }
}

#[test]
fn refused_processes_name_the_holder_and_sigkill_frees_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("lock");
    let log = dir.path().join("log");
    let (lock_s, log_s) = (lock_path.to_str().unwrap(), log.to_str().unwrap());
    let mut holder = helper(&["lock-hold", lock_s, "0", log_s]).spawn().unwrap();
    wait_for_line(&log, "acquire", Duration::from_secs(10));

    let refused: Vec<Child> = (0..5)
        .map(|_| {
            helper(&["lock-hold", lock_s, "0", log_s])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in refused {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "refused with exit 3");
        let info: Option<HolderInfo> = serde_json::from_slice(&out.stdout).unwrap();
        let info = info.expect("holder details readable");
        assert_eq!(info.pid, holder.id());
        assert!(info.command.iter().any(|a| a == "lock-hold"), "{info:?}");
        assert!(!info.host.is_empty() && !info.user.is_empty());
    }
    let lock = RunLock::new(&lock_path);
    assert!(matches!(lock.probe().unwrap(), LockState::Held(Some(h)) if h.pid == holder.id()));

    kill(&mut holder);
    // No stale-lock guessing: the kernel released it with the dead process.
    let guard = lock
        .try_acquire(&HolderInfo::current())
        .expect("free right after SIGKILL");
    assert_eq!(guard.holder().pid, std::process::id());
}

#[test]
fn state_file_is_never_torn_by_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let mut rng = Rng::seeded();
    let mut seen_writes = 0;
    for k in 0..200u32 {
        let mut child = helper(&["state-writer", dir_s, &k.to_string(), "20"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(500 + rng.below(15_000)));
        kill(&mut child);
        match store
            .load()
            .unwrap_or_else(|e| panic!("iteration {k}: {e}"))
        {
            None => assert_eq!(seen_writes, 0, "the file vanished after iteration {k}"),
            Some(run) => {
                seen_writes += 1;
                let (w, i) = parse_sample_id(&run.id).unwrap();
                assert_eq!(
                    run,
                    sample_run(w, i, 20),
                    "iteration {k}: not a version any writer wrote"
                );
            }
        }
        // The previous copy is a complete version too.
        if store.prev_path().exists() {
            let prev: serde_json::Value =
                serde_json::from_slice(&std::fs::read(store.prev_path()).unwrap()).unwrap();
            let id = prev["run"]["id"].as_str().unwrap();
            let (w, i) = parse_sample_id(id).unwrap();
            assert_eq!(
                serde_json::from_value::<upgrade_core::journal::RunRecord>(prev["run"].clone())
                    .unwrap(),
                sample_run(w, i, 20)
            );
        }
        // What a killed writer leaves behind is cleaned up by the next lock holder.
        store.remove_stale_temp_files().unwrap();
    }
    assert!(
        seen_writes > 150,
        "most writers got to write ({seen_writes}/200)"
    );
}

#[test]
fn history_keeps_reading_after_kills_mid_append() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap();
    let mut rng = Rng::seeded();
    let kills = 40;
    for k in 0..kills {
        let mut child = helper(&["history-writer", dir_s, &k.to_string()])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(1000 + rng.below(10_000)));
        kill(&mut child);
    }
    let history = History::open(dir.path()).unwrap();
    let read = history.read_all().unwrap();
    assert!(
        read.records.len() > usize::try_from(kills).unwrap(),
        "{} records",
        read.records.len()
    );
    assert!(
        read.skipped.len() <= usize::try_from(kills).unwrap(),
        "at most one torn line per kill: {:?}",
        read.skipped
    );
    for r in &read.records {
        assert!(parse_sample_id(r.run_id()).is_some());
    }
    // Appending after all that still works and reads back last.
    let rec = upgrade_core::journal::HistoryRecord::NotificationFailed {
        run_id: "w999-0".into(),
        notifier: "webhook".into(),
        at: jiff::Timestamp::now(),
        error: "refused".into(),
    };
    history.append(&rec).unwrap();
    assert_eq!(history.read_all().unwrap().records.last(), Some(&rec));
}
