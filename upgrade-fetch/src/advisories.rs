//! Security advisories: GitHub's repository advisories
//! (`/repos/<repo>/security-advisories`) and the same JSON in a mirror
//! (`<mirror>/<component>/advisories.json`), read into
//! [`upgrade_core::advisory::Advisory`].

use std::path::Path;

use serde::Deserialize;
use upgrade_core::advisory::{Advisory, Range, Severity};
use upgrade_core::version::Version;

/// The most advisories kept for one repository.
pub const MAX_ADVISORIES: usize = 1000;
/// The largest mirror advisory file read.
pub const MAX_ADVISORY_FILE: u64 = 8 * 1024 * 1024;
/// The longest summary kept (characters).
const MAX_SUMMARY: usize = 300;

/// A repository (or global) security advisory as GitHub answers it (the
/// fields used).
#[derive(Debug, Deserialize)]
pub struct GithubAdvisory {
    ghsa_id: String,
    #[serde(default)]
    cve_id: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    withdrawn_at: Option<String>,
    #[serde(default)]
    vulnerabilities: Option<Vec<GithubVulnerability>>,
}

#[derive(Debug, Deserialize)]
struct GithubVulnerability {
    #[serde(default)]
    vulnerable_version_range: Option<String>,
    #[serde(default)]
    patched_versions: Option<String>,
    #[serde(default)]
    first_patched_version: Option<FirstPatched>,
}

/// Global advisories give a string, webhooks an object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FirstPatched {
    Text(String),
    Object { identifier: String },
}

/// Versions named in a `patched_versions` text (`1.2.3`, `>= 1.2.3`, `1.2.3, 2.0.1`).
fn patched(text: &str) -> impl Iterator<Item = Version> + '_ {
    text.split(',')
        .filter_map(|p| Version::parse(p.trim().trim_start_matches(['>', '=', ' '])).ok())
}

/// Turns GitHub's answer into advisories: withdrawn and unpublished ones
/// dropped, unreadable ranges dropped with a warning (an advisory left
/// with none is dropped: it could not be matched), at most
/// [`MAX_ADVISORIES`].
pub fn parse_github(items: Vec<GithubAdvisory>, origin: &str) -> Vec<Advisory> {
    let mut out = Vec::new();
    for a in items {
        if out.len() >= MAX_ADVISORIES {
            log::warn!("{origin}: more than {MAX_ADVISORIES} advisories; the rest are not read");
            break;
        }
        if a.withdrawn_at.is_some() || a.state.as_deref().is_some_and(|s| s != "published") {
            continue;
        }
        if a.ghsa_id.len() > 64 {
            log::warn!(
                "{origin}: skipping an advisory with a {}-byte id",
                a.ghsa_id.len()
            );
            continue;
        }
        let mut vulnerable = Vec::new();
        let mut fixed = Vec::new();
        for v in a.vulnerabilities.unwrap_or_default() {
            match v.vulnerable_version_range.as_deref().map(Range::parse) {
                Some(Ok(r)) => vulnerable.push(r),
                Some(Err(e)) => log::warn!("{origin}: {}: {e}", a.ghsa_id),
                None => {}
            }
            fixed.extend(v.patched_versions.as_deref().into_iter().flat_map(patched));
            let first = match v.first_patched_version {
                Some(FirstPatched::Text(t) | FirstPatched::Object { identifier: t }) => {
                    Version::parse(&t).ok()
                }
                None => None,
            };
            fixed.extend(first);
        }
        if vulnerable.is_empty() {
            log::warn!(
                "{origin}: {} names no vulnerable range this tool can read; it is not matched",
                a.ghsa_id
            );
            continue;
        }
        fixed.sort();
        fixed.dedup();
        out.push(Advisory {
            id: a.ghsa_id,
            cve: a.cve_id.filter(|c| c.len() <= 64),
            severity: Severity::from_word(a.severity.as_deref().unwrap_or("")),
            summary: upgrade_core::notes::shorten(
                a.summary.as_deref().unwrap_or("").trim(),
                MAX_SUMMARY,
            ),
            url: a.html_url.filter(|u| u.len() <= 2048),
            vulnerable,
            fixed,
        });
    }
    out
}

/// A mirror's advisories: `<mirror>/<component>/advisories.json`, GitHub's
/// JSON; no file means none known.
pub fn read_mirror(mirror: &Path, component: &str) -> Result<Vec<Advisory>, std::io::Error> {
    let path = mirror.join(component).join("advisories.json");
    let bytes = match upgrade_state::fsutil::read_capped(&path, MAX_ADVISORY_FILE) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    let items: Vec<GithubAdvisory> = serde_json::from_slice(&bytes).map_err(|e| {
        std::io::Error::other(format!(
            "{}: not a list of advisories in GitHub's JSON: {e}",
            path.display()
        ))
    })?;
    Ok(parse_github(items, &path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_answers_become_advisories() {
        let json = r#"[
          {"ghsa_id": "GHSA-1111-2222-3333", "cve_id": "CVE-2026-1", "severity": "moderate",
           "summary": "  a hole  ",
           "html_url": "https://github.com/o/r/security/advisories/GHSA-1111-2222-3333",
           "state": "published", "withdrawn_at": null,
           "vulnerabilities": [{"package": {"ecosystem": "go", "name": "github.com/o/r"},
             "vulnerable_version_range": ">= 1.0.0, < 1.2.0", "patched_versions": "1.2.0",
             "vulnerable_functions": []}]},
          {"ghsa_id": "GHSA-gone", "withdrawn_at": "2026-01-01T00:00:00Z",
           "vulnerabilities": [{"vulnerable_version_range": "< 9.0.0"}]},
          {"ghsa_id": "GHSA-draft", "state": "draft",
           "vulnerabilities": [{"vulnerable_version_range": "< 9.0.0"}]},
          {"ghsa_id": "GHSA-global", "severity": "critical",
           "vulnerabilities": [{"vulnerable_version_range": "= 0.5.0",
             "first_patched_version": "0.5.1"}]},
          {"ghsa_id": "GHSA-unreadable", "vulnerabilities": [{"vulnerable_version_range": "~> 1"}]}
        ]"#;
        let items: Vec<GithubAdvisory> = serde_json::from_str(json).unwrap();
        let got = parse_github(items, "test");
        let ids: Vec<&str> = got.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["GHSA-1111-2222-3333", "GHSA-global"]);
        assert_eq!(got[0].severity, Severity::Medium);
        assert_eq!(got[0].summary, "a hole");
        assert_eq!(got[0].fixed, vec![Version::new(1, 2, 0)]);
        assert!(got[0].affects(&Version::new(1, 1, 9)));
        assert_eq!(got[1].fixed, vec![Version::new(0, 5, 1)]);
    }
}
