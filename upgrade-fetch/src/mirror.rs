//! Filling a mirror for a fleet: the releases of a pin file copied into a
//! directory laid out as `<mirror>/<component>/<tag>/<file>`, each file
//! checked against its pinned digest before it is put in place, then an
//! `index.json` per component so that the directory can be served over
//! http(s) by any web server.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use upgrade_core::pins::{PinFile, PinnedAsset, mirror_url};
use upgrade_state::fsutil;

use crate::download::{self, download};
use crate::http::Http;
use crate::sources::{IndexAsset, IndexEntry, read_mirror};

/// Why a mirror could not be filled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A download failed.
    #[error("{component}: {source}")]
    Download {
        /// The component.
        component: String,
        /// Why.
        #[source]
        source: download::Error,
    },
    /// A file is not what the pin file says.
    #[error(
        "{component}: {url} has sha256 {actual}, the pin file says {expected}; the source does \
         not serve what was pinned, so nothing was put in the mirror for it (check the source, \
         or pin again)"
    )]
    Mismatch {
        /// The component.
        component: String,
        /// Where it came from.
        url: String,
        /// The pinned digest.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// The mirror directory could not be written.
    #[error(transparent)]
    Io(#[from] fsutil::IoError),
}

/// One file of a fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filled {
    /// The component.
    pub component: String,
    /// The release's tag.
    pub tag: String,
    /// The file name.
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// Whether it was copied now (false: it was there with the right digest).
    pub copied: bool,
}

/// What a fill did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FillReport {
    /// Every pinned file, copied or already there.
    pub files: Vec<Filled>,
    /// The index files written.
    pub indexes: Vec<PathBuf>,
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
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

/// Copies every pinned file into `dest` (from `from`, another mirror given
/// as a directory or an `http(s)://` URL, else from upstream), each checked
/// against its pinned digest before it is renamed into place; a file
/// already there with the right digest is left alone. Then writes
/// `<component>/<tag>/release.json` and `<component>/index.json` for every
/// pinned component. Files are world-readable: a web server serves them.
pub fn fill(
    http: &Http,
    pins: &PinFile,
    dest: &Path,
    from: Option<&str>,
    max_download: u64,
) -> Result<FillReport, Error> {
    let mut report = FillReport::default();
    for (component, pin) in &pins.components {
        let dir = dest.join(component).join(&pin.tag);
        fsutil::create_dir_all_mode(&dir, 0o755)?;
        for file in std::iter::once(&pin.asset).chain(&pin.files) {
            let copied = fill_one(http, component, &pin.tag, file, &dir, from, max_download)?;
            report.files.push(Filled {
                component: component.clone(),
                tag: pin.tag.clone(),
                name: file.name.clone(),
                bytes: file.size,
                copied,
            });
        }
        let meta = serde_json::json!({
            "published_at": pin.published_at,
            "url": pin.release_url,
        });
        write_public(
            &dir.join("release.json"),
            serde_json::to_string_pretty(&meta)
                .expect("json")
                .as_bytes(),
        )?;
        report.indexes.push(write_index(dest, component)?);
    }
    Ok(report)
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), fsutil::IoError> {
    fsutil::atomic_write_mode(path, bytes, None, 0o644)
}

/// Copies one file unless it is there already; true when copied.
fn fill_one(
    http: &Http,
    component: &str,
    tag: &str,
    file: &PinnedAsset,
    dir: &Path,
    from: Option<&str>,
    max_download: u64,
) -> Result<bool, Error> {
    let to = dir.join(&file.name);
    if sha256_of(&to).is_ok_and(|d| d == file.sha256) {
        return Ok(false);
    }
    let url = match from {
        Some(m) => mirror_url(m, component, tag, &file.name),
        None => file.url.clone(),
    };
    // Per process: two fills of one mirror never write into one file.
    let part = dir.join(format!(".{}.{}.part", file.name, std::process::id()));
    let cap = max_download.min(file.size.saturating_add(1)).max(1);
    let got = download(http, &url, &part, cap, &mut |_, _| {}).map_err(|source| {
        let _ = fs::remove_file(&part);
        Error::Download {
            component: component.to_owned(),
            source,
        }
    })?;
    if got.sha256 != file.sha256 {
        let _ = fs::remove_file(&part);
        return Err(Error::Mismatch {
            component: component.to_owned(),
            url,
            expected: file.sha256.clone(),
            actual: got.sha256,
        });
    }
    fs::set_permissions(&part, fs::Permissions::from_mode(0o644))
        .map_err(fsutil::io_err("cannot set the mode of", &part))?;
    fs::rename(&part, &to).map_err(fsutil::io_err("cannot put in place", &to))?;
    fsutil::sync_dir(dir)?;
    Ok(true)
}

/// Writes `<mirror>/<component>/index.json` from what the directory holds
/// (every release directory, each file with its size and SHA-256).
pub fn write_index(mirror: &Path, component: &str) -> Result<PathBuf, Error> {
    let dir = mirror.join(component);
    let releases = read_mirror(mirror, component)
        .map_err(fsutil::io_err("cannot read the mirror directory", &dir))?;
    let mut entries = Vec::new();
    for r in releases {
        let mut assets = Vec::new();
        for a in r.assets {
            let path = dir.join(&r.tag).join(&a.name);
            if a.name.starts_with('.') {
                continue;
            }
            let sha = sha256_of(&path).map_err(fsutil::io_err("cannot read", &path))?;
            assets.push(IndexAsset {
                name: a.name,
                size: a.size,
                sha256: Some(sha),
            });
        }
        entries.push(IndexEntry {
            tag: r.tag,
            published_at: r.published_at,
            prerelease: r.prerelease,
            url: r.url,
            notes: r.notes,
            assets,
        });
    }
    entries.sort_by(|a, b| a.tag.cmp(&b.tag));
    let path = dir.join("index.json");
    let mut text = serde_json::to_string_pretty(&entries).expect("json");
    text.push('\n');
    write_public(&path, text.as_bytes())?;
    Ok(path)
}
