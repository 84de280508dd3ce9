//! Why staging or a store operation failed.

use std::io;
use std::path::{Path, PathBuf};

use upgrade_core::version::Version;
use upgrade_state::fsutil;

use crate::{download, extract};

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
    /// The component calls for a signature and none is published.
    #[error(
        "{component} {version}: {file} is not signed ({signature} is missing) and {component} \
         requires a signature; refusing to install it (set `allow_unsigned: true` for \
         {component} to accept unsigned releases)"
    )]
    SignatureMissing {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// The signed file.
        file: String,
        /// The signature file expected.
        signature: String,
    },
    /// A signature is present and does not verify.
    #[error(
        "{component} {version}: the signature {signature} does not verify {file}: {why}; \
         refusing to install it (the file was changed, or signed by another key or identity)"
    )]
    SignatureInvalid {
        /// The component.
        component: String,
        /// The version.
        version: Version,
        /// The signed file.
        file: String,
        /// The signature file.
        signature: String,
        /// What failed.
        why: String,
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

pub(super) fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

pub(super) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |cause| Error::Io {
        action,
        path: path.to_owned(),
        cause,
    }
}
