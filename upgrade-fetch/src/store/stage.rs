//! Staging: download into the cache (resumable), verify by the ladder
//! (pinned digest → API digest → checksum file), unpack into
//! `<version>.partial/` (a raw asset is renamed there, not copied), check
//! the binaries, write the marker, rename into place.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use upgrade_core::catalog::{ArchiveKind, ChecksumsSignature};
use upgrade_core::config::Component;
use upgrade_core::planner::{Asset, Release};
use upgrade_core::ports::{Proof, Staged};
use upgrade_core::version::Version;
use upgrade_state::fsutil;

use super::Store;
use super::error::{Error, io_err};
use super::marker::Marker;
use crate::download::download;
use crate::{extract, verify};

/// The largest checksum file read (upstream's hold a few dozen lines).
pub const MAX_CHECKSUMS: u64 = 4 * 1024 * 1024;

/// A release asset downloaded and verified, in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The asset, as the release lists it.
    pub asset: Asset,
    /// Where the download is.
    pub path: std::path::PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// How it was verified.
    pub proof: Proof,
}

/// The SHA-256 of a file; logs (debug) how many bytes were hashed, which
/// `scripts/bench-ops` counts to show a run hashes a binary at most once.
fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            log::debug!("hashed {total} bytes of {}", path.display());
            return Ok(hex::encode(h.finalize()));
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
}

