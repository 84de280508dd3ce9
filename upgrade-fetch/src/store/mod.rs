//! The versioned install store: `<store>/<component>/<version>/` directories
//! that are complete and verified, a `current` symlink switched by one
//! `rename(2)`, and a `last-good` symlink that pruning never passes.
//!
//! Staging (in `stage`): download into the cache, verify, unpack, check,
//! mark, rename into place. Errors are in `error`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use upgrade_core::catalog::Platform;
use upgrade_core::config::Component;
use upgrade_core::planner::Release;
use upgrade_core::ports::{ArtifactStore, PortError, Proof, Staged};
use upgrade_core::version::Version;
use upgrade_state::fsutil;

use crate::extract::Limits;
use crate::http::Http;

mod error;
mod marker;
mod stage;

pub use error::Error;
use error::io_err;
pub use marker::MARKER;
use marker::Marker;
pub use stage::{Fetched, MAX_CHECKSUMS, sigstore_trusted_root};

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    bin_dir: PathBuf,
    dir: PathBuf,
    cache: PathBuf,
    http: Http,
    platform: Platform,
    limits: Limits,
    max_download: u64,
}

impl Store {
    /// A store in `dir` (`<root>/opt/obs-upgrade`) with downloads in `cache`
    /// (`<root>/var/cache/obs-upgrade`).
    pub fn new(
        dir: impl Into<PathBuf>,
        cache: impl Into<PathBuf>,
        http: Http,
        platform: Platform,
    ) -> Self {
        Store {
            bin_dir: PathBuf::from("/usr/local/bin"),
            dir: dir.into(),
            cache: cache.into(),
            http,
            platform,
            limits: Limits::default(),
            max_download: 1024 * 1024 * 1024,
        }
    }

