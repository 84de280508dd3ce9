//! Per-component upgrade policy: what to track, how large a change is
//! applied without approval, how old a release must be, what is denied.

use std::fmt;

use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::version::{ChangeKind, Version};

/// What a component follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Track {
    /// The highest release (pre-releases only when asked).
    Latest,
    /// The highest release inside one of the catalog's LTS lines.
    Lts,
    /// Exactly this version; below the installed one it asks for a downgrade.
    Pinned(Version),
    /// The highest release inside a semver range (`~2.53`, `>=1.7, <2`).
    Range(semver::VersionReq),
}

impl Track {
    /// Parses `latest`, `lts`, a full version (a pin) or a semver range.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        match t {
            "latest" => return Ok(Track::Latest),
            "lts" => return Ok(Track::Lts),
            "" => return Err("`track` is empty; use `latest`, `lts`, a version or a range".into()),
            _ => {}
        }
        if let Ok(v) = Version::parse(t) {
            return Ok(Track::Pinned(v));
        }
        semver::VersionReq::parse(t).map(Track::Range).map_err(|e| {
            format!(
                "`{t}` is neither `latest`, `lts`, a version (`1.9.1`) nor a semver range \
                (`~2.53`, `>=1.7, <2`): {e}"
            )
        })
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Track::Latest => f.write_str("latest"),
            Track::Lts => f.write_str("lts"),
            Track::Pinned(v) => write!(f, "{v}"),
            Track::Range(r) => write!(f, "{r}"),
        }
    }
}

impl Serialize for Track {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Track {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Track::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The largest change applied without explicit approval.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Allow {
    /// Nothing: the component is left alone even when updates exist.
    None,
    /// Patch releases.
    Patch,
    /// Minor and patch releases.
    #[default]
    Minor,
    /// Everything, majors included.
    Major,
}

impl Allow {
    /// Whether a change of this kind is within what is allowed.
    pub fn permits(self, change: ChangeKind) -> bool {
        let limit = match self {
            Allow::None => ChangeKind::None,
            Allow::Patch => ChangeKind::Patch,
            Allow::Minor => ChangeKind::Minor,
            Allow::Major => ChangeKind::Major,
        };
        change <= limit
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Allow::None => "none",
            Allow::Patch => "patch",
            Allow::Minor => "minor",
            Allow::Major => "major",
        })
    }
}

/// A duration written as in the stack file: `3d`, `12h`, `1w2d`, `90s`, `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Age(pub SignedDuration);

impl Age {
    /// Parses a sum of `<number><unit>` with units `s`, `m`, `h`, `d`, `w`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = |why: &str| {
            format!("`{t}` is not a duration ({why}); write it like `3d`, `12h`, `1w2d` or `90m`")
        };
        if t == "0" {
            return Ok(Age(SignedDuration::ZERO));
        }
        if t.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut secs: i64 = 0;
        let mut num = String::new();
        for c in t.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit: i64 = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                _ => return Err(bad(&format!("unknown unit `{c}`"))),
            };
            if num.is_empty() {
                return Err(bad("a unit without a number"));
            }
            let n: i64 = num.parse().map_err(|_| bad("number too large"))?;
            secs = n
                .checked_mul(unit)
                .and_then(|v| secs.checked_add(v))
                .ok_or_else(|| bad("too large"))?;
            num.clear();
        }
        if !num.is_empty() {
            return Err(bad("a number without a unit"));
        }
        Ok(Age(SignedDuration::from_secs(secs)))
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.0.as_secs();
        if s == 0 {
            return f.write_str("0");
        }
        for (unit, len) in [
            ("w", 604_800),
            ("d", 86_400),
            ("h", 3600),
            ("m", 60),
            ("s", 1),
        ] {
            if s >= len {
                write!(f, "{}{unit}", s / len)?;
                s %= len;
            }
        }
        Ok(())
    }
}

