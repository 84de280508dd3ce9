//! Safe extraction of tar.gz, zip and raw binaries into a staging directory.
//!
//! Refused: absolute paths, `..`, symlinks and hardlinks whose target leaves
//! the directory, device files and FIFOs, more than `max_entries` entries,
//! more than `max_bytes` unpacked (counted as written, not as declared, so a
//! lying header does not help a bomb). Exec bits are kept; setuid, setgid
//! and sticky bits are not. The archive's top directory is stripped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use upgrade_core::catalog::ArchiveKind;

/// Limits on what an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total bytes written.
    pub max_bytes: u64,
    /// Entries.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 2 * 1024 * 1024 * 1024,
            max_entries: 10_000,
        }
    }
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hostile or unsupported entry.
    #[error("refusing archive {}: entry `{entry}` {why}", archive.display())]
    Refused {
        /// The archive.
        archive: PathBuf,
        /// The entry's path as written.
        entry: String,
        /// Why.
        why: String,
    },
    /// A limit was exceeded.
    #[error("refusing archive {}: {what} exceeds the limit of {limit}", archive.display())]
    TooBig {
        /// The archive.
        archive: PathBuf,
        /// Bytes or entries.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The archive is damaged or truncated.
    #[error("cannot read archive {}: {cause}; it is damaged or truncated", archive.display())]
    Damaged {
        /// The archive.
        archive: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// Writing into the staging directory failed.
    #[error("cannot write {}: {cause}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
}

struct Ctx<'a> {
    archive: &'a Path,
    dest: &'a Path,
    strip: Option<&'a str>,
    limits: Limits,
    written: u64,
    entries: usize,
}

impl Ctx<'_> {
    fn refuse(&self, entry: &str, why: impl Into<String>) -> Error {
        Error::Refused {
            archive: self.archive.to_owned(),
            entry: entry.to_owned(),
            why: why.into(),
        }
    }

    fn count_entry(&mut self) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::TooBig {
                archive: self.archive.to_owned(),
                what: "the number of entries",
                limit: self.limits.max_entries as u64,
            });
        }
        Ok(())
    }

    /// The safe relative path inside `dest`, top directory stripped;
    /// `None` for the top directory itself.
    fn relative(&self, raw: &str) -> Result<Option<PathBuf>, Error> {
        let p = Path::new(raw);
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                Component::ParentDir => return Err(self.refuse(raw, "climbs out with `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.refuse(raw, "has an absolute path"));
                }
            }
        }
        if let Some(top) = self.strip {
            match out.strip_prefix(top) {
                Ok(rest) => out = rest.to_path_buf(),
                Err(_) => {
                    return Err(self.refuse(
                        raw,
                        format!("is outside the expected top directory `{top}`"),
                    ));
                }
            }
        }
        Ok((!out.as_os_str().is_empty()).then_some(out))
    }

    /// Whether a symlink target stays inside: relative and only going down
    /// (no `..` at all, which with symlinked parents could still climb out).
    fn link_stays_inside(target: &Path) -> bool {
        !target.as_os_str().is_empty()
            && target
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    }

    /// Refuses to write through a parent that is a symlink.
    fn check_parents(&self, rel: &Path, raw: &str) -> Result<(), Error> {
        let mut at = self.dest.to_owned();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            at.push(c);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(self.refuse(raw, "is written through a symbolic link"));
            }
        }
        Ok(())
    }

    /// Directories of a release are 0755 whatever the umask: services run
    /// as their own users.
    fn mkdirs(dir: &Path) -> Result<(), Error> {
        upgrade_state::fsutil::create_dir_all_mode(dir, 0o755).map_err(|e| Error::Io {
            path: e.path,
            cause: e.cause,
        })
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |cause| Error::Io {
            path: path.to_owned(),
            cause,
        }
    }

    fn write_file(
        &mut self,
        rel: &Path,
        mode: u32,
        reader: &mut dyn Read,
        raw: &str,
    ) -> Result<(), Error> {
        self.check_parents(rel, raw)?;
        let path = self.dest.join(rel);
        if let Some(parent) = path.parent() {
            Self::mkdirs(parent)?;
        }
        // Never follow something already there (a link planted by an earlier entry).
        if fs::symlink_metadata(&path).is_ok() {
            return Err(self.refuse(raw, "appears twice or replaces a link"));
        }
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(Self::io(&path))?;
        let room = self.limits.max_bytes.saturating_sub(self.written);
        let mut limited = reader.take(room + 1);
        let n = io::copy(&mut limited, &mut f).map_err(|cause| Error::Damaged {
            archive: self.archive.to_owned(),
            cause,
        })?;
        if n > room {
            return Err(Error::TooBig {
                archive: self.archive.to_owned(),
                what: "the unpacked size",
                limit: self.limits.max_bytes,
            });
        }
        self.written += n;
        // The mode given at creation is filtered by the umask; set it exactly.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(Self::io(&path))?;
        Ok(())
    }

    fn make_dir(&self, rel: &Path, raw: &str) -> Result<(), Error> {
        self.check_parents(rel, raw)?;
        let path = self.dest.join(rel);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(self.refuse(raw, "is a directory over a symbolic link"));
        }
        Self::mkdirs(&path)
    }

    fn make_symlink(&self, rel: &Path, target: &Path, raw: &str) -> Result<(), Error> {
        self.check_parents(rel, raw)?;
        if !Self::link_stays_inside(target) {
            return Err(self.refuse(
                raw,
                format!(
                    "is a link to `{}`, outside the release directory",
                    target.display()
                ),
            ));
        }
        let path = self.dest.join(rel);
        if let Some(parent) = path.parent() {
            Self::mkdirs(parent)?;
        }
        std::os::unix::fs::symlink(target, &path).map_err(Self::io(&path))
    }
}

