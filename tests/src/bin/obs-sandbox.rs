//! Builds and tears down the quickstart sandbox.
//!
//! - `obs-sandbox create DIR EXPORTER`: a root with plain binaries, running
//!   supervised services, a stack file and a mirror (prints the root).
//! - `obs-sandbox publish DIR EXPORTER COMPONENT VERSION`: one more release in the mirror.
//! - `obs-sandbox stop DIR`: stops the sandbox's services.
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
