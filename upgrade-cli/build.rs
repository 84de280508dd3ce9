//! Puts the commit and its date into `obs-upgrade --version`.
//!
//! From git when building in a checkout; else from `OBS_UPGRADE_COMMIT` and
//! `OBS_UPGRADE_COMMIT_DATE` (a source tarball's packager sets them); else
//! `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=OBS_UPGRADE_COMMIT");
    println!("cargo:rerun-if-env-changed=OBS_UPGRADE_COMMIT_DATE");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for p in ["HEAD", "refs/heads", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{p}");
        }
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let commit = env("OBS_UPGRADE_COMMIT")
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let date = env("OBS_UPGRADE_COMMIT_DATE")
        .or_else(|| git(&["log", "-1", "--format=%cs"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OBS_UPGRADE_COMMIT={commit}");
    println!("cargo:rustc-env=OBS_UPGRADE_COMMIT_DATE={date}");
}
