//! What the Sigstore rung of the ladder costs per release, beside what every
//! rung pays anyway, in the same process:
//! - `baseline_sha256_asset`: the SHA-256 of a 16 MiB asset (what checking a
//!   download against any digest costs; `node_exporter`'s archive is ~11 MiB);
//! - `sigstore_test_instance`: `verify::sigstore` on a nginx-prometheus-exporter
//!   checksum file and its bundle from the tests' miniature Sigstore
//!   (chain, SCT, SET, inclusion proof, checkpoint, signature, identity);
//! - `sigstore_public_good`: the same on a real cosign v3 bundle from the
//!   public-good instance with the built-in trusted root (which also checks
//!   an RFC 3161 timestamp).
//!
//! `cargo bench -p obs-upgrade-tests --bench verify`

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use obs_upgrade_tests::sigstore::TestSigstore;
use sha2::{Digest, Sha256};
use upgrade_core::catalog::{GITHUB_ACTIONS_ISSUER, SigstoreSpec};

const WORKFLOW: &str = concat!(
    "https://github.com/nginx/nginx-prometheus-exporter",
    "/.github/workflows/release.yml@refs/heads/main"
);

fn spec(identity: &str, issuer: &str) -> SigstoreSpec {
    SigstoreSpec {
        identity: identity.into(),
        issuer: issuer.into(),
        bundle_suffix: ".bundle".into(),
        versions: "*".parse().unwrap(),
    }
}

fn bench(c: &mut Criterion) {
    let asset = vec![0x5a_u8; 16 << 20];
    c.bench_function("baseline_sha256_asset", |b| {
        b.iter(|| Sha256::digest(black_box(&asset)));
    });

    let sigstore = TestSigstore::new("bench");
    let mut sums = String::new();
    for i in 0..14 {
        writeln!(
            sums,
            "{i:064x}  nginx-prometheus-exporter_1.5.3_linux_{i}.tar.gz"
        )
        .unwrap();
    }
    let bundle = sigstore.sign(sums.as_bytes(), WORKFLOW, GITHUB_ACTIONS_ISSUER);
    let root = sigstore.trusted_root().to_owned();
    let prefix = spec(
        "https://github.com/nginx/nginx-prometheus-exporter/.github/workflows/release.yml@*",
        GITHUB_ACTIONS_ISSUER,
    );
    c.bench_function("sigstore_test_instance", |b| {
        b.iter(|| {
            upgrade_fetch::verify::sigstore(&prefix, Some(&root), sums.as_bytes(), &bundle).unwrap()
        });
    });

    let blob = include_bytes!("../data/sigstore/cosign-v3-blob.txt");
    let real = include_bytes!("../data/sigstore/cosign-v3-blob.sigstore.json");
    let any = spec("*", "https://github.com/login/oauth");
    c.bench_function("sigstore_public_good", |b| {
        b.iter(|| upgrade_fetch::verify::sigstore(&any, None, blob, real).unwrap());
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
