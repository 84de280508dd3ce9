//! What upstream publishes: releases and their downloadable assets.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::version::Version;

/// One upstream release of a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Its version.
    pub version: Version,
    /// The tag it was published under (`v1.9.1`).
    pub tag: String,
    /// When it was published, when known.
    pub published_at: Option<Timestamp>,
    /// Upstream marked it a pre-release.
    pub prerelease: bool,
    /// Its downloadable files (empty when only versions are known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<Asset>,
    /// Its release page (`https://github.com/<repo>/releases/tag/<tag>`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its release notes as upstream wrote them (Markdown), at most
    /// [`MAX_NOTES`] bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The most bytes of one release's notes kept (Prometheus' longest notes
/// are about 20 KiB); longer notes are cut at a line end and marked.
pub const MAX_NOTES: usize = 64 * 1024;

/// Notes cut to [`MAX_NOTES`] at a line end, with a line saying so.
pub fn bounded_notes(notes: String) -> String {
    if notes.len() <= MAX_NOTES {
        return notes;
    }
    let mut end = MAX_NOTES;
    while !notes.is_char_boundary(end) {
        end -= 1;
    }
    let end = notes[..end].rfind('\n').unwrap_or(end);
    format!(
        "{}\n[… {} more bytes of notes not kept]",
        &notes[..end],
        notes.len() - end
    )
}

/// A downloadable file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// The file name (`node_exporter-1.9.1.linux-amd64.tar.gz`).
    pub name: String,
    /// Where to download it (`https://…`, `http://127.0.0.1…` or `file://…`).
    pub url: String,
    /// Its size, when the API says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The API's digest (`sha256:<hex>`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Release {
    /// A release with a tag `v<version>` and no assets.
    pub fn new(version: Version, published_at: Option<Timestamp>) -> Self {
        let prerelease = version.is_prerelease();
        Release {
            tag: format!("v{version}"),
            version,
            published_at,
            prerelease,
            assets: Vec::new(),
            url: None,
            notes: None,
        }
    }

    /// The asset with this exact name.
    pub fn asset(&self, name: &str) -> Option<&Asset> {
        self.assets.iter().find(|a| a.name == name)
    }
}
