//! Builds and tears down the quickstart sandbox.
//!
//! - `obs-sandbox create DIR EXPORTER`: a root with plain binaries, running
//!   supervised services, a stack file and a mirror (prints the root).
//! - `obs-sandbox publish DIR EXPORTER COMPONENT VERSION`: one more release in the mirror.
//! - `obs-sandbox stop DIR`: stops the sandbox's services.
//! - `obs-sandbox bench-root DIR N`: a root with N components and a run
//!   recorded for all of them (for `scripts/bench-status`).
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
        ["stop", dir] => {
            obs_upgrade_tests::sandbox::stop_all(&Path::new(dir).join("root"));
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: obs-sandbox create DIR EXPORTER | publish DIR EXPORTER COMPONENT VERSION | stop DIR"
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
            "  c{i:02}:\n    repo: example/c{i:02}\n    asset: \"c{i:02}-{{version}}.{{os}}-{{arch}}.tar.gz\"\n    archive: tar.gz\n    binaries: [{{name: c{i:02}, path: c{i:02}}}]\n"
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
