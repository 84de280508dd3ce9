//! Pin files: the targets a controller resolved once, for a fleet.
//!
//! A controller runs `obs-upgrade pin`: it lists the releases once,
//! downloads and verifies each target, and writes per component the exact
//! version, the asset this platform installs with its SHA-256, the files
//! mirrored beside it and how the controller verified it. A host applying
//! with the file lists nothing upstream: [`PinnedReleases`] answers the
//! release port from the file alone, and [`PinFile::apply_digests`] makes
//! each pinned digest the top rung of the verification ladder.
//!
//! ```
//! use upgrade_core::catalog::Platform;
//! use upgrade_core::config::{Format, Stack};
//! use upgrade_core::pins::PinFile;
//!
//! let stack = Stack::from_text("components:\n  node_exporter: {}\n", Format::Yaml, "s", None)
//!     .unwrap();
//! let text = r#"{"format": 1, "created_at": "2026-11-01T00:00:00Z",
//!   "platform": {"os": "linux", "arch": "amd64"},
//!   "components": {"node_exporter": {"repo": "prometheus/node_exporter",
//!     "version": "1.9.1", "tag": "v1.9.1",
//!     "asset": {"name": "node_exporter-1.9.1.linux-amd64.tar.gz",
//!       "url": "https://example.org/node_exporter-1.9.1.linux-amd64.tar.gz",
//!       "size": 1, "sha256": "0000000000000000000000000000000000000000000000000000000000000000"},
//!     "verification": "checksum file sha256sums.txt"}}}"#;
//! let pins = PinFile::from_json(text, "pins.json").unwrap();
//! pins.check(&stack, &Platform::new("linux", "amd64")).unwrap();
//! assert!(pins.check(&stack, &Platform::new("linux", "arm64")).is_err());
//! ```

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::Platform;
use crate::config::{Component, Stack};
use crate::ports::{PortError, ReleaseSource};
use crate::release::{Asset, Release};
use crate::version::Version;

/// The pin file format this version writes and reads.
pub const FORMAT: u32 = 1;
/// The largest pin file read (a thousand components is about 1 MiB).
pub const MAX_PIN_FILE: u64 = 4 << 20;
/// The most components one pin file may hold.
pub const MAX_PINNED: usize = 1000;
/// The most files mirrored beside one pinned asset.
pub const MAX_FILES: usize = 16;

/// A pin file: the fleet's targets, resolved once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinFile {
    /// [`FORMAT`].
    pub format: u32,
    /// When the controller resolved it.
    pub created_at: Timestamp,
    /// The platform its assets are for.
    pub platform: PinPlatform,
    /// Where hosts download from by default: a mirror (`http(s)://…` or a
    /// directory) laid out as `<mirror>/<component>/<tag>/<file>`; none:
    /// each asset's upstream `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// The pinned components.
    pub components: BTreeMap<String, Pin>,
}

/// A platform, as in a pin file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinPlatform {
    /// `linux`, …
    pub os: String,
    /// `amd64`, `arm64`, …
    pub arch: String,
}

impl From<&Platform> for PinPlatform {
    fn from(p: &Platform) -> Self {
        PinPlatform {
            os: p.os.clone(),
            arch: p.arch.clone(),
        }
    }
}

impl std::fmt::Display for PinPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)
    }
}

/// One pinned component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The upstream repository (`prometheus/node_exporter`): a host whose
    /// stack names another one for the component refuses the file.
    pub repo: String,
    /// The exact version.
    pub version: Version,
    /// The tag it was published under.
    pub tag: String,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Timestamp>,
    /// Its release page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_url: Option<String>,
    /// The asset this platform installs.
    pub asset: PinnedAsset,
    /// Files mirrored beside it (the checksum file, its signature).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PinnedAsset>,
    /// How the controller verified the asset (`checksum file
    /// sha256sums.txt`, `API digest`, `signed …`).
    pub verification: String,
}

