//! The marker of a complete release directory: what was installed, how it
//! was proven, and the digest of every binary.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use upgrade_core::ports::Proof;
use upgrade_core::version::Version;
use upgrade_state::fsutil;

use super::error::Error;

/// The marker written into every complete release directory.
pub const MARKER: &str = ".obs-upgrade-release.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Marker {
    pub(super) component: String,
    pub(super) version: Version,
    pub(super) asset: String,
    pub(super) sha256: String,
    pub(super) proof: Proof,
    pub(super) staged_at: jiff::Timestamp,
    pub(super) files: BTreeMap<String, String>,
}

impl Marker {
    /// Writes the marker into a release directory and fsyncs it.
    pub(super) fn write(&self, dir: &Path) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(self).expect("marker encodes");
        Ok(fsutil::atomic_write_mode(
            &dir.join(MARKER),
            &bytes,
            None,
            0o644,
        )?)
    }

    /// The marker of a release directory, when it has a readable one.
    pub(super) fn read(dir: &Path) -> Option<Marker> {
        serde_json::from_slice(&fs::read(dir.join(MARKER)).ok()?).ok()
    }
}
