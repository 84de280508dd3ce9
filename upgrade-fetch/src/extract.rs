//! Safe extraction of tar.gz, zip and raw binaries into a staging directory.
//!
//! Refused: absolute paths, `..`, symlinks and hardlinks whose target leaves
//! the directory, device files, FIFOs and sparse files, more than
//! `max_entries` entries, more than `max_bytes` unpacked (counted as
//! written, not as declared, so a lying header does not help a bomb).
//!
//! Every header field is read with a bound before it is kept: tar GNU long
//! names and PAX records (`max_header`), names and link targets (`max_name`),
//! the bytes inflated out of the gzip stream (`max_stream`, so a skipped entry
//! cannot make the process inflate forever), and a zip's central directory
//! (`max_index`, checked from its end record before the zip reader loads it).
//! Exec bits are kept; setuid, setgid and sticky
//! bits are not. The archive's top directory is stripped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use upgrade_core::catalog::ArchiveKind;

/// Limits on what an archive may unpack to and on what is read to get there.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total bytes written (2 GiB).
    pub max_bytes: u64,
    /// Entries, extension headers included (10,000).
    pub max_entries: usize,
    /// One entry's name or link target, in bytes (4,096, Linux's `PATH_MAX`).
    pub max_name: usize,
    /// One tar extension header: a GNU long name or link, a PAX record
    /// block (64 KiB).
    pub max_header: u64,
    /// A zip archive's central directory (16 MiB).
    pub max_index: u64,
    /// Bytes inflated out of a tar.gz stream, headers and skipped data
    /// included (2 GiB + 64 MiB): a bomb hidden in data that is never
    /// written out still stops here.
    pub max_stream: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 2 * 1024 * 1024 * 1024,
            max_entries: 10_000,
            max_name: 4096,
            max_header: 64 * 1024,
            max_index: 16 * 1024 * 1024,
            max_stream: (2 * 1024 + 64) * 1024 * 1024,
        }
    }
}

/// An entry name as an error shows it: at most 200 characters.
fn shown(raw: &str) -> String {
    upgrade_core::names::shorten(raw, 200)
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
            entry: shown(entry),
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

    /// An entry's name or link target as text, refused over `max_name`.
    fn name(&self, bytes: &[u8], what: &str) -> Result<String, Error> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        if bytes.len() > self.limits.max_name {
            return Err(self.refuse(
                &text,
                format!(
                    "has a {what} of {} bytes, over the limit of {} bytes",
                    bytes.len(),
                    self.limits.max_name
                ),
            ));
        }
        if bytes.contains(&0) {
            return Err(self.refuse(&text, format!("has a NUL byte in its {what}")));
        }
        Ok(text)
    }

    fn link_target(&self, link: Option<&[u8]>, raw: &str) -> Result<String, Error> {
        let link = link.ok_or_else(|| self.refuse(raw, "is a link without a target"))?;
        self.name(link, "link target")
    }

    /// A read error of the archive: the stream cap in our words, anything
    /// else as damage.
    fn stream_error(&self, cause: io::Error) -> Error {
        if cause
            .get_ref()
            .is_some_and(<dyn std::error::Error + Send + Sync>::is::<CapReached>)
        {
            return Error::TooBig {
                archive: self.archive.to_owned(),
                what: "the bytes inflated from the compressed stream",
                limit: self.limits.max_stream,
            };
        }
        Error::Damaged {
            archive: self.archive.to_owned(),
            cause,
        }
    }

    fn hard_link(&self, rel: &Path, target: &str, raw: &str) -> Result<(), Error> {
        let inside = self.relative(target).map_err(|_| {
            self.refuse(
                raw,
                format!(
                    "is a hard link to `{}`, outside the release directory",
                    shown(target)
                ),
            )
        })?;
        let Some(inside) = inside else {
            return Err(self.refuse(raw, "is a hard link to a directory"));
        };
        let from = self.dest.join(&inside);
        let not_earlier = || {
            let why = format!(
                "is a hard link to `{}`, which is not an earlier file of the archive",
                shown(target)
            );
            self.refuse(raw, why)
        };
        let meta = fs::symlink_metadata(&from).map_err(|_| not_earlier())?;
        if !meta.is_file() {
            return Err(self.refuse(raw, "is a hard link to something other than a file"));
        }
        self.check_parents(rel, raw)?;
        self.check_parents(&inside, raw)?;
        let to = self.dest.join(rel);
        fs::hard_link(&from, &to).map_err(Self::io(&to))
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
        let n = io::copy(&mut limited, &mut f).map_err(|cause| self.stream_error(cause))?;
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
                    shown(&target.to_string_lossy())
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

/// The marker error of a [`Capped`] stream that reached its cap.
#[derive(Debug)]
struct CapReached;

impl std::fmt::Display for CapReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the archive inflates to more than the limit")
    }
}

