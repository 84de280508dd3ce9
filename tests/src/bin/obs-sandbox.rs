//! Builds and tears down the quickstart sandbox.
//!
//! - `obs-sandbox create DIR EXPORTER`: a root with plain binaries, running
//!   supervised services, a stack file and a mirror (prints the root).
//! - `obs-sandbox publish DIR EXPORTER COMPONENT VERSION`: one more release in the mirror.
//! - `obs-sandbox stop DIR`: stops the sandbox's services.
//! - `obs-sandbox bench-root DIR N`: a root with N components and a run
//!   recorded for all of them (for `scripts/bench-status`).
//! - `obs-sandbox bench-host DIR N EXPORTER SOURCE`: a root with N components
//!   `c0000…` installed at 1.0.0 (hard links of one patched exporter), each
//!   released as a raw asset 1.1.0 by SOURCE: `mirror` (DIR/mirror) or the
//!   URL of `serve-api` (for `scripts/bench-ops`).
//! - `obs-sandbox serve-api N DELAY_MS RAW_MIB`: a loopback GitHub-shaped API
//!   for `bench/c0000…` answering each API request after `DELAY_MS`, each
//!   release a `RAW_MIB` raw asset and its `SHA256SUMS`; prints its URL and the
//!   first asset's URL, then serves until killed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create", dir, exporter] => {
            obs_upgrade_tests::sandbox::create(Path::new(dir), Path::new(exporter)).map(|c| {
                for (name, port) in &c.ports {
                    println!("{name} listening on 127.0.0.1:{port}");
                }
            })
        }
        ["publish", dir, exporter, component, version] => std::fs::read(exporter).and_then(|e| {
            obs_upgrade_tests::sandbox::publish(
                &Path::new(dir).join("mirror"),
                &e,
                component,
                version,
            )
        }),
        ["bench-root", dir, n] => bench_root(Path::new(dir), n.parse().unwrap_or(20)),
        ["bench-host", dir, n, exporter, source] => bench_host(
            Path::new(dir),
            n.parse().unwrap_or(10),
            Path::new(exporter),
            source,
        ),
        ["serve-api", n, delay_ms, raw_mib] => serve_api(
            n.parse().unwrap_or(10),
            delay_ms.parse().unwrap_or(0),
            raw_mib.parse().unwrap_or(1),
        ),
        ["stop", dir] => {
            obs_upgrade_tests::sandbox::stop_all(&Path::new(dir).join("root"));
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: obs-sandbox create DIR EXPORTER | publish DIR EXPORTER COMPONENT VERSION \
                    | stop DIR"
            );
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("obs-sandbox: {e}");
            ExitCode::from(1)
        }
    }
}

fn bench_root(dir: &Path, n: usize) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc/obs-upgrade"))?;
    let mut stack = String::from("components:\n");
    for i in 0..n {
        let _ = write!(
            stack,
            "  c{i:02}:\n    repo: example/c{i:02}\n    asset: \
                \"c{i:02}-{{version}}.{{os}}-{{arch}}.tar.gz\"\n    archive: tar.gz\n    \
                binaries: [{{name: c{i:02}, path: c{i:02}}}]\n"
        );
    }
    std::fs::write(root.join("etc/obs-upgrade/stack.yaml"), stack)?;
    let mut run = obs_upgrade_tests::sample_run(1, 7, n);
    let keys: Vec<String> = run.components.keys().cloned().collect();
    run.phases = vec![upgrade_core::journal::PhaseRecord {
        name: "exporters".into(),
        status: upgrade_core::journal::PhaseStatus::Completed,
        components: keys,
    }];
    let store = upgrade_state::StateStore::open(&root.join("var/lib/obs-upgrade"))
        .map_err(std::io::Error::other)?;
    store.save(&run).map_err(std::io::Error::other)?;
    println!("{}", root.display());
    Ok(())
}

/// The name of bench component `i`.
fn bench_name(i: usize) -> String {
    format!("c{i:04}")
}

fn bench_host(dir: &Path, n: usize, exporter: &Path, source: &str) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let root = dir.join("root");
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(root.join("etc/obs-upgrade"))?;
    let one = dir.join("exporter-1.0.0");
    let patched = obs_upgrade_tests::sandbox::patched(&std::fs::read(exporter)?, "1.0.0");
    std::fs::write(&one, patched)?;
    std::fs::set_permissions(&one, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let (kind, api) = if source == "mirror" {
        ("mirror", format!("file://{}", dir.join("mirror").display()))
    } else {
        ("github", source.to_owned())
    };
    let mut stack = String::from("defaults: {allow: major, min_release_age: \"0\"}\ncomponents:\n");
    for i in 0..n {
        let c = bench_name(i);
        std::fs::hard_link(&one, bin.join(&c))?;
        if kind == "mirror" {
            let rel = dir.join("mirror").join(&c).join("v1.1.0");
            std::fs::create_dir_all(&rel)?;
            std::fs::write(
                rel.join("release.json"),
                "{\"published_at\": \"2026-01-01T00:00:00Z\"}",
            )?;
        }
        let _ = write!(
            stack,
            "  {c}:\n    source: {kind}\n    api_url: \"{api}\"\n    repo: bench/{c}\n    \
             asset: \"{c}-{{version}}-{{os}}-{{arch}}\"\n    archive: raw\n    \
             checksums: SHA256SUMS\n    binaries: [{{name: {c}, path: {c}}}]\n"
        );
    }
    std::fs::write(root.join("etc/obs-upgrade/stack.yaml"), stack)?;
    println!("{}", root.display());
    Ok(())
}

fn serve_api(n: usize, delay_ms: u64, raw_mib: usize) -> std::io::Result<()> {
    use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease, ReleaseServer};
    use sha2::{Digest, Sha256};
    use std::sync::Arc;
    let server = ReleaseServer::start();
    let mut data = vec![0u8; raw_mib * 1024 * 1024];
    for (i, b) in data.iter_mut().enumerate() {
        *b = ((i.wrapping_mul(2_654_435_761) >> 13) & 0xff).to_le_bytes()[0];
    }
    let data = Arc::new(data);
    let digest = hex::encode(Sha256::digest(data.as_slice()));
    let mut first = None;
    {
        let mut st = server.state();
        st.rate_remaining = u64::MAX / 2;
        st.faults.api_delay = Some(std::time::Duration::from_millis(delay_ms));
        for i in 0..n {
            let c = bench_name(i);
            let asset = format!("{c}-1.1.0-linux-amd64");
            let sums = format!("{digest}  {asset}\n").into_bytes();
            first.get_or_insert_with(|| format!("{}/dl/v1.1.0/{asset}", server.url()));
            let assets = vec![
                FakeAsset {
                    name: asset,
                    data: data.clone(),
                    with_digest: false,
                },
                FakeAsset {
                    name: "SHA256SUMS".into(),
                    data: Arc::new(sums),
                    with_digest: false,
                },
            ];
            let release = FakeRelease::new("v1.1.0", "2026-01-01T00:00:00Z", assets);
            st.github.insert(format!("bench/{c}"), vec![release]);
        }
    }
    println!("{}", server.url());
    println!("{}", first.unwrap_or_default());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
