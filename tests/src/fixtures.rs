//! Debian's packaged upstream builds, fetched by `scripts/fetch-fixtures`.

use std::path::PathBuf;

use upgrade_core::version::Version;

/// The fixtures directory: `$OBS_FIXTURES` or `<workspace>/.cache/fixtures`.
pub fn dir() -> PathBuf {
    std::env::var_os("OBS_FIXTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/fixtures"),
        PathBuf::from,
    )
}

/// A packaged binary: `<suite>/<package>/bin/<binary>`, when fetched.
pub fn binary(suite: &str, package: &str, binary: &str) -> Option<PathBuf> {
    let p = dir().join(suite).join(package).join("bin").join(binary);
    p.is_file().then_some(p)
}

/// The upstream version of a package (`1.5.0-1+b6` → `1.5.0`, `2.42.0+ds-5` → `2.42.0+ds`).
pub fn upstream_version(suite: &str, package: &str) -> Option<Version> {
    let text = std::fs::read_to_string(dir().join(suite).join(package).join("VERSION")).ok()?;
    let text = text.trim();
    let upstream = text.rsplit_once('-').map_or(text, |(u, _)| u);
    Version::parse(upstream).ok()
}

/// A binary that must be there in CI; elsewhere `None` after saying it is skipped.
pub fn require(suite: &str, package: &str, bin: &str, test: &str) -> Option<PathBuf> {
    match binary(suite, package, bin) {
        Some(p) => Some(p),
        None if crate::nsd::in_ci() => panic!(
            "{test}: fixture {suite}/{package}/{bin} is missing in CI; scripts/setup runs scripts/fetch-fixtures as root"
        ),
        None => {
            eprintln!(
                "SKIPPED {test}: fixture {suite}/{package}/{bin} is missing; run ./scripts/fetch-fixtures as root"
            );
            None
        }
    }
}
