//! Streaming downloads: SHA-256 computed in the same pass, memory bounded
//! whatever the size, resumed with `Range` after re-hashing what is on disk,
//! a progress callback and a size cap.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::http::{self, Http};

const CHUNK: usize = 128 * 1024;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request failed.
    #[error(transparent)]
    Http(#[from] http::Error),
    /// Writing or reading the partial file failed.
    #[error(
        "cannot write {}: {cause}; the partial download was kept and will be resumed",
        path.display()
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// The body ended before the announced length.
    #[error(
        "download of {url} ended after {got} of {expected} bytes; the partial download was kept \
            and will be resumed next time"
    )]
    Truncated {
        /// The URL.
        url: String,
        /// Bytes received in total.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The body came slower than the minimum speed for a whole window.
    #[error(
        "download of {url} is slower than {min_speed} bytes/s over {window_secs} s; the partial \
         download was kept and will be resumed next time (check the network or the mirror)"
    )]
    TooSlow {
        /// The URL.
        url: String,
        /// The minimum speed in bytes per second.
        min_speed: u64,
        /// The window in seconds.
        window_secs: u64,
    },
    /// Larger than allowed.
    #[error("{url} is larger than the {cap}-byte limit; the partial download was removed")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        cap: u64,
    },
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Where it is.
    pub path: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_owned(),
        cause,
    }
}

/// Hashes a file's existing bytes.
fn hash_existing(path: &Path, hasher: &mut Sha256) -> Result<u64, Error> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut n_total = 0;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            return Ok(n_total);
        }
        hasher.update(&buf[..n]);
        n_total += n as u64;
    }
}

/// Copies `reader` to the end of `dest`, hashing, within `cap`.
/// Where a body goes and what bounds it.
struct Sink<'a> {
    dest: &'a Path,
    url: &'a str,
    cap: u64,
    total: Option<u64>,
    http: Option<&'a Http>,
}

fn pump(
    sink: &Sink<'_>,
    reader: &mut dyn Read,
    hasher: &mut Sha256,
    mut done: u64,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<u64, Error> {
    let Sink {
        dest,
        url,
        cap,
        total,
        http,
    } = *sink;
    // Never follow a link planted as the partial file.
    if fs::symlink_metadata(dest).is_ok_and(|m| !m.file_type().is_file()) {
        return Err(Error::Io {
            path: dest.to_owned(),
            cause: io::Error::other("it is not a plain file; remove it"),
        });
    }
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dest)
        .map_err(io_err(dest))?;
    let mut buf = vec![0u8; CHUNK];
    // The minimum-speed rule: bytes received since the window began.
    let (min_speed, window) = http.map_or((0, Duration::MAX), Http::min_speed);
    let (mut window_start, mut window_bytes) = (Instant::now(), 0u64);
    loop {
        if min_speed > 0 && window_start.elapsed() >= window {
            let wanted = min_speed.saturating_mul(window.as_secs().max(1));
            if window_bytes < wanted {
                out.sync_all().map_err(io_err(dest))?;
                return Err(Error::TooSlow {
                    url: url.to_owned(),
                    min_speed,
                    window_secs: window.as_secs(),
                });
            }
            (window_start, window_bytes) = (Instant::now(), 0);
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                out.flush().map_err(io_err(dest))?;
                let msg = http.map_or_else(|| e.to_string(), |h| h.redact(&e.to_string()));
                let lower = msg.to_ascii_lowercase();
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) || lower.contains("timeout")
                    || lower.contains("timed out")
                {
                    return Err(http::Error::Timeout {
                        url: url.to_owned(),
                        what: "reading the body".into(),
                    }
                    .into());
                }
                if let Some(expected) = total.filter(|t| done < *t) {
                    log::debug!("body of {url} ended early: {msg}");
                    return Err(Error::Truncated {
                        url: url.to_owned(),
                        got: done,
                        expected,
                    });
                }
                return Err(http::Error::Transport {
                    url: url.to_owned(),
                    message: msg,
                }
                .into());
            }
        };
        if n == 0 {
            break;
        }
        if done + n as u64 > cap {
            drop(out);
            let _ = fs::remove_file(dest);
            return Err(Error::TooLarge {
                url: url.to_owned(),
                cap,
            });
        }
        out.write_all(&buf[..n]).map_err(io_err(dest))?;
        hasher.update(&buf[..n]);
        done += n as u64;
        window_bytes += n as u64;
        progress(done, total);
    }
    out.sync_all().map_err(io_err(dest))?;
    Ok(done)
}

/// Downloads `url` into `dest`, resuming a partial file with `Range`.
pub fn download(
    http: &Http,
    url: &str,
    dest: &Path,
    cap: u64,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Downloaded, Error> {
    let mut hasher = Sha256::new();
    if let Some(path) = url.strip_prefix("file://") {
        let _ = fs::remove_file(dest);
        let src = Path::new(path);
        let mut f = File::open(src).map_err(io_err(src))?;
        let total = f.metadata().ok().map(|m| m.len());
        if total.is_some_and(|t| t > cap) {
            return Err(Error::TooLarge {
                url: url.to_owned(),
                cap,
            });
        }
        let bytes = pump(
            &Sink {
                dest,
                url,
                cap,
                total,
                http: None,
            },
            &mut f,
            &mut hasher,
            0,
            progress,
        )?;
        return Ok(Downloaded {
            path: dest.to_owned(),
            sha256: hex::encode(hasher.finalize()),
            bytes,
        });
    }

    let have = hash_existing(dest, &mut hasher)?;
    let mut headers = Vec::new();
    if have > 0 {
        headers.push(("Range", format!("bytes={have}-")));
        log::info!("resuming download of {url} at byte {have}");
    }
    let answer = match http.get(url, &headers, true) {
        // The server no longer has the bytes after ours: start over.
        Err(http::Error::Status { status: 416, .. }) => {
            fs::remove_file(dest).map_err(io_err(dest))?;
            return download(http, url, dest, cap, progress);
        }
        other => other?,
    };
    let (start, total) = if answer.status == 206 && have > 0 {
        let total = answer
            .header("content-range")
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok());
        (have, total)
    } else {
        // A full answer: throw away what we had.
        if have > 0 {
            fs::remove_file(dest).map_err(io_err(dest))?;
            hasher = Sha256::new();
        }
        (
            0,
            answer
                .header("content-length")
                .and_then(|l| l.parse::<u64>().ok()),
        )
    };
    if total.is_some_and(|t| t > cap) {
        let _ = fs::remove_file(dest);
        return Err(Error::TooLarge {
            url: url.to_owned(),
            cap,
        });
    }
    let mut reader = answer.into_reader();
    let done = pump(
        &Sink {
            dest,
            url,
            cap,
            total,
            http: Some(http),
        },
        &mut reader,
        &mut hasher,
        start,
        progress,
    )?;
    if let Some(t) = total.filter(|t| done < *t) {
        return Err(Error::Truncated {
            url: url.to_owned(),
            got: done,
            expected: t,
        });
    }
    Ok(Downloaded {
        path: dest.to_owned(),
        sha256: hex::encode(hasher.finalize()),
        bytes: done,
    })
}