/// A file of a pinned release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedAsset {
    /// Its file name.
    pub name: String,
    /// Where upstream serves it.
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// Why a pin file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// Not valid JSON or not a pin file.
    #[error(
        "{file}:{line}:{column}: not a pin file: {message}; write it again with `obs-upgrade pin`"
    )]
    Syntax {
        /// The file.
        file: String,
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A value that is out of bounds or malformed.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, and where.
        message: String,
    },
    /// The file does not fit this host.
    #[error("the pin file does not fit this host: {message}")]
    Mismatch {
        /// What does not match, and what to do.
        message: String,
    },
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A file name a mirror can hold: no path, nothing hidden, bounded.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && !s.contains(['/', '\\', '\0', '\n', '\r'])
}

impl PinFile {
    /// Parses and validates a pin file (`file` names it in errors).
    pub fn from_json(text: &str, file: &str) -> Result<PinFile, PinError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let pins: PinFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            PinError::Syntax {
                file: file.to_owned(),
                line: inner.line(),
                column: inner.column(),
                message: if path == "." {
                    inner.to_string()
                } else {
                    format!("at {path}: {inner}")
                },
            }
        })?;
        pins.validate(file)?;
        Ok(pins)
    }

    /// The file as written (pretty JSON, a final newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a pin file serializes");
        s.push('\n');
        s
    }

    fn validate(&self, file: &str) -> Result<(), PinError> {
        let bad = |message: String| PinError::Invalid {
            file: file.to_owned(),
            message,
        };
        if self.format != FORMAT {
            return Err(bad(format!(
                "pin file format {} is not the one this obs-upgrade reads ({FORMAT}); write it \
                 again with this version's `obs-upgrade pin`",
                self.format
            )));
        }
        if self.components.len() > MAX_PINNED {
            return Err(bad(format!(
                "{} components pinned, over the limit of {MAX_PINNED}",
                self.components.len()
            )));
        }
        for (name, pin) in &self.components {
            if let Err(why) = crate::names::check_name(name) {
                return Err(bad(format!("component {name:?}: {why}")));
            }
            if pin.files.len() > MAX_FILES {
                return Err(bad(format!(
                    "{name}: {} files, over the limit of {MAX_FILES}",
                    pin.files.len()
                )));
            }
            if !is_plain_name(&pin.tag) {
                return Err(bad(format!(
                    "{name}: tag {:?} is not a plain name",
                    pin.tag
                )));
            }
            for a in std::iter::once(&pin.asset).chain(&pin.files) {
                if !is_plain_name(&a.name) {
                    return Err(bad(format!(
                        "{name}: file name {:?} is not a plain file name",
                        a.name
                    )));
                }
                if !is_sha256(&a.sha256) {
                    return Err(bad(format!(
                        "{name}: {}: sha256 {:?} is not 64 lowercase hex digits",
                        a.name, a.sha256
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks the file against a host: its platform, and the same
    /// components (same repositories, same asset names) as its stack.
    pub fn check(&self, stack: &Stack, platform: &Platform) -> Result<(), PinError> {
        let mismatch = |message: String| PinError::Mismatch { message };
        let here = PinPlatform::from(platform);
        if self.platform != here {
            return Err(mismatch(format!(
                "it pins assets for {} but this host is {here}; resolve a pin file for {here} \
                 (`obs-upgrade pin --platform {here}`)",
                self.platform
            )));
        }
        let extra: Vec<&str> = self
            .components
            .keys()
            .filter(|k| !stack.components.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !extra.is_empty() {
            return Err(mismatch(format!(
                "it pins {} that this host's stack file does not have; write the same stack \
                 file on the controller and the hosts, then pin again",
                extra.join(", ")
            )));
        }
        let missing: Vec<&str> = stack
            .components
            .keys()
            .filter(|k| !self.components.contains_key(*k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(mismatch(format!(
                "the stack file has {} that it does not pin (a pinned host asks no release API); \
                 pin again with this stack file",
                missing.join(", ")
            )));
        }
        for (name, pin) in &self.components {
            let spec = &stack.components[name].spec;
            if spec.repo != pin.repo {
                return Err(mismatch(format!(
                    "{name} is pinned from {} but this host's stack takes it from {}; pin again \
                     with this stack file",
                    pin.repo, spec.repo
                )));
            }
            let want = spec.asset_name(&pin.version, platform);
            if want != pin.asset.name {
                return Err(mismatch(format!(
                    "{name} {} is pinned as {} but this host's stack installs {want}; pin again \
                     with this stack file",
                    pin.version, pin.asset.name
                )));
            }
        }
        Ok(())
    }

    /// Makes each pinned digest the stack's pinned digest for its version:
    /// staging verifies against it before anything else.
    pub fn apply_digests(&self, stack: &mut Stack) {
        for (name, pin) in &self.components {
            if let Some(c) = stack.components.get_mut(name) {
                c.sha256
                    .insert(pin.version.to_string(), pin.asset.sha256.clone());
            }
        }
    }
}

/// Where a mirror keeps a release's file: `<mirror>/<component>/<tag>/<name>`
/// (a directory becomes a `file://` URL).
pub fn mirror_url(mirror: &str, component: &str, tag: &str, name: &str) -> String {
    let base = mirror.trim_end_matches('/');
    if base.starts_with("http://") || base.starts_with("https://") || base.starts_with("file://") {
        format!("{base}/{component}/{tag}/{name}")
    } else {
        format!("file://{base}/{component}/{tag}/{name}")
    }
}

/// The release port answered from a pin file alone: each component has
/// exactly its pinned release, its files at the mirror (or upstream), and
/// no advisories (they were looked at when the controller pinned).
#[derive(Debug, Clone)]
pub struct PinnedReleases {
    pins: PinFile,
    mirror: Option<String>,
}

impl PinnedReleases {
    /// Answers from `pins`, downloading from `mirror` when given, else the
    /// file's own mirror, else upstream.
    pub fn new(pins: PinFile, mirror: Option<String>) -> Self {
        let mirror = mirror.or_else(|| pins.mirror.clone());
        PinnedReleases { pins, mirror }
    }

    /// The pin file.
    pub fn pins(&self) -> &PinFile {
        &self.pins
    }

    /// The mirror downloads come from (none: upstream).
    pub fn mirror(&self) -> Option<&str> {
        self.mirror.as_deref()
    }

    /// A component's pinned release.
    pub fn release(&self, component: &str) -> Option<Release> {
        let pin = self.pins.components.get(component)?;
        let file = |a: &PinnedAsset| Asset {
            name: a.name.clone(),
            url: match &self.mirror {
                Some(m) => mirror_url(m, component, &pin.tag, &a.name),
                None => a.url.clone(),
            },
            size: Some(a.size),
            digest: Some(format!("sha256:{}", a.sha256)),
        };
        Some(Release {
            version: pin.version.clone(),
            tag: pin.tag.clone(),
            published_at: pin.published_at,
            prerelease: pin.version.is_prerelease(),
            assets: std::iter::once(&pin.asset)
                .chain(&pin.files)
                .map(file)
                .collect(),
            url: pin.release_url.clone(),
            notes: None,
        })
    }
}

impl ReleaseSource for PinnedReleases {
    fn releases(&self, component: &Component) -> Result<Vec<Release>, PortError> {
        self.release(&component.name)
            .map(|r| vec![r])
            .ok_or_else(|| format!("{} is not in the pin file; pin again", component.name).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Format;

    fn pins(name: &str, asset: &str) -> String {
        format!(
            r#"{{"format": 1, "created_at": "2026-11-01T00:00:00Z",
            "platform": {{"os": "linux", "arch": "amd64"}},
            "components": {{"{name}": {{"repo": "prometheus/node_exporter",
              "version": "1.9.1", "tag": "v1.9.1",
              "asset": {{"name": "{asset}", "url": "https://up/x", "size": 3,
                "sha256": "{}"}},
              "files": [{{"name": "sha256sums.txt", "url": "https://up/s", "size": 1,
                "sha256": "{}"}}],
              "verification": "checksum file sha256sums.txt"}}}}}}"#,
            "a".repeat(64),
            "b".repeat(64)
        )
    }

    fn stack() -> Stack {
        Stack::from_text(
            "components:\n  node_exporter: {}\n",
            Format::Yaml,
            "s.yaml",
            None,
        )
        .expect("stack")
    }

    const ASSET: &str = "node_exporter-1.9.1.linux-amd64.tar.gz";

    #[test]
    fn a_pin_file_round_trips_and_answers_one_release_from_the_mirror() {
        let p = PinFile::from_json(&pins("node_exporter", ASSET), "p").expect("parses");
        assert_eq!(PinFile::from_json(&p.to_json(), "p").expect("again"), p);
        p.check(&stack(), &Platform::new("linux", "amd64"))
            .expect("fits");
        let src = PinnedReleases::new(p.clone(), Some("http://m:8080/".into()));
        let r = src.release("node_exporter").expect("pinned");
        assert_eq!(r.version.to_string(), "1.9.1");
        assert_eq!(
            r.assets[0].url,
            format!("http://m:8080/node_exporter/v1.9.1/{ASSET}")
        );
        assert_eq!(r.assets[1].name, "sha256sums.txt");
        let dir = PinnedReleases::new(p.clone(), Some("/srv/mirror".into()));
        assert_eq!(
            dir.release("node_exporter").expect("pinned").assets[0].url,
            format!("file:///srv/mirror/node_exporter/v1.9.1/{ASSET}")
        );
        let up = PinnedReleases::new(p.clone(), None);
        assert_eq!(
            up.release("node_exporter").expect("pinned").assets[0].url,
            "https://up/x"
        );
        let mut s = stack();
        p.apply_digests(&mut s);
        assert_eq!(
            s.components["node_exporter"].sha256["1.9.1"],
            "a".repeat(64)
        );
    }

    #[test]
    fn a_pin_file_for_another_host_is_refused_with_what_to_do() {
        let p = PinFile::from_json(&pins("node_exporter", ASSET), "p").expect("parses");
        let e = p
            .check(&stack(), &Platform::new("linux", "arm64"))
            .expect_err("platform");
        assert!(
            e.to_string()
                .contains("linux/amd64 but this host is linux/arm64"),
            "{e}"
        );
        let other = Stack::from_text(
            "components:\n  node_exporter: {}\n  mysqld_exporter: {}\n",
            Format::Yaml,
            "s.yaml",
            None,
        )
        .expect("stack");
        let e = p
            .check(&other, &Platform::new("linux", "amd64"))
            .expect_err("missing");
        assert!(
            e.to_string()
                .contains("mysqld_exporter that it does not pin"),
            "{e}"
        );
        let p = PinFile::from_json(&pins("node_exporter", "other.tar.gz"), "p").expect("parses");
        let e = p
            .check(&stack(), &Platform::new("linux", "amd64"))
            .expect_err("asset");
        assert!(
            e.to_string().contains("installs node_exporter-1.9.1"),
            "{e}"
        );
    }

    #[test]
    fn hostile_pin_files_are_refused_with_where() {
        let e = PinFile::from_json("{\"format\": 1,\n \"bogus\": 2}", "p.json").expect_err("key");
        assert!(e.to_string().starts_with("p.json:2:"), "{e}");
        let text = pins("node_exporter", "../../etc/passwd");
        let e = PinFile::from_json(&text, "p").expect_err("path");
        assert!(e.to_string().contains("not a plain file name"), "{e}");
        let text = pins("node_exporter", ASSET).replace(&"a".repeat(64), "zz");
        let e = PinFile::from_json(&text, "p").expect_err("digest");
        assert!(e.to_string().contains("not 64 lowercase hex"), "{e}");
        let text = pins("node_exporter", ASSET).replace("\"format\": 1", "\"format\": 2");
        let e = PinFile::from_json(&text, "p").expect_err("format");
        assert!(e.to_string().contains("format 2"), "{e}");
    }
}
