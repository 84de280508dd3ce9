//! Test support shared by the workspace-level tests and their helper programs.
#![allow(clippy::print_stderr)] // skipped tests say so on stderr

pub mod archives;
pub mod e2e;
pub mod fixtures;
pub mod fleet;
pub mod http_stub;
pub mod nsd;
pub mod proxy;
pub mod release_server;
pub mod sandbox;
pub mod sigstore;
pub mod static_server;
pub mod tls;
pub mod tmux;
pub mod world;

use std::collections::BTreeMap;

use jiff::Timestamp;
use upgrade_core::journal::{ComponentRecord, RunRecord, RunStatus, StepEvent, TxStep};
use upgrade_core::version::Version;

/// A binary of this workspace, built beside the running test
/// (`target/<profile>/<name>`; `scripts/test` builds them first) or
/// beside the running helper program (`target/<profile>/fleet-bench`).
pub fn bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    let p = if dir.file_name().is_some_and(|d| d == "deps") {
        dir.parent().expect("target dir").join(name)
    } else {
        dir.join(name)
    };
    assert!(
        p.exists(),
        "{} is not built; run `cargo build --workspace --bins` (scripts/test does)",
        p.display()
    );
    p
}

/// Runs this workspace's `obs-upgrade` on `root` with `args`, without colour
/// and without the caller's `RUST_LOG` or forge tokens, and waits for it.
pub fn obs_upgrade(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin("obs-upgrade"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("OBS_UPGRADE_GITHUB_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("OBS_UPGRADE_GITLAB_TOKEN")
        .env_remove("GITLAB_TOKEN")
        .output()
        .expect("run obs-upgrade")
}

/// A finished command's stdout then stderr, as text.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A deterministic run record for `(writer, i)` with `components` components,
/// so that a reader can rebuild exactly what a writer wrote.
pub fn sample_run(writer: u32, i: u64, components: usize) -> RunRecord {
    let t = Timestamp::from_second(1_800_000_000 + i64::try_from(i).unwrap_or(0))
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let mut comps = BTreeMap::new();
    for c in 0..components {
        let mut rec = ComponentRecord::pending(
            "exporters",
            Version::new(1, u64::try_from(c).unwrap_or(0), 0),
            Version::new(1, u64::try_from(c).unwrap_or(0), i),
        );
        for step in &TxStep::FORWARD[..(usize::try_from(i).unwrap_or(0) + c) % 8] {
            rec.record(*step, StepEvent::Began, t);
            rec.record(
                *step,
                StepEvent::Done {
                    result: format!("ok {i}"),
                },
                t,
            );
        }
        comps.insert(format!("component_{c:03}"), rec);
    }
    RunRecord {
        id: format!("w{writer}-{i}"),
        started_at: t,
        updated_at: t,
        host: "test-host".into(),
        user: "root".into(),
        command: vec!["obs-upgrade".into(), "apply".into()],
        mode: "standard".into(),
        environment: Some("production".into()),
        status: RunStatus::Upgrading,
        phases: vec![],
        components: comps,
        checkpoints: vec![],
        finished_at: None,
    }
}

/// Parses an id written by [`sample_run`].
pub fn parse_sample_id(id: &str) -> Option<(u32, u64)> {
    let (w, i) = id.strip_prefix('w')?.split_once('-')?;
    Some((w.parse().ok()?, i.parse().ok()?))
}
