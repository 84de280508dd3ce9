//! Versions as upstream tags and prints them, and the kind of change between two.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A release version: semver, parsed leniently from what upstream tags and prints.
///
/// Accepts `v1.9.1`, `1.9.1`, `2.42.0+ds`, `3.0.0-rc.1`. Ordering is semver
/// precedence with build metadata as the last tie-breaker, so it is a total
/// order; use [`Version::same_release`] to ignore build metadata
/// (`2.42.0+ds` is the same release as `2.42.0`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(semver::Version);

/// A string that is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a version: {reason}; expected something like `1.9.1` or `v2.53.3`")]
pub struct ParseVersionError {
    /// The text that was refused, as given.
    pub input: String,
    /// Why it was refused.
    pub reason: String,
}

/// The longest version string accepted (semver allows any length; no
/// release needs more, and versions become paths and journal keys).
pub const MAX_VERSION_LEN: usize = 128;

impl Version {
    /// Parses a tag or printed version: an optional `v`, then semver.
    pub fn parse(input: &str) -> Result<Self, ParseVersionError> {
        let err = |reason: &str| ParseVersionError {
            // Never the whole of a hostile input.
            input: input.chars().take(MAX_VERSION_LEN + 8).collect(),
            reason: reason.to_owned(),
        };
        let text = input.trim();
        let text = text
            .strip_prefix('v')
            .or_else(|| text.strip_prefix('V'))
            .unwrap_or(text);
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        if text.len() > MAX_VERSION_LEN {
            return Err(err("it is longer than 128 characters"));
        }
        semver::Version::parse(text)
            .map(Version)
            .map_err(|e| err(&e.to_string()))
    }

    /// Builds a plain `major.minor.patch` version.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version(semver::Version::new(major, minor, patch))
    }

    /// The semver value underneath.
    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }

    /// Major number.
    pub fn major(&self) -> u64 {
        self.0.major
    }

    /// Minor number.
    pub fn minor(&self) -> u64 {
        self.0.minor
    }

    /// Patch number.
    pub fn patch(&self) -> u64 {
        self.0.patch
    }

    /// Whether this is a pre-release (`3.0.0-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }

    /// Compares by semver precedence only, ignoring build metadata.
    pub fn cmp_precedence(&self, other: &Self) -> Ordering {
        self.0.cmp_precedence(&other.0)
    }

    /// Same release, ignoring build metadata (`2.42.0+ds` and `2.42.0`).
    pub fn same_release(&self, other: &Self) -> bool {
        self.cmp_precedence(other) == Ordering::Equal
    }

    /// The version without build metadata, as upstream would tag it.
    #[must_use]
    pub fn without_build(&self) -> Self {
        let mut v = self.0.clone();
        v.build = semver::BuildMetadata::EMPTY;
        Version(v)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

impl FromStr for Version {
    type Err = ParseVersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Version::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How large a change between two versions is.
///
/// Ordered: `None < Patch < Minor < Major`. In `0.x` a minor bump counts as
/// [`ChangeKind::Major`] (semver treats it as breaking), and so does any
/// change in `0.0.x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The same release.
    None,
    /// Only the patch number (or the pre-release tag) differs.
    Patch,
    /// A compatible feature release.
    Minor,
    /// A breaking release.
    Major,
}

impl ChangeKind {
    /// The change from `from` to `to`, whichever direction it goes.
    pub fn between(from: &Version, to: &Version) -> ChangeKind {
        let (a, b) = (from.as_semver(), to.as_semver());
        if a.major != b.major {
            ChangeKind::Major
        } else if a.minor != b.minor {
            if a.major == 0 {
                ChangeKind::Major
            } else {
                ChangeKind::Minor
            }
        } else if a.patch != b.patch || a.pre != b.pre {
            if a.major == 0 && a.minor == 0 {
                ChangeKind::Major
            } else {
                ChangeKind::Patch
            }
        } else {
            ChangeKind::None
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::None => "none",
            ChangeKind::Patch => "patch",
            ChangeKind::Minor => "minor",
            ChangeKind::Major => "major",
        })
    }
}

/// Finds the version in what a program prints for `--version`.
///
/// Looks for `marker` (usually `version`) followed by a space or `=` and reads
/// the word after it; a Debian revision (`0.11.0-1+b4`) is dropped. Without a
/// marker match, the first word that parses as a version is taken.
///
/// ```
/// use upgrade_core::version::{detect_version, Version};
/// let out = "node_exporter, version 1.9.1 (branch: HEAD, revision: abc)";
/// assert_eq!(detect_version(out, "version"), Some(Version::new(1, 9, 1)));
/// let old = "time=... level=info msg=Starting version=0.11.0-1+b4 commit=xyz";
/// assert_eq!(detect_version(old, "version"), Some(Version::new(0, 11, 0)));
/// ```
pub fn detect_version(output: &str, marker: &str) -> Option<Version> {
    let is_word_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~');
    let word_after = |rest: &str| -> Option<Version> {
        let word: String = rest
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| is_word_char(*c))
            .collect();
        parse_printed(&word)
    };
    if !marker.is_empty() {
        let lower = output.to_ascii_lowercase();
        let marker = marker.to_ascii_lowercase();
        let mut from = 0;
        while let Some(pos) = lower[from..].find(&marker) {
            let after = from + pos + marker.len();
            let rest = &output[after..];
            if let Some(rest) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(' '))
                && let Some(v) = word_after(rest.trim_start())
            {
                return Some(v);
            }
            from = after;
        }
    }
    output.split(|c: char| !is_word_char(c)).find_map(|w| {
        if w.contains('.') {
            parse_printed(w)
        } else {
            None
        }
    })
}