/// Extracts `archive` into `dest` (which must exist and be empty).
pub fn extract(
    archive: &Path,
    kind: ArchiveKind,
    dest: &Path,
    strip: Option<&str>,
    raw_name: &str,
    limits: Limits,
) -> Result<(), Error> {
    let mut ctx = Ctx {
        archive,
        dest,
        strip,
        limits,
        written: 0,
        entries: 0,
    };
    let damaged = |cause: io::Error| Error::Damaged {
        archive: archive.to_owned(),
        cause,
    };
    let file = File::open(archive).map_err(damaged)?;
    match kind {
        ArchiveKind::Raw => {
            ctx.count_entry()?;
            let mut f = file;
            ctx.write_file(Path::new(raw_name), 0o755, &mut f, raw_name)
        }
        ArchiveKind::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            for entry in tar.entries().map_err(damaged)? {
                let mut entry = entry.map_err(damaged)?;
                ctx.count_entry()?;
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let kind = entry.header().entry_type();
                // PAX and GNU extension headers are handled by the tar crate.
                let Some(rel) = ctx.relative(&raw)? else {
                    continue;
                };
                let mode = entry.header().mode().unwrap_or(0o644);
                match kind {
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        ctx.write_file(&rel, mode, &mut entry, &raw)?;
                    }
                    tar::EntryType::Directory => ctx.make_dir(&rel, &raw)?,
                    tar::EntryType::Symlink => {
                        let target = entry
                            .link_name()
                            .map_err(damaged)?
                            .ok_or_else(|| ctx.refuse(&raw, "is a link without a target"))?;
                        ctx.make_symlink(&rel, &target, &raw)?;
                    }
                    tar::EntryType::Link => {
                        let target = entry
                            .link_name()
                            .map_err(damaged)?
                            .ok_or_else(|| ctx.refuse(&raw, "is a link without a target"))?;
                        let target_s = target.to_string_lossy().into_owned();
                        let inside = ctx.relative(&target_s).map_err(|_| {
                            ctx.refuse(
                                &raw,
                                format!(
                                    "is a hard link to `{target_s}`, outside the release directory"
                                ),
                            )
                        })?;
                        let Some(inside) = inside else {
                            return Err(ctx.refuse(&raw, "is a hard link to a directory"));
                        };
                        let from = dest.join(&inside);
                        let not_earlier = || {
                            let why = format!(
                                "is a hard link to `{target_s}`, which is not an earlier file \
                                 of the archive"
                            );
                            ctx.refuse(&raw, why)
                        };
                        let meta = fs::symlink_metadata(&from).map_err(|_| not_earlier())?;
                        if !meta.is_file() {
                            return Err(
                                ctx.refuse(&raw, "is a hard link to something other than a file")
                            );
                        }
                        ctx.check_parents(&rel, &raw)?;
                        ctx.check_parents(&inside, &raw)?;
                        let to = dest.join(&rel);
                        fs::hard_link(&from, &to).map_err(Ctx::io(&to))?;
                    }
                    tar::EntryType::XGlobalHeader
                    | tar::EntryType::XHeader
                    | tar::EntryType::GNULongName
                    | tar::EntryType::GNULongLink => {}
                    other => {
                        return Err(ctx.refuse(
                            &raw,
                            format!("is a {other:?} entry (devices, FIFOs and others are refused)"),
                        ));
                    }
                }
            }
            Ok(())
        }
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(file).map_err(|e| damaged(io::Error::other(e)))?;
            if zip.len() > ctx.limits.max_entries {
                return Err(Error::TooBig {
                    archive: archive.to_owned(),
                    what: "the number of entries",
                    limit: ctx.limits.max_entries as u64,
                });
            }
            for i in 0..zip.len() {
                let mut f = zip.by_index(i).map_err(|e| damaged(io::Error::other(e)))?;
                ctx.count_entry()?;
                let raw = f.name().to_owned();
                let Some(rel) = ctx.relative(&raw)? else {
                    continue;
                };
                let mode = f.unix_mode().unwrap_or(0o644);
                let file_type = mode & 0o170_000;
                if f.is_dir() {
                    ctx.make_dir(&rel, &raw)?;
                } else if file_type == 0o120_000 {
                    let mut target = String::new();
                    f.read_to_string(&mut target).map_err(damaged)?;
                    ctx.make_symlink(&rel, Path::new(&target), &raw)?;
                } else if file_type == 0 || file_type == 0o100_000 {
                    ctx.write_file(&rel, mode, &mut f, &raw)?;
                } else {
                    return Err(ctx.refuse(&raw, "is a device, FIFO or socket"));
                }
            }
            Ok(())
        }
    }
}