impl std::error::Error for CapReached {}

/// A reader that fails once `left` bytes have been read.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other(CapReached));
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// What tar extension headers say about the next entry.
#[derive(Default)]
struct Extensions {
    gnu_path: Option<Vec<u8>>,
    gnu_link: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    pax_link: Option<Vec<u8>>,
    size: Option<u64>,
}

/// An entry's path, link target and size from its extension headers.
struct Resolved {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

/// The entry name shown for an extension header that is refused.
const EXTENSION: &str = "(extension header)";

impl Extensions {
    /// Reads `entry` (with a bound) when it is an extension header and
    /// keeps what it says; `false` for an ordinary entry.
    fn take_header<R: Read>(
        &mut self,
        ctx: &Ctx<'_>,
        kind: tar::EntryType,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<bool, Error> {
        let what = match kind {
            tar::EntryType::GNULongName => "a GNU long-name header",
            tar::EntryType::GNULongLink => "a GNU long-link header",
            tar::EntryType::XHeader => "a PAX header",
            tar::EntryType::XGlobalHeader => "a PAX global header",
            _ => return Ok(false),
        };
        if entry.size() > ctx.limits.max_header {
            return Err(Error::TooBig {
                archive: ctx.archive.to_owned(),
                what,
                limit: ctx.limits.max_header,
            });
        }
        let mut data = Vec::new();
        entry
            .take(ctx.limits.max_header + 1)
            .read_to_end(&mut data)
            .map_err(|e| ctx.stream_error(e))?;
        let twice = || ctx.refuse(EXTENSION, format!("is {what} given twice for one entry"));
        match kind {
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                while data.last() == Some(&0) {
                    data.pop();
                }
                let slot = if kind == tar::EntryType::GNULongName {
                    &mut self.gnu_path
                } else {
                    &mut self.gnu_link
                };
                if slot.replace(data).is_some() {
                    return Err(twice());
                }
            }
            tar::EntryType::XHeader => {
                if self.pax_path.is_some() || self.pax_link.is_some() || self.size.is_some() {
                    return Err(twice());
                }
                for record in tar::PaxExtensions::new(&data) {
                    let record =
                        record.map_err(|_| ctx.refuse(EXTENSION, "has a malformed PAX record"))?;
                    match record.key_bytes() {
                        b"path" => self.pax_path = Some(record.value_bytes().to_vec()),
                        b"linkpath" => self.pax_link = Some(record.value_bytes().to_vec()),
                        b"size" => {
                            let size = record.value().ok().and_then(|v| v.parse().ok());
                            self.size = Some(size.ok_or_else(|| {
                                ctx.refuse(EXTENSION, "has a PAX size that is not a number")
                            })?);
                        }
                        k if k.starts_with(b"GNU.sparse.") => {
                            return Err(ctx.refuse(
                                EXTENSION,
                                "describes a sparse file, which a release never needs",
                            ));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(true)
    }

    /// The entry's path and link target from its extension headers, if any
    /// (GNU and PAX forms that disagree are refused: other tools would
    /// unpack the entry under the other name).
    fn resolve(self, ctx: &Ctx<'_>) -> Result<Resolved, Error> {
        let pick = |gnu: Option<Vec<u8>>, pax: Option<Vec<u8>>| match (gnu, pax) {
            (Some(g), Some(p)) if g != p => Err(ctx.refuse(
                &String::from_utf8_lossy(&p),
                "has a GNU long name and a PAX name that disagree",
            )),
            (g, p) => Ok(p.or(g)),
        };
        Ok(Resolved {
            path: pick(self.gnu_path, self.pax_path)?,
            link: pick(self.gnu_link, self.pax_link)?,
            size: self.size,
        })
    }
}

/// Why a zip's central directory is refused before it is loaded.
enum IndexError {
    Io(io::Error),
    TooBig(&'static str, u64),
}

impl From<io::Error> for IndexError {
    fn from(e: io::Error) -> Self {
        IndexError::Io(e)
    }
}

/// Reads a zip's end record (and its zip64 form) and refuses a central
/// directory over `max_index` bytes or `max_entries` entries, before the
/// zip reader loads it whole.
fn check_zip_index(file: &mut File, limits: &Limits) -> Result<(), IndexError> {
    use std::io::{Seek, SeekFrom};
    const END: &[u8] = b"PK\x05\x06";
    const LOCATOR: &[u8] = b"PK\x06\x07";
    const END64: &[u8] = b"PK\x06\x06";
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    file.take(tail_len).read_to_end(&mut tail)?;
    let Some(at) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| &tail[i..i + 4] == END)
    else {
        return Err(io::Error::other("no zip end record").into());
    };
    let u16_at = |b: &[u8], i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let u32_at =
        |b: &[u8], i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    let u64_at = |b: &[u8], i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(x)
    };
    let mut entries = u16_at(&tail, at + 10);
    let mut size = u32_at(&tail, at + 12);
    if entries == 0xFFFF || size == 0xFFFF_FFFF {
        // zip64: the locator sits just before the end record.
        let loc = at.checked_sub(20).filter(|&l| &tail[l..l + 4] == LOCATOR);
        let Some(loc) = loc else {
            return Err(io::Error::other("zip64 end record without its locator").into());
        };
        let offset = u64_at(&tail, loc + 8);
        file.seek(SeekFrom::Start(offset))?;
        let mut rec = [0u8; 56];
        file.read_exact(&mut rec)?;
        if &rec[..4] != END64 {
            return Err(io::Error::other("zip64 end record not where its locator says").into());
        }
        entries = u64_at(&rec, 32);
        size = u64_at(&rec, 40);
    }
    if entries > limits.max_entries as u64 {
        return Err(IndexError::TooBig(
            "the number of entries",
            limits.max_entries as u64,
        ));
    }
    if size > limits.max_index {
        return Err(IndexError::TooBig(
            "the zip central directory",
            limits.max_index,
        ));
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(())
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
            let stream = Capped {
                inner: flate2::read::GzDecoder::new(file),
                left: limits.max_stream,
            };
            let mut tar = tar::Archive::new(stream);
            // Raw entries: extension headers come to us unread, so each is
            // read with a bound (the tar crate would read them whole).
            let mut ext = Extensions::default();
            for entry in tar.entries().map_err(damaged)?.raw(true) {
                let mut entry = entry.map_err(|e| ctx.stream_error(e))?;
                ctx.count_entry()?;
                let kind = entry.header().entry_type();
                if ext.take_header(&ctx, kind, &mut entry)? {
                    continue;
                }
                let Resolved { path, link, size } = std::mem::take(&mut ext).resolve(&ctx)?;
                let path = match path {
                    Some(p) => p,
                    None => entry.header().path_bytes().into_owned(),
                };
                let raw = ctx.name(&path, "name")?;
                if let Some(size) = size
                    && size != entry.size()
                {
                    return Err(ctx.refuse(
                        &raw,
                        "has a PAX size that differs from its header (it would unpack \
                         differently elsewhere)",
                    ));
                }
                let link = match link {
                    Some(l) => Some(l),
                    None => entry
                        .header()
                        .link_name_bytes()
                        .map(std::borrow::Cow::into_owned),
                };
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
                        let target = ctx.link_target(link.as_deref(), &raw)?;
                        ctx.make_symlink(&rel, Path::new(&target), &raw)?;
                    }
                    tar::EntryType::Link => {
                        let target = ctx.link_target(link.as_deref(), &raw)?;
                        ctx.hard_link(&rel, &target, &raw)?;
                    }
                    other => {
                        return Err(ctx.refuse(
                            &raw,
                            format!(
                                "is a {other:?} entry (devices, FIFOs, sparse files and others \
                                 are refused)"
                            ),
                        ));
                    }
                }
            }
            Ok(())
        }
        ArchiveKind::Zip => {
            let mut file = file;
            check_zip_index(&mut file, &limits).map_err(|e| match e {
                IndexError::Io(cause) => damaged(cause),
                IndexError::TooBig(what, limit) => Error::TooBig {
                    archive: archive.to_owned(),
                    what,
                    limit,
                },
            })?;
            let mut zip = zip::ZipArchive::new(file).map_err(|e| damaged(io::Error::other(e)))?;
            for i in 0..zip.len() {
                let mut f = zip.by_index(i).map_err(|e| damaged(io::Error::other(e)))?;
                ctx.count_entry()?;
                let raw = ctx.name(f.name().as_bytes(), "name")?;
                let Some(rel) = ctx.relative(&raw)? else {
                    continue;
                };
                let mode = f.unix_mode().unwrap_or(0o644);
                let file_type = mode & 0o170_000;
                if f.is_dir() {
                    ctx.make_dir(&rel, &raw)?;
                } else if file_type == 0o120_000 {
                    let mut target = Vec::new();
                    (&mut f)
                        .take(ctx.limits.max_name as u64 + 1)
                        .read_to_end(&mut target)
                        .map_err(damaged)?;
                    let target = ctx.name(&target, "link target")?;
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