/// Parses a printed version, dropping a Debian package revision
/// (`0.11.0-1+b4` → `0.11.0`, `1.5.0-1+b6` → `1.5.0`) and keeping `+ds`.
pub fn parse_printed(word: &str) -> Option<Version> {
    let v = Version::parse(word).ok()?;
    let pre = v.as_semver().pre.as_str();
    let debian_revision = !pre.is_empty()
        && pre
            .split('.')
            .next()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if debian_revision {
        let s = v.as_semver();
        return Some(Version::new(s.major, s.minor, s.patch));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_upstream_tags_and_prints() {
        let cases = [
            ("v1.9.1", (1, 9, 1), "", ""),
            ("1.9.1", (1, 9, 1), "", ""),
            ("2.42.0+ds", (2, 42, 0), "", "ds"),
            ("0.28.1+ds", (0, 28, 1), "", "ds"),
            ("3.0.0-rc.1", (3, 0, 0), "rc.1", ""),
            ("v1.18.1", (1, 18, 1), "", ""),
            (" v3.5.0\n", (3, 5, 0), "", ""),
        ];
        for (input, (ma, mi, pa), pre, build) in cases {
            let v = Version::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let s = v.as_semver();
            assert_eq!((s.major, s.minor, s.patch), (ma, mi, pa), "{input}");
            assert_eq!(s.pre.as_str(), pre, "{input}");
            assert_eq!(s.build.as_str(), build, "{input}");
        }
    }

    #[test]
    fn refuses_garbage_quoting_it() {
        for bad in [
            "", "v", "latest", "1.2", "1.2.3.4", "v0.3xx.y", "1.02.3", "x1.2.3",
        ] {
            let err = Version::parse(bad).unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn ordering_is_semver() {
        let ordered = [
            "2.55.1",
            "3.0.0-rc.0",
            "3.0.0-rc.1",
            "3.0.0",
            "3.0.0+ds",
            "3.1.0",
            "3.10.0",
        ];
        let vs: Vec<Version> = ordered.iter().map(|s| Version::parse(s).unwrap()).collect();
        for w in vs.windows(2) {
            assert!(w[0] < w[1], "{} < {}", w[0], w[1]);
        }
        assert!(
            Version::parse("2.42.0+ds")
                .unwrap()
                .same_release(&Version::parse("v2.42.0").unwrap())
        );
    }

    #[test]
    fn change_kinds() {
        let cases = [
            ("1.9.0", "1.9.1", ChangeKind::Patch),
            ("1.8.2", "1.9.0", ChangeKind::Minor),
            ("2.55.1", "3.0.0", ChangeKind::Major),
            ("0.25.0", "0.28.1", ChangeKind::Major),
            ("0.28.0", "0.28.1", ChangeKind::Patch),
            ("0.0.1", "0.0.2", ChangeKind::Major),
            ("0.11.0", "1.4.1", ChangeKind::Major),
            ("3.0.0-rc.1", "3.0.0", ChangeKind::Patch),
            ("2.42.0+ds", "2.42.0", ChangeKind::None),
        ];
        for (a, b, kind) in cases {
            let (a, b) = (Version::parse(a).unwrap(), Version::parse(b).unwrap());
            assert_eq!(ChangeKind::between(&a, &b), kind, "{a} -> {b}");
        }
    }

    #[test]
    fn detects_printed_versions() {
        let cases = [
            (
                "node_exporter, version 1.9.1 (branch: HEAD, revision: 1234)\n  build user: x",
                "1.9.1",
            ),
            (
                "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)",
                "2.42.0+ds",
            ),
            (
                "alertmanager, version 0.28.1+ds (branch: debian/sid)",
                "0.28.1+ds",
            ),
            (
                "alloy, version v1.18.1 (branch: HEAD, revision: abc)",
                "1.18.1",
            ),
            (
                "time=2024 level=info msg=\"Starting\" version=0.11.0-1+b4 commit=unknown \
                    date=unknown",
                "0.11.0",
            ),
            (
                "nginx-prometheus-exporter version=1.4.1 commit=abc",
                "1.4.1",
            ),
            ("mysqld_exporter, version 0.17.2 (branch: HEAD)", "0.17.2"),
            ("Version: 1.5.0", "1.5.0"),
            ("some tool 2.3.4 built today", "2.3.4"),
        ];
        for (out, want) in cases {
            assert_eq!(
                detect_version(out, "version"),
                Some(Version::parse(want).unwrap()),
                "{out}"
            );
        }
        assert_eq!(detect_version("usage: foo [flags]", "version"), None);
    }
}
