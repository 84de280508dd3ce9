//! Planning 1,000 components with 50 releases each, against a baseline that
//! only finds each component's highest release (the floor any planner pays).
//!
//! `cargo bench -p upgrade-core --bench planner`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::{SignedDuration, Timestamp};
use upgrade_core::catalog::{ArchiveKind, BinarySpec};
use upgrade_core::config::{ComponentConfig, StackFile};
use upgrade_core::planner::{PlanInput, Release, plan};
use upgrade_core::policy::{Age, Allow};
use upgrade_core::version::Version;

const COMPONENTS: usize = 1000;
const RELEASES: u64 = 50;

fn input() -> (
    upgrade_core::Stack,
    BTreeMap<String, Version>,
    BTreeMap<String, Vec<Release>>,
    Timestamp,
) {
    let now: Timestamp = "2026-11-21T00:00:00Z".parse().unwrap();
    let mut file = StackFile {
        builtin_rules: true,
        ..StackFile::default()
    };
    file.defaults.min_release_age = Some(Age::parse("3d").unwrap());
    file.defaults.allow = Some(Allow::Minor);
    let mut installed = BTreeMap::new();
    let mut available = BTreeMap::new();
    for i in 0..COMPONENTS {
        let name = format!("c{i:04}");
        let mut cfg = ComponentConfig {
            repo: Some(format!("example/{name}")),
            asset: Some("{artifact}-{version}.{os}-{arch}.tar.gz".into()),
            archive: Some(ArchiveKind::TarGz),
            binaries: Some(vec![BinarySpec {
                name: name.clone(),
                path: name.clone(),
            }]),
            phase: Some(["exporters", "alerting", "prometheus", "logs"][i % 4].into()),
            ..ComponentConfig::default()
        };
        // Chains of dependencies inside each phase.
        if i >= 4 {
            cfg.depends_on = vec![format!("c{:04}", i - 4)];
        }
        file.components.insert(name.clone(), cfg);
        installed.insert(name.clone(), Version::new(1, 0, 0));
        let releases = (0..RELEASES)
            .map(|r| {
                let v = Version::new(1 + r / 20, (r / 5) % 4, r % 5);
                Release::new(
                    v,
                    Some(now - SignedDuration::from_hours(24 * (RELEASES - r).cast_signed())),
                )
            })
            .collect();
        available.insert(name, releases);
    }
    let stack = file.resolve(None, "bench").unwrap();
    (stack, installed, available, now)
}

fn bench(c: &mut Criterion) {
    let (stack, installed, available, now) = input();
    let mut g = c.benchmark_group("plan_1000x50");
    g.bench_function("baseline_max_release", |b| {
        b.iter(|| {
            let best: BTreeMap<&str, &Version> = available
                .iter()
                .filter_map(|(n, rs)| rs.iter().map(|r| &r.version).max().map(|v| (n.as_str(), v)))
                .collect();
            black_box(best)
        });
    });
    g.bench_function("plan", |b| {
        b.iter(|| {
            black_box(plan(PlanInput {
                stack: &stack,
                installed: &installed,
                available: &available,
                now,
                holds: &upgrade_core::holds::Holds::default(),
                advisories: &std::collections::BTreeMap::new(),
            }))
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
