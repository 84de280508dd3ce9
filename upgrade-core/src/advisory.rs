//! Security advisories: which versions of a component they affect, and
//! which installed versions they flag.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::version::Version;

/// How severe an advisory is (GitHub's scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not rated.
    Unknown,
    /// Low.
    Low,
    /// Medium (GitHub's "moderate" is read as this).
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Reads GitHub's word (`low`, `moderate`/`medium`, `high`, `critical`);
    /// anything else is [`Severity::Unknown`].
    pub fn from_word(word: &str) -> Severity {
        match word.to_ascii_lowercase().as_str() {
            "low" => Severity::Low,
            "moderate" | "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => Severity::Unknown,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// One comparison of a vulnerable range (`>= 1.2.0`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    /// `<`, `<=`, `>`, `>=` or `=`.
    pub op: String,
    /// The version compared with.
    pub version: Version,
}

/// A vulnerable range: every bound must hold (`>= 1.0.0, < 1.2.3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The range as upstream wrote it.
    pub text: String,
    /// Its bounds; empty means every version.
    pub bounds: Vec<Bound>,
}

/// Why a range does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the vulnerable range `{text}`: {why}")]
pub struct RangeError {
    /// The range.
    pub text: String,
    /// What is wrong.
    pub why: String,
}

impl Range {
    /// Reads GitHub's range syntax: comma-separated comparisons, each
    /// `<`, `<=`, `>`, `>=` or `=` and a version (`v` prefix allowed); a bare
    /// version means `=`.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let err = |why: String| RangeError {
            text: text.to_owned(),
            why,
        };
        let mut bounds = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let op_len = part
                .find(|c: char| c.is_ascii_alphanumeric() || c.is_whitespace())
                .unwrap_or(part.len());
            let (op, ver) = part.split_at(op_len);
            let op = match op {
                "" | "=" | "==" => "=",
                "<" | "<=" | ">" | ">=" => op,
                other => return Err(err(format!("unknown comparison `{other}`"))),
            };
            let version = Version::parse(&padded(ver.trim())).map_err(|e| err(e.to_string()))?;
            bounds.push(Bound {
                op: op.to_owned(),
                version,
            });
        }
        Ok(Range {
            text: text.to_owned(),
            bounds,
        })
    }

    /// Whether `v` is inside the range (build metadata ignored).
    pub fn contains(&self, v: &Version) -> bool {
        self.bounds.iter().all(|b| {
            let o = v.cmp_precedence(&b.version);
            match b.op.as_str() {
                "<" => o.is_lt(),
                "<=" => o.is_le(),
                ">" => o.is_gt(),
                ">=" => o.is_ge(),
                _ => o.is_eq(),
            }
        })
    }
}

/// `2` → `2.0.0`, `v2.0` → `v2.0.0`: ranges often name partial versions.
fn padded(v: &str) -> String {
    let digits = v.trim_start_matches('v');
    let parts = digits.split('.').count();
    if digits
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && parts < 3
    {
        format!("{v}{}", ".0".repeat(3 - parts))
    } else {
        v.to_owned()
    }
}

/// A security advisory about a component's releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    /// Its id (`GHSA-xxxx-xxxx-xxxx`).
    pub id: String,
    /// Its CVE, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve: Option<String>,
    /// How severe.
    pub severity: Severity,
    /// One line about it.
    pub summary: String,
    /// Where to read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The vulnerable ranges (any one matching means affected).
    pub vulnerable: Vec<Range>,
    /// The first fixed versions upstream names, when it does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<Version>,
}

impl Advisory {
    /// Whether `v` is affected.
    pub fn affects(&self, v: &Version) -> bool {
        self.vulnerable.iter().any(|r| r.contains(v))
    }

    /// The lowest version above `installed` that the advisory does not
    /// affect, among `candidates` (sorted or not); `None` when none is.
    pub fn fixed_above<'a>(
        &self,
        installed: &Version,
        candidates: impl IntoIterator<Item = &'a Version>,
    ) -> Option<&'a Version> {
        candidates
            .into_iter()
            .filter(|v| v.cmp_precedence(installed).is_gt() && !self.affects(v))
            .min_by(|a, b| a.cmp_precedence(b))
    }
}