    /// Overrides the extraction limits and the download size cap.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits, max_download: u64) -> Self {
        self.limits = limits;
        self.max_download = max_download;
        self
    }

    /// Where binary links go (`<root>/usr/local/bin`; that is the default with root `/`).
    #[must_use]
    pub fn with_bin_dir(mut self, bin_dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = bin_dir.into();
        self
    }

    /// Replaces `path` by a symlink to `target` with one rename.
    fn replace_with_link(path: &Path, target: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            fsutil::create_dir_all_mode(dir, 0o755)?;
        }
        Ok(fsutil::atomic_symlink(target, path)?)
    }

    /// `<bin_dir>/<binary>` → `<store>/<component>/current/<binary>` for every binary.
    pub fn link_binaries(&self, comp: &Component) -> Result<(), Error> {
        for b in &comp.spec.binaries {
            Self::replace_with_link(
                &self.bin_dir.join(&b.name),
                &self.dir.join(&comp.name).join("current").join(&b.name),
            )?;
        }
        Ok(())
    }

    /// Free bytes on the file system of the store (or its nearest existing parent).
    pub fn free_bytes(&self) -> Result<u64, Error> {
        let mut at = self.dir.as_path();
        while !at.exists() {
            at = at.parent().unwrap_or(Path::new("/"));
        }
        let st = rustix::fs::statvfs(at).map_err(|e| Error::Io {
            action: "cannot read free space of",
            path: at.to_owned(),
            cause: e.into(),
        })?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<store>/<component>/<version>`.
    pub fn release_dir(&self, component: &str, version: &Version) -> PathBuf {
        self.dir.join(component).join(version.to_string())
    }

    /// How a release in the store was proven genuine when it was staged
    /// (read from its marker, without checking its files again); `None`
    /// when it is not staged.
    pub fn proof(&self, component: &str, version: &Version) -> Option<Proof> {
        Marker::read(&self.release_dir(component, version)).map(|m| m.proof)
    }

    fn download_path(&self, component: &str, version: &Version, asset: &str) -> PathBuf {
        self.cache
            .join("downloads")
            .join(format!("{component}-{version}-{asset}.part"))
    }

    /// Removes leftover `<version>.partial` directories (call at start, under the run lock).
    pub fn cleanup_partials(&self) -> Result<Vec<PathBuf>, Error> {
        let mut removed = Vec::new();
        let Ok(components) = fs::read_dir(&self.dir) else {
            return Ok(removed);
        };
        for c in components.flatten() {
            let Ok(entries) = fs::read_dir(c.path()) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".partial") {
                    fs::remove_dir_all(e.path()).map_err(io_err("cannot remove", &e.path()))?;
                    log::info!("removed leftover partial release {}", e.path().display());
                    removed.push(e.path());
                }
            }
        }
        Ok(removed)
    }

    fn link_version(&self, component: &str, link: &str) -> Result<Option<Version>, Error> {
        let path = self.dir.join(component).join(link);
        match fs::read_link(&path) {
            Ok(target) => Ok(target
                .file_name()
                .and_then(|n| Version::parse(&n.to_string_lossy()).ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("cannot read link", &path)(e)),
        }
    }

    fn set_link(&self, component: &str, link: &str, version: &Version) -> Result<(), Error> {
        if Marker::read(&self.release_dir(component, version)).is_none() {
            return Err(Error::NotStaged {
                component: component.into(),
                version: version.clone(),
            });
        }
        let path = self.dir.join(component).join(link);
        Ok(fsutil::atomic_symlink(
            Path::new(&version.to_string()),
            &path,
        )?)
    }

    /// The active version.
    pub fn current(&self, component: &str) -> Result<Option<Version>, Error> {
        self.link_version(component, "current")
    }

    /// Points `current` at a staged version with one rename.
    pub fn switch(&self, component: &str, version: &Version) -> Result<(), Error> {
        self.set_link(component, "current", version)
    }

    /// The last version known to be healthy.
    pub fn last_good(&self, component: &str) -> Result<Option<Version>, Error> {
        self.link_version(component, "last-good")
    }

    /// Records a version as known-good (after a verified switch).
    pub fn mark_good(&self, component: &str, version: &Version) -> Result<(), Error> {
        self.set_link(component, "last-good", version)
    }

    /// Complete versions in the store, oldest first.
    pub fn versions(&self, component: &str) -> Result<Vec<Version>, Error> {
        let dir = self.dir.join(component);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot list", &dir)(e)),
        };
        let mut out: Vec<Version> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Version::parse(&e.file_name().to_string_lossy()).ok())
            .filter(|v| Marker::read(&self.release_dir(component, v)).is_some())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes a version; refuses the current and the last known-good.
    pub fn remove(&self, component: &str, version: &Version) -> Result<(), Error> {
        if self.current(component)?.as_ref() == Some(version) {
            return Err(Error::Protected {
                component: component.into(),
                version: version.clone(),
                what: "current",
            });
        }
        if self.last_good(component)?.as_ref() == Some(version) {
            return Err(Error::Protected {
                component: component.into(),
                version: version.clone(),
                what: "last known-good",
            });
        }
        let dir = self.release_dir(component, version);
        fs::remove_dir_all(&dir).map_err(io_err("cannot remove", &dir))
    }
}

impl ArtifactStore for Store {
    fn staged(&self, component: &str, version: &Version) -> Result<Option<Staged>, PortError> {
        Ok(Store::staged(self, component, version)?)
    }
    fn stage(
        &self,
        component: &Component,
        release: &Release,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Staged, PortError> {
        Ok(Store::stage(self, component, release, progress)?)
    }
    fn current(&self, component: &str) -> Result<Option<Version>, PortError> {
        Ok(Store::current(self, component)?)
    }
    fn switch(&self, component: &str, version: &Version) -> Result<(), PortError> {
        Ok(Store::switch(self, component, version)?)
    }
    fn versions(&self, component: &str) -> Result<Vec<Version>, PortError> {
        Ok(Store::versions(self, component)?)
    }
    fn remove(&self, component: &str, version: &Version) -> Result<(), PortError> {
        Ok(Store::remove(self, component, version)?)
    }
    fn adopt(
        &self,
        component: &Component,
        binary: &Path,
        version: &Version,
        replace: bool,
    ) -> Result<(), PortError> {
        Ok(Store::adopt(self, component, binary, version, replace)?)
    }
    fn link_binaries(&self, component: &Component) -> Result<(), PortError> {
        Ok(Store::link_binaries(self, component)?)
    }
    fn mark_good(&self, component: &str, version: &Version) -> Result<(), PortError> {
        Ok(Store::mark_good(self, component, version)?)
    }
    fn last_good(&self, component: &str) -> Result<Option<Version>, PortError> {
        Ok(Store::last_good(self, component)?)
    }
    fn free_bytes(&self) -> Result<u64, PortError> {
        Ok(Store::free_bytes(self)?)
    }
}
