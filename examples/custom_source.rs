//! Lists releases from an internal artifact server of your own instead of
//! GitHub or GitLab, then checks and stages them: downloads are verified by
//! the same ladder (here, the checksum file published beside each asset).
//!
//! The "server" is a directory laid out `DIR/<component>/<tag>/<files>`
//! (a file share, or what an artifact server syncs to disk).
//!
//! ```text
//! cargo run -p obs-upgrade-examples --example custom_source -- ROOT DIR
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use upgrade_cli::host::{Host, HostOptions};
use upgrade_cli::ops::{self, CheckOptions, Quiet, StageOptions};
use upgrade_core::config::Component;
use upgrade_core::engine::Scope;
use upgrade_core::planner::{Asset, Release};
use upgrade_core::ports::{PortError, ReleaseSource};
use upgrade_core::version::Version;

/// Releases are the tag directories under `<dir>/<component>/`.
struct ArtifactDir(PathBuf);

impl ReleaseSource for ArtifactDir {
    fn releases(&self, component: &Component) -> Result<Vec<Release>, PortError> {
        let dir = self.0.join(&component.name);
        let mut out = Vec::new();
        for tag in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let tag = tag?.path();
            let name = tag.file_name().unwrap_or_default().to_string_lossy();
            let Ok(version) = Version::parse(name.trim_start_matches('v')) else {
                continue; // not a release directory
            };
            let mut release = Release::new(version, None);
            release.tag = name.into_owned();
            for file in std::fs::read_dir(&tag)? {
                let path = file?.path();
                release.assets.push(asset(&path));
            }
            out.push(release);
        }
        out.sort_by(|a, b| a.version.cmp_precedence(&b.version));
        Ok(out)
    }
}

fn asset(path: &Path) -> Asset {
    Asset {
        name: path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into(),
        url: format!("file://{}", path.display()),
        size: std::fs::metadata(path).ok().map(|m| m.len()),
        digest: None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, dir] = args.as_slice() else {
        eprintln!("usage: custom_source ROOT DIR");
        return ExitCode::from(2);
    };
    let opts = HostOptions {
        root: PathBuf::from(root),
        ..HostOptions::default()
    };
    let source = Arc::new(ArtifactDir(PathBuf::from(dir)));
    let run = Host::open(opts).and_then(|host| {
        let host = host.with_release_source(source);
        let check = ops::check(&host, &CheckOptions::default())?;
        for c in &check.components {
            let installed = c.installed.as_deref().unwrap_or("-");
            let target = c.target.as_deref().unwrap_or("-");
            println!(
                "{}: installed {installed}, target {target} ({})",
                c.name, c.status
            );
        }
        ops::stage(&host, &StageOptions { scope: Scope::All }, &Quiet)
    });
    match run {
        Ok(report) => {
            for s in &report.staged {
                println!("staged {} {}: {}", s.component, s.version, s.detail);
            }
            ExitCode::from(u8::from(report.failures() > 0))
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
