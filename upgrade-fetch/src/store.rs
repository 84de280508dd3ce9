//! The versioned install store: `<store>/<component>/<version>/` directories
//! that are complete and verified, a `current` symlink switched by one
//! `rename(2)`, and a `last-good` symlink that pruning never passes.
//!
//! Staging: download into the cache (resumable), verify by the ladder
//! (pinned digest → API digest → checksum file), extract into
//! `<version>.partial/`, check the binaries, write the marker, rename.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use upgrade_core::catalog::Platform;
use upgrade_core::config::Component;
use upgrade_core::planner::Release;
use upgrade_core::ports::{ArtifactStore, PortError, Proof, Staged};
use upgrade_core::version::Version;
use upgrade_state::fsutil;

use crate::download::{self, download};
use crate::extract::{self, Limits};
use crate::http::Http;
use crate::verify;

/// The marker written into every complete release directory.
pub const MARKER: &str = ".obs-upgrade-release.json";

/// Why staging or a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No asset with the expected name.
    #[error(
        "{component} {version} has no asset named `{expected}` for {platform}; candidates: {}",
        list_or_none(candidates)
    )]
    NoAsset {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// The expected name.
        expected: String,
        /// `os/arch`.
        platform: String,
        /// Assets that look like builds for the platform.
        candidates: Vec<String>,
    },
    /// Several assets with the expected name.
    #[error(
        "{component} {version} has several assets named `{expected}`: {}; refusing to guess",
        urls.join(", ")
    )]
    SeveralAssets {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// The name.
        expected: String,
        /// Their URLs.
        urls: Vec<String>,
    },
    /// Nothing proves the download genuine.
    #[error(
        "nothing proves {component} {version} ({asset}) genuine: no pinned sha256, no API digest, \
         no checksum file; refusing to install it (set `allow_unverified: true` for \
         {component} to install anyway)"
    )]
    Unverifiable {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// The asset.
        asset: String,
    },
    /// The checksum file does not list the asset.
    #[error(
        "the checksum file {file} of {component} {version} does not list {asset}; refusing to \
            install it"
    )]
    NotInChecksums {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// The checksum file.
        file: String,
        /// The asset.
        asset: String,
    },
    /// The digest does not match.
    #[error(
        "{asset} does not match its {proof} digest (expected {expected}, got {actual}); the \
            partial download was removed, try again or check the mirror"
    )]
    Mismatch {
        /// The asset.
        asset: String,
        /// Which proof.
        proof: String,
        /// The expected SHA-256.
        expected: String,
        /// What was downloaded.
        actual: String,
    },
    /// The release lacks a binary the catalog names.
    #[error(
        "{component} {version}: the archive has no `{path}` for binary `{binary}`; the catalog \
            entry may be wrong for this release; the partial release was removed"
    )]
    MissingBinary {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// The binary.
        binary: String,
        /// Where it was expected.
        path: String,
    },
    /// The version is not staged.
    #[error("{component} {version} is not in the store; stage it first")]
    NotStaged {
        /// The component.
        component: String,
        /// The version.
        version: Version,
    },
    /// Removing the current or last known-good version.
    #[error("refusing to remove {component} {version}: it is the {what} version")]
    Protected {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// `current` or `last known-good`.
        what: &'static str,
    },
    /// Downloading failed.
    #[error(transparent)]
    Download(#[from] download::Error),
    /// The request for the checksum file failed.
    #[error(transparent)]
    Http(#[from] crate::http::Error),
    /// Extraction refused the archive.
    #[error("{0}; the partial release was removed")]
    Extract(#[from] extract::Error),
    /// File system trouble.
    #[error("{action} {}: {cause}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
}

impl From<fsutil::IoError> for Error {
    fn from(e: fsutil::IoError) -> Self {
        Error::Io {
            action: e.action,
            path: e.path,
            cause: e.cause,
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |cause| Error::Io {
        action,
        path: path.to_owned(),
        cause,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    component: String,
    version: Version,
    asset: String,
    sha256: String,
    proof: Proof,
    staged_at: jiff::Timestamp,
    files: BTreeMap<String, String>,
}

impl Marker {
    /// Writes the marker into a release directory and fsyncs it.
    fn write(&self, dir: &Path) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(self).expect("marker encodes");
        Ok(fsutil::atomic_write_mode(
            &dir.join(MARKER),
            &bytes,
            None,
            0o644,
        )?)
    }
}

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

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
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
            fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        }
        Ok(fsutil::atomic_symlink(target, path)?)
    }

    /// Adopts an unmanaged install: the binary (and the component's other
    /// binaries found beside it) are copied into `<version>/` with a marker
    /// (proof `adopted`), `current` points there, and each binary is replaced
    /// by a link into `current`. A no-op when the component has a `current`.
    pub fn adopt(&self, comp: &Component, binary: &Path, version: &Version) -> Result<(), Error> {
        if self.current(&comp.name)?.is_some() {
            return Ok(());
        }
        let final_dir = self.release_dir(&comp.name, version);
        if Self::read_marker(&final_dir).is_none() {
            let partial = final_dir.with_file_name(format!("{version}.partial"));
            if partial.exists() {
                fs::remove_dir_all(&partial).map_err(io_err("cannot remove", &partial))?;
            }
            fs::create_dir_all(&partial).map_err(io_err("cannot create", &partial))?;
            let result = (|| {
                let beside = binary.parent().unwrap_or(Path::new("/"));
                let mut files = BTreeMap::new();
                for (i, b) in comp.spec.binaries.iter().enumerate() {
                    let src = if i == 0 {
                        binary.to_owned()
                    } else {
                        beside.join(&b.name)
                    };
                    if !src.exists() {
                        continue;
                    }
                    let to = partial.join(&b.name);
                    // fs::copy follows links and keeps the mode.
                    fs::copy(&src, &to).map_err(io_err("cannot copy", &src))?;
                    File::open(&to)
                        .and_then(|f| f.sync_all())
                        .map_err(io_err("cannot sync", &to))?;
                    files.insert(
                        b.name.clone(),
                        sha256_file(&to).map_err(io_err("cannot hash", &to))?,
                    );
                }
                let main = files
                    .get(comp.spec.main_binary())
                    .cloned()
                    .unwrap_or_default();
                let marker = Marker {
                    component: comp.name.clone(),
                    version: version.clone(),
                    asset: format!("adopted from {}", binary.display()),
                    sha256: main,
                    proof: Proof::Adopted,
                    staged_at: jiff::Timestamp::now(),
                    files,
                };
                marker.write(&partial)
            })();
            if let Err(e) = result {
                let _ = fs::remove_dir_all(&partial);
                return Err(e);
            }
            fs::rename(&partial, &final_dir).map_err(io_err("cannot complete", &final_dir))?;
        }
        self.switch(&comp.name, version)?;
        self.mark_good(&comp.name, version)?;
        let beside = binary.parent().unwrap_or(Path::new("/")).to_owned();
        for (i, b) in comp.spec.binaries.iter().enumerate() {
            let path = if i == 0 {
                binary.to_owned()
            } else {
                beside.join(&b.name)
            };
            if i == 0 || path.exists() {
                Self::replace_with_link(
                    &path,
                    &self.dir.join(&comp.name).join("current").join(&b.name),
                )?;
            }
        }
        Ok(())
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

    fn read_marker(dir: &Path) -> Option<Marker> {
        serde_json::from_slice(&fs::read(dir.join(MARKER)).ok()?).ok()
    }

    /// The staged release when complete and every binary still has the digest recorded at staging.
    pub fn staged(&self, component: &str, version: &Version) -> Result<Option<Staged>, Error> {
        let dir = self.release_dir(component, version);
        let Some(marker) = Self::read_marker(&dir) else {
            return Ok(None);
        };
        for (name, digest) in &marker.files {
            match sha256_file(&dir.join(name)) {
                Ok(d) if &d == digest => {}
                Ok(_) | Err(_) => {
                    log::warn!(
                        "{} is damaged ({name} changed or missing); it will be staged again",
                        dir.display()
                    );
                    return Ok(None);
                }
            }
        }
        Ok(Some(Staged {
            component: component.into(),
            version: version.clone(),
            dir,
            sha256: marker.sha256,
            proof: marker.proof,
        }))
    }

    fn select_asset<'r>(
        &self,
        comp: &Component,
        release: &'r Release,
    ) -> Result<&'r upgrade_core::planner::Asset, Error> {
        let expected = comp.spec.asset_name(&release.version, &self.platform);
        let matching: Vec<_> = release
            .assets
            .iter()
            .filter(|a| a.name == expected)
            .collect();
        match matching.as_slice() {
            [one] => Ok(one),
            [] => {
                let arch = comp
                    .spec
                    .arch_names
                    .get(&self.platform.arch)
                    .unwrap_or(&self.platform.arch);
                let candidates = release
                    .assets
                    .iter()
                    .filter(|a| {
                        a.name.contains(&self.platform.os) && a.name.contains(arch.as_str())
                    })
                    .map(|a| a.name.clone())
                    .collect();
                Err(Error::NoAsset {
                    component: comp.name.clone(),
                    version: release.version.clone(),
                    expected,
                    platform: format!("{}/{}", self.platform.os, self.platform.arch),
                    candidates,
                })
            }
            several => Err(Error::SeveralAssets {
                component: comp.name.clone(),
                version: release.version.clone(),
                expected,
                urls: several.iter().map(|a| a.url.clone()).collect(),
            }),
        }
    }

    /// The expected digest and how it is known, strongest first.
    fn expected_digest(
        &self,
        comp: &Component,
        release: &Release,
        asset: &upgrade_core::planner::Asset,
    ) -> Result<Option<(String, Proof)>, Error> {
        let v = release.version.to_string();
        if let Some(d) = comp
            .sha256
            .get(&v)
            .or_else(|| comp.sha256.get(&format!("v{v}")))
        {
            return Ok(Some((d.to_ascii_lowercase(), Proof::Pinned)));
        }
        if let Some(d) = asset.digest.as_deref().and_then(verify::api_digest) {
            return Ok(Some((d, Proof::ApiDigest)));
        }
        let Some(name) = comp.spec.checksums_name(&release.version, &self.platform) else {
            return Ok(None);
        };
        let Some(sums) = release.asset(&name) else {
            return Ok(None);
        };
        let text = if let Some(path) = sums.url.strip_prefix("file://") {
            fs::read_to_string(path)
                .map_err(io_err("cannot read checksum file", Path::new(path)))?
        } else {
            let answer = self.http.get(&sums.url, &[], false)?;
            answer
                .text(4 * 1024 * 1024)
                .map_err(|e| self.http.transport_error(&sums.url, &e))?
        };
        match verify::parse_checksums(&text).remove(&asset.name) {
            Some(d) => Ok(Some((d, Proof::ChecksumFile { name }))),
            None => Err(Error::NotInChecksums {
                component: comp.name.clone(),
                version: release.version.clone(),
                file: name,
                asset: asset.name.clone(),
            }),
        }
    }

    /// Downloads, verifies and extracts a release; a no-op when already staged.
    pub fn stage(
        &self,
        comp: &Component,
        release: &Release,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Staged, Error> {
        if let Some(s) = self.staged(&comp.name, &release.version)? {
            return Ok(s);
        }
        let asset = self.select_asset(comp, release)?;
        let expected = self.expected_digest(comp, release, asset)?;
        if expected.is_none() && !comp.spec.allow_unverified {
            return Err(Error::Unverifiable {
                component: comp.name.clone(),
                version: release.version.clone(),
                asset: asset.name.clone(),
            });
        }
        let part = self.download_path(&comp.name, &release.version, &asset.name);
        let parent = part.parent().expect("download path has a parent");
        fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        let got = download(&self.http, &asset.url, &part, self.max_download, progress)?;
        let proof = match expected {
            Some((want, proof)) => {
                if want != got.sha256 {
                    let _ = fs::remove_file(&part);
                    let proof_name = match &proof {
                        Proof::Pinned => "pinned".to_owned(),
                        Proof::ApiDigest => "API".to_owned(),
                        Proof::ChecksumFile { name } => format!("checksum-file ({name})"),
                        Proof::Unverified | Proof::Adopted => "unverified".to_owned(),
                    };
                    return Err(Error::Mismatch {
                        asset: asset.name.clone(),
                        proof: proof_name,
                        expected: want,
                        actual: got.sha256,
                    });
                }
                proof
            }
            None => {
                log::warn!(
                    "installing {} {} unverified, as allow_unverified asks",
                    comp.name,
                    release.version
                );
                Proof::Unverified
            }
        };

        let final_dir = self.release_dir(&comp.name, &release.version);
        let partial = final_dir.with_file_name(format!("{}.partial", release.version));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io_err("cannot remove", &partial))?;
        }
        fs::create_dir_all(&partial).map_err(io_err("cannot create", &partial))?;
        let result = self.fill_partial(
            comp,
            release,
            asset,
            &got.path,
            &got.sha256,
            &proof,
            &partial,
        );
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
        if final_dir.exists() {
            // A damaged earlier copy (its marker or files did not check out).
            fs::remove_dir_all(&final_dir).map_err(io_err("cannot replace damaged", &final_dir))?;
        }
        fs::rename(&partial, &final_dir).map_err(io_err("cannot complete", &final_dir))?;
        let comp_dir = final_dir.parent().expect("release dir has a parent");
        File::open(comp_dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("cannot sync", comp_dir))?;
        let _ = fs::remove_file(&got.path);
        Ok(Staged {
            component: comp.name.clone(),
            version: release.version.clone(),
            dir: final_dir,
            sha256: got.sha256,
            proof,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn fill_partial(
        &self,
        comp: &Component,
        release: &Release,
        asset: &upgrade_core::planner::Asset,
        archive: &Path,
        sha256: &str,
        proof: &Proof,
        partial: &Path,
    ) -> Result<(), Error> {
        let top = comp.spec.top_dir_name(&release.version, &self.platform);
        let binaries = comp.spec.binary_paths(&release.version, &self.platform);
        let raw_name = binaries.first().map_or(comp.name.clone(), |b| b.0.clone());
        extract::extract(
            archive,
            comp.spec.archive,
            partial,
            top.as_deref(),
            &raw_name,
            self.limits,
        )?;
        let mut files = BTreeMap::new();
        for (name, path) in &binaries {
            let rel = match &top {
                Some(t) => path.strip_prefix(&format!("{t}/")).unwrap_or(path),
                None => path.as_str(),
            };
            let rel = if comp.spec.archive == upgrade_core::catalog::ArchiveKind::Raw {
                raw_name.as_str()
            } else {
                rel
            };
            let from = partial.join(rel);
            if !from.is_file() {
                return Err(Error::MissingBinary {
                    component: comp.name.clone(),
                    version: release.version.clone(),
                    binary: name.clone(),
                    path: path.clone(),
                });
            }
            let to = partial.join(name);
            if from != to {
                fs::rename(&from, &to).map_err(io_err("cannot place binary", &to))?;
            }
            files.insert(
                name.clone(),
                sha256_file(&to).map_err(io_err("cannot hash", &to))?,
            );
        }
        let marker = Marker {
            component: comp.name.clone(),
            version: release.version.clone(),
            asset: asset.name.clone(),
            sha256: sha256.to_owned(),
            proof: proof.clone(),
            staged_at: jiff::Timestamp::now(),
            files,
        };
        marker.write(partial)?;
        Ok(())
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
        if Self::read_marker(&self.release_dir(component, version)).is_none() {
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
            .filter(|v| Self::read_marker(&self.release_dir(component, v)).is_some())
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
    ) -> Result<(), PortError> {
        Ok(Store::adopt(self, component, binary, version)?)
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