/// An advisory that affects an installed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The component.
    pub component: String,
    /// The version installed.
    pub installed: Version,
    /// The advisory id.
    pub id: String,
    /// Its CVE, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve: Option<String>,
    /// How severe.
    pub severity: Severity,
    /// One line about it.
    pub summary: String,
    /// Where to read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The lowest released version that is not affected, else the first
    /// fixed version upstream names, else `None` (no fix yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<Version>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is affected by {} ({}): {}",
            self.component, self.installed, self.id, self.severity, self.summary
        )?;
        match &self.fixed_in {
            Some(v) => write!(f, "; fixed in {v}"),
            None => f.write_str("; no fixed release yet"),
        }
    }
}

/// The advisories in `advisories` that affect `installed`, each with the
/// lowest release in `released` that fixes it.
pub fn findings(
    component: &str,
    installed: &Version,
    advisories: &[Advisory],
    released: &[&Version],
) -> Vec<Finding> {
    advisories
        .iter()
        .filter(|a| a.affects(installed))
        .map(|a| Finding {
            component: component.to_owned(),
            installed: installed.clone(),
            id: a.id.clone(),
            cve: a.cve.clone(),
            severity: a.severity,
            summary: a.summary.clone(),
            url: a.url.clone(),
            fixed_in: a
                .fixed_above(installed, released.iter().copied())
                .cloned()
                .or_else(|| {
                    a.fixed
                        .iter()
                        .filter(|v| v.cmp_precedence(installed).is_gt())
                        .min_by(|x, y| x.cmp_precedence(y))
                        .cloned()
                }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn adv(range: &str) -> Advisory {
        Advisory {
            id: "GHSA-aaaa-bbbb-cccc".into(),
            cve: None,
            severity: Severity::High,
            summary: "a hole".into(),
            url: None,
            vulnerable: vec![Range::parse(range).unwrap()],
            fixed: vec![],
        }
    }

    #[test]
    fn github_range_syntax() {
        let r = Range::parse(">= 1.0.0, < 1.2.3").unwrap();
        assert!(r.contains(&v("1.0.0")));
        assert!(r.contains(&v("1.2.2")));
        assert!(!r.contains(&v("1.2.3")));
        assert!(!r.contains(&v("0.9.9")));
        assert!(Range::parse("= v0.17.0").unwrap().contains(&v("0.17.0")));
        assert!(Range::parse("0.17.0").unwrap().contains(&v("0.17.0")));
        assert!(Range::parse("<= 2.0").unwrap().contains(&v("2.0.0")));
        assert!(Range::parse("").unwrap().contains(&v("9.9.9")));
        let e = Range::parse("~> 1.0").unwrap_err();
        assert!(e.to_string().contains("unknown comparison `~>`"), "{e}");
        assert!(Range::parse("< banana").is_err());
    }

    #[test]
    fn findings_name_the_lowest_released_fix() {
        let a = adv(">= 1.0.0, < 1.2.0");
        let released = [v("1.1.0"), v("1.2.0"), v("1.3.0")];
        let released: Vec<&Version> = released.iter().collect();
        let f = findings("x", &v("1.1.0"), std::slice::from_ref(&a), &released);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].fixed_in, Some(v("1.2.0")));
        assert!(
            f[0].to_string()
                .contains("x 1.1.0 is affected by GHSA-aaaa-bbbb-cccc (high)"),
            "{}",
            f[0]
        );
        assert!(findings("x", &v("1.2.0"), std::slice::from_ref(&a), &released).is_empty());
        let none = findings("x", &v("1.1.0"), &[a], &[&v("1.1.0")]);
        assert_eq!(none[0].fixed_in, None);
        assert!(none[0].to_string().ends_with("no fixed release yet"));
    }
}
