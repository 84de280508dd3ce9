//! State save (atomic, with fsync) and run-lock acquire/release, each beside
//! a baseline run in the same process:
//! - save: our atomic replace (temp, fsync, link prev, rename, fsync dir) vs a
//!   plain `File::create` + `write_all` + `sync_all` of the same bytes;
//! - lock: our acquire (open, flock, write holder details) + release vs a bare
//!   flock/unlock on an already-open file.
//!
//! The state file size for 200 components is printed first.
//!
//! `cargo bench -p upgrade-state --bench state`

use std::fs::File;
use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, criterion_group, criterion_main};
use upgrade_state::{HolderInfo, RunLock, StateStore};

#[allow(clippy::print_stderr, clippy::cast_precision_loss)]
fn bench(c: &mut Criterion) {
    let dir =
        tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))
            .unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let run = obs_sample::run_with(200);
    store.save(&run).unwrap();
    let size = std::fs::metadata(store.path()).unwrap().len();
    eprintln!(
        "state file for 200 components: {size} bytes ({:.1} KiB)",
        size as f64 / 1024.0
    );
    let bytes = std::fs::read(store.path()).unwrap();

    let mut g = c.benchmark_group("state_save_200");
    g.bench_function("baseline_write_fsync", |b| {
        let p = dir.path().join("plain.json");
        b.iter(|| {
            let mut f = File::create(&p).unwrap();
            f.write_all(black_box(&bytes)).unwrap();
            f.sync_all().unwrap();
        });
    });
    g.bench_function("atomic_save", |b| {
        b.iter(|| store.save(black_box(&run)).unwrap());
    });
    g.finish();

    let mut g = c.benchmark_group("lock");
    g.bench_function("baseline_flock_unlock", |b| {
        let mut l = fd_lock_bare(dir.path().join("bare.lock"));
        b.iter(|| drop(black_box(l.try_write().unwrap())));
    });
    let lock = RunLock::new(dir.path().join("lock"));
    let me = HolderInfo::current();
    g.bench_function("acquire_release", |b| {
        b.iter(|| drop(black_box(lock.try_acquire(&me).unwrap())));
    });
    g.finish();
}

fn fd_lock_bare(p: std::path::PathBuf) -> fd_lock::RwLock<File> {
    fd_lock::RwLock::new(
        File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(p)
            .unwrap(),
    )
}

/// A run record shaped like a real one, built here so the bench needs no
/// test-support crate.
mod obs_sample {
    use std::collections::BTreeMap;

    use upgrade_core::journal::{ComponentRecord, RunRecord, RunStatus, StepEvent, TxStep};
    use upgrade_core::version::Version;

    pub fn run_with(n: u64) -> RunRecord {
        let t = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let mut components = BTreeMap::new();
        for c in 0..n {
            let mut rec =
                ComponentRecord::pending("exporters", Version::new(1, c, 0), Version::new(1, c, 1));
            for s in TxStep::FORWARD {
                rec.record(s, StepEvent::Began, t);
                rec.record(
                    s,
                    StepEvent::Done {
                        result: "ok".into(),
                    },
                    t,
                );
            }
            rec.artifact_sha256 = Some("ab".repeat(32));
            rec.backup = Some(format!("/var/lib/obs-upgrade/backups/r/component_{c}"));
            components.insert(format!("component_{c:03}"), rec);
        }
        RunRecord {
            id: "20261121T000000Z-bench".into(),
            started_at: t,
            updated_at: t,
            host: "host".into(),
            user: "root".into(),
            command: vec!["obs-upgrade".into(), "apply".into()],
            mode: "standard".into(),
            environment: None,
            status: RunStatus::Validating,
            phases: vec![],
            components,
            checkpoints: vec![],
            finished_at: None,
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