impl Serialize for Age {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Age::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One version (`2.45.0`, build metadata ignored) or a range (`>=3.0, <3.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionMatcher {
    /// Exactly this release.
    Exact(Version),
    /// Any version in this range.
    Range(semver::VersionReq),
}

impl VersionMatcher {
    /// Parses a version first, then a range.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Ok(v) = Version::parse(t) {
            return Ok(VersionMatcher::Exact(v));
        }
        semver::VersionReq::parse(t)
            .map(VersionMatcher::Range)
            .map_err(|e| format!("`{t}` is neither a version nor a semver range: {e}"))
    }

    /// Whether `v` is matched. Ranges follow semver: a pre-release matches
    /// only a range that names a pre-release of the same `major.minor.patch`.
    pub fn matches(&self, v: &Version) -> bool {
        match self {
            VersionMatcher::Exact(e) => e.same_release(v),
            VersionMatcher::Range(r) => r.matches(v.as_semver()),
        }
    }
}

impl fmt::Display for VersionMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionMatcher::Exact(v) => write!(f, "{v}"),
            VersionMatcher::Range(r) => write!(f, "{r}"),
        }
    }
}

impl Serialize for VersionMatcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionMatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        VersionMatcher::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The resolved policy of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// What the component follows.
    pub track: Track,
    /// The largest change applied without approval.
    pub allow: Allow,
    /// Releases younger than this are held back.
    pub min_release_age: Age,
    /// Versions never planned.
    pub deny: Vec<VersionMatcher>,
    /// Whether pre-releases are candidates.
    pub prereleases: bool,
    /// Whether a release that fixes a security advisory affecting the
    /// installed version may skip `min_release_age` (off by default).
    pub advisories_bypass_age: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            track: Track::Latest,
            allow: Allow::Minor,
            min_release_age: Age::default(),
            deny: Vec::new(),
            prereleases: false,
            advisories_bypass_age: false,
        }
    }
}

/// Policy fields as written in a stack file; each one overrides when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverride {
    /// `latest`, `lts`, a version or a semver range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<Track>,
    /// `none`, `patch`, `minor` or `major`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Allow>,
    /// A duration such as `3d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_release_age: Option<Age>,
    /// Versions or ranges never to plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<VersionMatcher>>,
    /// Whether pre-releases are candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prereleases: Option<bool>,
    /// Whether a release fixing an advisory that affects the installed
    /// version skips `min_release_age`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisories_bypass_age: Option<bool>,
}

impl PolicyOverride {
    /// Applies the fields that are set on top of `base`.
    pub fn apply_to(&self, base: &mut Policy) {
        if let Some(t) = &self.track {
            base.track = t.clone();
        }
        if let Some(a) = self.allow {
            base.allow = a;
        }
        if let Some(a) = self.min_release_age {
            base.min_release_age = a;
        }
        if let Some(d) = &self.deny {
            base.deny.clone_from(d);
        }
        if let Some(p) = self.prereleases {
            base.prereleases = p;
        }
        if let Some(b) = self.advisories_bypass_age {
            base.advisories_bypass_age = b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks() {
        assert_eq!(Track::parse("latest").unwrap(), Track::Latest);
        assert_eq!(Track::parse("lts").unwrap(), Track::Lts);
        assert_eq!(
            Track::parse("v1.9.1").unwrap(),
            Track::Pinned(Version::new(1, 9, 1))
        );
        assert!(matches!(Track::parse("~2.53").unwrap(), Track::Range(_)));
        assert!(matches!(
            Track::parse(">=1.7, <2").unwrap(),
            Track::Range(_)
        ));
        let e = Track::parse("newest").unwrap_err();
        assert!(e.contains("`newest`"), "{e}");
    }

    #[test]
    fn ages() {
        assert_eq!(Age::parse("3d").unwrap().0.as_secs(), 3 * 86_400);
        assert_eq!(Age::parse("1w2d").unwrap().0.as_secs(), 9 * 86_400);
        assert_eq!(Age::parse("90m").unwrap().0.as_secs(), 5400);
        assert_eq!(Age::parse("0").unwrap().0.as_secs(), 0);
        assert_eq!(Age::parse("1w2d").unwrap().to_string(), "1w2d");
        for bad in ["", "3", "d", "3y", "-1d", "99999999999999999999d"] {
            assert!(Age::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allow_permits() {
        assert!(Allow::Minor.permits(ChangeKind::Patch));
        assert!(Allow::Minor.permits(ChangeKind::Minor));
        assert!(!Allow::Minor.permits(ChangeKind::Major));
        assert!(!Allow::None.permits(ChangeKind::Patch));
        assert!(Allow::Major.permits(ChangeKind::Major));
    }

    #[test]
    fn matchers() {
        let exact = VersionMatcher::parse("2.45.0").unwrap();
        assert!(exact.matches(&Version::parse("2.45.0+ds").unwrap()));
        assert!(!exact.matches(&Version::parse("2.45.1").unwrap()));
        let range = VersionMatcher::parse(">=3.0, <3.1").unwrap();
        assert!(range.matches(&Version::parse("3.0.1").unwrap()));
        assert!(!range.matches(&Version::parse("3.1.0").unwrap()));
    }
}