impl Store {
    /// Adopts an unmanaged install: the binary (and the component's other
    /// binaries found beside it) are copied into `<version>/` with a marker
    /// (proof `adopted`), `current` points there, and with `replace` each
    /// binary is replaced by a link into `current`; without, the binaries are
    /// left as they are and the links are made in the bin directory. A no-op
    /// (besides those links) when the component has a `current`.
    pub fn adopt(
        &self,
        comp: &Component,
        binary: &Path,
        version: &Version,
        replace: bool,
    ) -> Result<(), Error> {
        if self.current(&comp.name)?.is_some() {
            if !replace {
                self.link_binaries(comp)?;
            }
            return Ok(());
        }
        let final_dir = self.release_dir(&comp.name, version);
        if Marker::read(&final_dir).is_none() {
            let partial = final_dir.with_file_name(format!("{version}.partial"));
            if partial.exists() {
                fs::remove_dir_all(&partial).map_err(io_err("cannot remove", &partial))?;
            }
            fsutil::create_dir_all_mode(&partial, 0o755)?;
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
        if !replace {
            // A binary the tool must not touch (a package's): links in the
            // bin directory only; the unit is redirected to them.
            return self.link_binaries(comp);
        }
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

    /// The staged release when complete and every binary still has the digest recorded at staging.
    pub fn staged(&self, component: &str, version: &Version) -> Result<Option<Staged>, Error> {
        let dir = self.release_dir(component, version);
        let Some(marker) = Marker::read(&dir) else {
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

    fn select_asset<'r>(&self, comp: &Component, release: &'r Release) -> Result<&'r Asset, Error> {
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

    /// A small file of a release (a checksum file, a signature), bounded.
    fn small_file(&self, url: &str, what: &'static str) -> Result<Vec<u8>, Error> {
        if let Some(path) = url.strip_prefix("file://") {
            return upgrade_state::fsutil::read_capped(Path::new(path), MAX_CHECKSUMS)
                .map_err(io_err(what, Path::new(path)));
        }
        let answer = self.http.get(url, &[], false)?;
        answer.bytes(MAX_CHECKSUMS).map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::Io {
                action: "refusing",
                path: crate::http::without_query(url).into(),
                cause: std::io::Error::other(format!("over the limit of {MAX_CHECKSUMS} bytes")),
            },
            e => self.http.transport_error(url, &e).into(),
        })
    }

    /// The expected digest and how it is known, strongest first: a pinned
    /// digest; a signed checksum file when the component calls for a
    /// signature; the API's digest; the checksum file.
    fn expected_digest(
        &self,
        comp: &Component,
        release: &Release,
        asset: &Asset,
    ) -> Result<Option<(String, Proof)>, Error> {
        let v = release.version.to_string();
        if let Some(d) = comp
            .sha256
            .get(&v)
            .or_else(|| comp.sha256.get(&format!("v{v}")))
        {
            return Ok(Some((d.to_ascii_lowercase(), Proof::Pinned)));
        }
        let sums_name = comp.spec.checksums_name(&release.version, &self.platform);
        let sums = sums_name.as_deref().and_then(|n| release.asset(n));
        let signer = comp.spec.checksums_signature(&release.version);
        let signature = match (signer, &sums_name) {
            (Some(signer), Some(name)) => {
                let sig_name = signer.file_name(name);
                match (sums, release.asset(&sig_name)) {
                    (Some(sums), Some(sig)) => Some((signer, sums, sig)),
                    _ if comp.spec.allow_unsigned => {
                        log::warn!(
                            "{} {}: {sig_name} is missing; going on unsigned, as allow_unsigned \
                             asks",
                            comp.name,
                            release.version
                        );
                        None
                    }
                    _ => {
                        return Err(Error::SignatureMissing {
                            component: comp.name.clone(),
                            version: release.version.clone(),
                            file: name.clone(),
                            signature: sig_name,
                        });
                    }
                }
            }
            (Some(signer), None) if !comp.spec.allow_unsigned => {
                return Err(Error::SignatureMissing {
                    component: comp.name.clone(),
                    version: release.version.clone(),
                    file: "(no checksum file is known for it)".into(),
                    signature: match signer {
                        ChecksumsSignature::Minisign { .. } => "a .minisig".into(),
                        ChecksumsSignature::Sigstore(_) => "a Sigstore bundle".into(),
                    },
                });
            }
            _ => None,
        };
        if signature.is_none()
            && let Some(d) = asset.digest.as_deref().and_then(verify::api_digest)
        {
            return Ok(Some((d, Proof::ApiDigest)));
        }
        let (Some(name), Some(sums)) = (sums_name, sums) else {
            return Ok(None);
        };
        let bytes = self.small_file(&sums.url, "cannot read checksum file")?;
        let proof = match signature {
            Some((signer, _, sig)) => {
                let sig_text = self.small_file(&sig.url, "cannot read signature")?;
                let by = match signer {
                    ChecksumsSignature::Minisign { key } => {
                        verify::minisign(key, &bytes, &sig_text)
                    }
                    ChecksumsSignature::Sigstore(spec) => {
                        let root = sigstore_trusted_root(comp)?;
                        verify::sigstore(spec, root.as_deref(), &bytes, &sig_text)
                    }
                }
                .map_err(|why| Error::SignatureInvalid {
                    component: comp.name.clone(),
                    version: release.version.clone(),
                    file: name.clone(),
                    signature: sig.name.clone(),
                    why,
                })?;
                Proof::Signed {
                    file: name.clone(),
                    by,
                }
            }
            None => Proof::ChecksumFile { name: name.clone() },
        };
        let text = String::from_utf8_lossy(&bytes);
        match verify::parse_checksums(&text).remove(&asset.name) {
            Some(d) => Ok(Some((d, proof))),
            None => Err(Error::NotInChecksums {
                component: comp.name.clone(),
                version: release.version.clone(),
                file: name,
                asset: asset.name.clone(),
            }),
        }
    }

    /// Downloads a release's asset for this platform into the cache and
    /// verifies it by the ladder (pinned digest, signed checksum file, API
    /// digest, checksum file): what staging unpacks, and what a controller
    /// pins or copies into a mirror. A mismatch removes the download.
    pub fn fetch_verified(
        &self,
        comp: &Component,
        release: &Release,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Fetched, Error> {
        let asset = self.select_asset(comp, release)?;
        let expected = self.expected_digest(comp, release, asset)?;
        if expected.is_none() && !comp.spec.allow_unverified {
            return Err(Error::Unverifiable {
                component: comp.name.clone(),
                version: release.version.clone(),
                asset: asset.name.clone(),
            });
        }
        if let Some(size) = asset.size.filter(|s| *s > self.max_download) {
            return Err(Error::Io {
                action: "refusing to download",
                path: crate::http::without_query(&asset.url).into(),
                cause: io::Error::other(format!(
                    "the release lists it at {size} bytes, over the download limit of {} bytes",
                    self.max_download
                )),
            });
        }
        let part = self.download_path(&comp.name, &release.version, &asset.name);
        let parent = part.parent().expect("download path has a parent");
        // Downloads are root's alone: nobody can plant a link as the `.part`.
        fsutil::create_dir_all_mode(parent, 0o700)?;
        let got = download(&self.http, &asset.url, &part, self.max_download, progress)?;
        let proof = match expected {
            Some((want, proof)) => {
                if want != got.sha256 {
                    let _ = fs::remove_file(&part);
                    let proof_name = match &proof {
                        Proof::Pinned => "pinned".to_owned(),
                        Proof::Signed { file, .. } => format!("signed checksum-file ({file})"),
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
        Ok(Fetched {
            asset: asset.clone(),
            path: got.path,
            sha256: got.sha256,
            size: got.bytes,
            proof,
        })
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
        let Fetched {
            asset,
            path,
            sha256,
            proof,
            ..
        } = self.fetch_verified(comp, release, progress)?;
        let asset = &asset;
        let final_dir = self.release_dir(&comp.name, &release.version);
        let partial = final_dir.with_file_name(format!("{}.partial", release.version));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io_err("cannot remove", &partial))?;
        }
        // The store is read by services that run as their own users.
        fsutil::create_dir_all_mode(&partial, 0o755)?;
        let result = self.fill_partial(comp, release, asset, &path, &sha256, &proof, &partial);
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
        let _ = fs::remove_file(&path);
        Ok(Staged {
            component: comp.name.clone(),
            version: release.version.clone(),
            dir: final_dir,
            sha256,
            proof,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn fill_partial(
        &self,
        comp: &Component,
        release: &Release,
        asset: &Asset,
        archive: &Path,
        sha256: &str,
        proof: &Proof,
        partial: &Path,
    ) -> Result<(), Error> {
        let top = comp.spec.top_dir_name(&release.version, &self.platform);
        let binaries = comp.spec.binary_paths(&release.version, &self.platform);
        let raw_name = binaries.first().map_or(comp.name.clone(), |b| b.0.clone());
        let mut files = BTreeMap::new();
        let kind = comp.spec.archive_for(&release.version);
        let raw = kind == ArchiveKind::Raw;
        if raw && self.move_raw(archive, &partial.join(&raw_name))? {
            // The binary is the download itself: its digest is the one verified.
            files.insert(raw_name.clone(), sha256.to_owned());
        } else {
            extract::extract(
                archive,
                kind,
                partial,
                top.as_deref(),
                &raw_name,
                self.limits,
            )?;
        }
        for (name, path) in &binaries {
            let rel = match &top {
                Some(t) => path.strip_prefix(&format!("{t}/")).unwrap_or(path),
                None => path.as_str(),
            };
            let rel = if raw { raw_name.as_str() } else { rel };
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
            // A binary is executable whatever mode the archive stored (a zip
            // made elsewhere may store none, a tarball 0644).
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755))
                .map_err(io_err("cannot make executable", &to))?;
            if !files.contains_key(name) {
                let digest = sha256_file(&to).map_err(io_err("cannot hash", &to))?;
                files.insert(name.clone(), digest);
            }
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

    /// Moves a verified raw download to `to` (mode 0755) by one rename, so
    /// that a large binary is neither copied nor read again. `false` when it
    /// cannot be renamed there (another file system, or over the unpacked
    /// size limit): the caller copies it through the extractor instead.
    fn move_raw(&self, download: &Path, to: &Path) -> Result<bool, Error> {
        let size = fs::metadata(download)
            .map_err(io_err("cannot read", download))?
            .len();
        if size > self.limits.max_bytes {
            return Ok(false);
        }
        match fs::rename(download, to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => return Ok(false),
            Err(e) => return Err(io_err("cannot move the download to", to)(e)),
        }
        fs::set_permissions(to, fs::Permissions::from_mode(0o755))
            .map_err(io_err("cannot set the mode of", to))?;
        File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(io_err("cannot sync", to))?;
        Ok(true)
    }
}

/// The text of the component's `sigstore_trusted_root`, bounded; `None`
/// for the built-in public-good root.
pub fn sigstore_trusted_root(comp: &Component) -> Result<Option<String>, Error> {
    let Some(path) = &comp.spec.sigstore_trusted_root else {
        return Ok(None);
    };
    let path = Path::new(path);
    let bytes = upgrade_state::fsutil::read_capped(path, MAX_CHECKSUMS)
        .map_err(io_err("cannot read the Sigstore trusted root", path))?;
    String::from_utf8(bytes).map(Some).map_err(|_| Error::Io {
        action: "cannot read the Sigstore trusted root",
        path: path.into(),
        cause: io::Error::other("it is not UTF-8 text; give a trusted_root.json"),
    })
}
