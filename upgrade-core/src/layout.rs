//! Where things live under a root (`/` on a real host, a directory in a sandbox).

use std::path::{Path, PathBuf};

/// The on-disk layout under a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The root.
    pub root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn under(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// A host path (`/etc/prometheus/prometheus.yml`) under the root.
    pub fn host(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// `etc/obs-upgrade`.
    pub fn config_dir(&self) -> PathBuf {
        self.host("/etc/obs-upgrade")
    }

    /// `opt/obs-upgrade`: the store.
    pub fn store_dir(&self) -> PathBuf {
        self.host("/opt/obs-upgrade")
    }

    /// `usr/local/bin`.
    pub fn bin_dir(&self) -> PathBuf {
        self.host("/usr/local/bin")
    }

    /// `var/lib/obs-upgrade`.
    pub fn state_dir(&self) -> PathBuf {
        self.host("/var/lib/obs-upgrade")
    }

    /// `var/cache/obs-upgrade`.
    pub fn cache_dir(&self) -> PathBuf {
        self.host("/var/cache/obs-upgrade")
    }

    /// `var/lib/obs-upgrade/backups/<run>/<key>`.
    pub fn backup_dir(&self, run_id: &str, key: &str) -> PathBuf {
        self.state_dir()
            .join("backups")
            .join(run_id)
            .join(key.replace(['/', ':'], "_"))
    }

    /// `etc/systemd/system`.
    pub fn unit_dir(&self) -> PathBuf {
        self.host("/etc/systemd/system")
    }

    /// The root itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
