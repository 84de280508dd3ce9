//! Files and directories created with their final modes, and atomic replacement.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory this crate creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file this crate creates.
pub const FILE_MODE: u32 = 0o600;

/// An I/O error with the path it is about.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {cause}", path.display())]
pub struct IoError {
    /// What was being done (`cannot write`).
    pub action: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The cause.
    pub cause: io::Error,
}

/// Maps an [`io::Error`] to an [`IoError`] about `path`:
/// `.map_err(io_err("cannot read", path))`.
pub fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> IoError + 'a {
    move |cause| IoError {
        action,
        path: path.to_owned(),
        cause,
    }
}

/// Creates a private directory (state, cache, backups): missing parents
/// 0755 (system directories others traverse), the directory itself exactly
/// 0700 — set again when it exists with another mode — whatever the umask.
pub fn create_dir_all(dir: &Path) -> Result<(), IoError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all_mode(parent, 0o755)?;
    }
    create_dir_all_mode(dir, DIR_MODE)?;
    let meta = fs::symlink_metadata(dir).map_err(io_err("cannot read", dir))?;
    if meta.permissions().mode() & 0o7777 != DIR_MODE && meta.is_dir() {
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err("cannot set the mode of", dir))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents, each with exactly `mode`
/// (whatever the umask); directories that exist are left as they are.
pub fn create_dir_all_mode(dir: &Path, mode: u32) -> Result<(), IoError> {
    let mut missing = Vec::new();
    let mut at = dir;
    while fs::symlink_metadata(at).is_err() {
        missing.push(at);
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    for d in missing.into_iter().rev() {
        match DirBuilder::new().mode(mode).create(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(mode))
                .map_err(io_err("cannot set the mode of", d))?,
            // Created meanwhile by someone else: leave it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("cannot create directory", d)(e)),
        }
    }
    Ok(())
}

/// Opens (creating with mode 0600) a file for appending.
pub fn open_append(path: &Path) -> Result<File, IoError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_err("cannot open", path))
}

/// Fsyncs a directory so that renames inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), IoError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("cannot sync directory", dir))
}

/// Replaces `path` with `bytes` atomically: a temp file in the same
/// directory (mode 0600), fsync, rename, fsync the directory. When `keep_prev`
/// names a path, the old file is first hard-linked there (also atomically),
/// so `path` itself always exists and is always complete.
pub fn atomic_write(path: &Path, bytes: &[u8], keep_prev: Option<&Path>) -> Result<(), IoError> {
    atomic_write_mode(path, bytes, keep_prev, FILE_MODE)
}

/// A temp path beside `path`, unique to this process: `.<name>.<tag>.<pid>`.
fn temp_beside(path: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{tag}.{}", std::process::id()));
    (dir.to_owned(), tmp)
}

/// Replaces `path` by a symlink to `target` atomically: a temp link in the
/// same directory, rename, fsync the directory. Nothing is done when `path`
/// already links to `target`.
pub fn atomic_symlink(target: &Path, path: &Path) -> Result<(), IoError> {
    if fs::read_link(path).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let (dir, tmp) = temp_beside(path, "link");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err("cannot create link", &tmp))?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("cannot replace", path)(e));
    }
    sync_dir(&dir)
}

/// Replaces `to` by a copy of `from` atomically (temp file in `to`'s
/// directory, fsync, rename, fsync the directory). The copy keeps `from`'s
/// permission bits; a reader of `to` sees the old or the new file, whole. The
/// temporary is created exclusively, never through a link planted there.
pub fn atomic_copy(from: &Path, to: &Path) -> Result<(), IoError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(from).map_err(io_err("cannot read", from))?;
    atomic_copy_as(
        from,
        to,
        Ownership {
            mode: meta.mode() & 0o7777,
            uid: None,
            gid: None,
        },
    )
}

/// [`atomic_write`] with another mode for the new file (0644 for files other
/// programs read, like the metrics for `node_exporter`'s textfile collector).
pub fn atomic_write_mode(
    path: &Path,
    bytes: &[u8],
    keep_prev: Option<&Path>,
    mode: u32,
) -> Result<(), IoError> {
    let (dir, tmp) = temp_beside(path, "tmp");
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("cannot create", &tmp))?;
        // Exactly `mode`, whatever the umask.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err("cannot set the mode of", &tmp))?;
        f.write_all(bytes).map_err(io_err("cannot write", &tmp))?;
        f.sync_all().map_err(io_err("cannot sync", &tmp))?;
        drop(f);
        if let Some(prev) = keep_prev {
            let (_, prev_tmp) = temp_beside(path, "prev.tmp");
            let _ = fs::remove_file(&prev_tmp);
            match fs::hard_link(path, &prev_tmp) {
                Ok(()) => fs::rename(&prev_tmp, prev)
                    .map_err(io_err("cannot keep previous copy as", prev))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("cannot keep previous copy of", path)(e)),
            }
        }
        fs::rename(&tmp, path).map_err(io_err("cannot replace", path))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Owner, group and permission bits a copy is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Permission bits (`0o640`); file type bits are ignored.
    pub mode: u32,
    /// Owner uid; `None` keeps the copier's.
    pub uid: Option<u32>,
    /// Group gid; `None` keeps the copier's.
    pub gid: Option<u32>,
}

impl Ownership {
    /// What `meta` says.
    pub fn of(meta: &fs::Metadata) -> Ownership {
        use std::os::unix::fs::MetadataExt;
        Ownership {
            mode: meta.mode() & 0o7777,
            uid: Some(meta.uid()),
            gid: Some(meta.gid()),
        }
    }
}

/// Like [`atomic_copy`], with exactly `own`'s mode, owner and group set on
/// the copy before it replaces `to` (whatever the umask; never a moment
/// with other permissions).
pub fn atomic_copy_as(from: &Path, to: &Path, own: Ownership) -> Result<(), IoError> {
    let (dir, tmp) = temp_beside(to, "copy");
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut src = File::open(from).map_err(io_err("cannot read", from))?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("cannot create", &tmp))?;
        io::copy(&mut src, &mut out).map_err(io_err("cannot copy", from))?;
        std::os::unix::fs::fchown(&out, own.uid, own.gid).map_err(io_err("cannot chown", &tmp))?;
        out.set_permissions(fs::Permissions::from_mode(own.mode))
            .map_err(io_err("cannot chmod", &tmp))?;
        out.sync_all().map_err(io_err("cannot sync", &tmp))?;
        fs::rename(&tmp, to).map_err(io_err("cannot replace", to))?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `O_NONBLOCK`: opening a FIFO for reading must not wait for a writer.
const O_NONBLOCK: i32 = 0o4000;

/// Reads a regular file of at most `max` bytes. Anything else is refused
/// without blocking or reading it whole: a FIFO (opened non-blocking, then
/// refused), a device such as `/dev/zero`, a directory, a larger file. The
/// error says which.
pub fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, a device or a directory)",
        ));
    }
    if meta.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} bytes, over the limit of {max}", meta.len()),
        ));
    }
    let mut out = Vec::new();
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("over the limit of {max} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod read_capped_tests {
    use super::*;

    #[test]
    fn only_small_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"12345").unwrap();
        assert_eq!(read_capped(&f, 5).unwrap(), b"12345");
        let e = read_capped(&f, 4).unwrap_err().to_string();
        assert!(e.contains("5 bytes, over the limit of 4"), "{e}");
        let e = read_capped(Path::new("/dev/zero"), 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = read_capped(&fifo, 4).unwrap_err().to_string();
        assert!(
            e.contains("not a regular file"),
            "a FIFO neither blocks nor passes: {e}"
        );
    }
}
