//! A loopback HTTP server that answers the GitHub and GitLab release APIs
//! and serves release assets, with switches to inject faults.
//!
//! Routes:
//! - `GET /repos/<owner>/<repo>/releases?per_page=N&page=P` (GitHub):
//!   pages with `Link`, `ETag` / `If-None-Match` → 304 (free), rate-limit
//!   headers, 403 with `x-ratelimit-remaining: 0` when used up;
//! - `GET /api/v4/projects/<owner%2Frepo>/releases` (GitLab);
//! - `GET /dl/<file>` (supports `Range: bytes=N-`), `GET /redirect/<file>` → 302.
//!
//! Plain http on `127.0.0.1`, or https on `localhost` with a certificate of
//! a [`PrivateCa`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::tls::PrivateCa;

/// An asset of a fake release.
#[derive(Debug, Clone)]
pub struct FakeAsset {
    /// The file name.
    pub name: String,
    /// The bytes.
    pub data: Arc<Vec<u8>>,
    /// Whether the API lists a `digest` for it.
    pub with_digest: bool,
}

/// A fake release.
#[derive(Debug, Clone)]
pub struct FakeRelease {
    /// Its tag.
    pub tag: String,
    /// Draft flag.
    pub draft: bool,
    /// Pre-release flag.
    pub prerelease: bool,
    /// Publish time (RFC 3339).
    pub published_at: String,
    /// Its assets.
    pub assets: Vec<FakeAsset>,
    /// Its notes (`body` on GitHub, `description` on GitLab).
    pub notes: Option<String>,
}

impl FakeRelease {
    /// A published, non-draft release.
    pub fn new(tag: &str, published_at: &str, assets: Vec<FakeAsset>) -> Self {
        FakeRelease {
            tag: tag.into(),
            draft: false,
            prerelease: false,
            published_at: published_at.into(),
            assets,
            notes: None,
        }
    }

    /// The same release with these notes.
    #[must_use]
    pub fn with_notes(mut self, notes: &str) -> Self {
        self.notes = Some(notes.to_owned());
        self
    }
}

/// Faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer the next N API requests with 500.
    pub api_500: u32,
    /// Answer the next N downloads with 500.
    pub download_500: u32,
    /// Send this many body bytes of an archive download, then stall (until shutdown).
    pub stall_after: Option<usize>,
    /// Send this many body bytes of an archive download, then close.
    pub truncate_after: Option<usize>,
    /// Flip a byte in every download except checksum files.
    pub corrupt: bool,
    /// List asset URLs through `/redirect/`.
    pub redirect: bool,
    /// Put this text in 500 bodies, with `{auth}` replaced by the request's Authorization header.
    pub echo_auth_in_errors: bool,
    /// Send archive downloads this many bytes at a time, pausing between
    /// (a trickle: every read succeeds, the whole never arrives).
    pub trickle: Option<(usize, Duration)>,
    /// Answer every API request this late (a distant API, for benchmarks).
    pub api_delay: Option<std::time::Duration>,
    /// List asset URLs on this base instead (another server: another origin).
    pub asset_base: Option<String>,
    /// `/redirect/` sends to this base instead of the server's own.
    pub redirect_base: Option<String>,
    /// Answer API requests with a 302 to the same path on this base.
    pub api_redirect: Option<String>,
    /// Give every listed release a `body` (release notes) of this many bytes.
    pub notes_bytes: usize,
    /// List every asset with this size instead of its real one.
    pub asset_size: Option<u64>,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The path with query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The status answered.
    pub status: u16,
}

/// The server's state, shared with the test.
#[derive(Debug, Default)]
pub struct State {
    /// GitHub releases by `owner/repo`, newest first.
    pub github: BTreeMap<String, Vec<FakeRelease>>,
    /// GitLab releases by `owner/repo`, newest first.
    pub gitlab: BTreeMap<String, Vec<FakeRelease>>,
    /// Repository security advisories by `owner/repo`, as GitHub's JSON
    /// (`GET /repos/<repo>/security-advisories`; an unknown repository
    /// answers `[]`, as GitHub does for a public repository without any).
    pub advisories: BTreeMap<String, serde_json::Value>,
    /// Largest page size served.
    pub per_page_max: usize,
    /// Requests left before the rate limit bites.
    pub rate_remaining: u64,
    /// Unix time the limit resets.
    pub rate_reset: i64,
    /// Faults.
    pub faults: Faults,
    /// Every request.
    pub seen: Vec<Seen>,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct ReleaseServer {
    addr: SocketAddr,
    tls: bool,
    host: Option<String>,
    /// Shared state: change releases and faults while it runs.
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl ReleaseServer {
    /// Starts on a free loopback port.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts serving https on `localhost` with a certificate of `ca`.
    pub fn start_tls(ca: &PrivateCa) -> Self {
        Self::start_with(Some(ca.server.clone()))
    }

    /// Starts serving https on `ip` (a bridge address that namespace hosts
    /// reach) with a certificate of `ca` (made for that address).
    pub fn start_tls_at(ca: &PrivateCa, ip: &str) -> Self {
        Self::start_on(Some(ca.server.clone()), ip)
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        Self::start_on(tls, "127.0.0.1")
    }

    fn start_on(tls: Option<Arc<rustls::ServerConfig>>, ip: &str) -> Self {
        let listener = TcpListener::bind(format!("{ip}:0")).expect("bind the release server");
        let host = (ip != "127.0.0.1").then(|| ip.to_owned());
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            per_page_max: 100,
            rate_remaining: 60,
            rate_reset: 1_900_000_000,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let is_tls = tls.is_some();
        let base = match &host {
            Some(h) => format!("https://{h}:{}", addr.port()),
            None => base_url(addr, is_tls),
        };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp, base, tls) = (st.clone(), sp.clone(), base.clone(), tls.clone());
                std::thread::spawn(move || {
                    let _ = match tls {
                        Some(config) => rustls::ServerConnection::new(config)
                            .map_err(std::io::Error::other)
                            .and_then(|c| {
                                handle(rustls::StreamOwned::new(c, conn), &base, &st, &sp)
                            }),
                        None => handle(conn, &base, &st, &sp),
                    };
                });
            }
        });
        ReleaseServer {
            addr,
            tls: is_tls,
            host,
            state,
            stop,
        }
    }

    /// `http://127.0.0.1:<port>`, or `https://localhost:<port>` with TLS.
    pub fn url(&self) -> String {
        match &self.host {
            Some(h) => format!("https://{h}:{}", self.addr.port()),
            None => base_url(self.addr, self.tls),
        }
    }

    /// Locks the state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("server state")
    }

    /// Requests whose path starts with `prefix`.
    pub fn seen(&self, prefix: &str) -> Vec<Seen> {
        self.state()
            .seen
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn base_url(addr: SocketAddr, tls: bool) -> String {
    if tls {
        format!("https://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

fn query(path: &str, key: &str) -> Option<usize> {
    let q = path.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}="))?.parse().ok())
}

fn respond(
    out: &mut impl Write,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Internal Server Error",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

fn release_json(
    server: &str,
    base: &str,
    r: &FakeRelease,
    gitlab: bool,
    redirect: bool,
) -> serde_json::Value {
    // `base` is the asset base: the server's own or another's.
    let route = if redirect { "redirect" } else { "dl" };
    let assets: Vec<serde_json::Value> = r
        .assets
        .iter()
        .map(|a| {
            let url = format!("{base}/{route}/{}/{}", r.tag, a.name);
            if gitlab {
                serde_json::json!({ "name": a.name, "url": url, "direct_asset_url": url })
            } else {
                let mut v = serde_json::json!({
                    "name": a.name,
                    "browser_download_url": url,
                    "size": a.data.len(),
                });
                if a.with_digest {
                    let digest = hex::encode(Sha256::digest(a.data.as_slice()));
                    v["digest"] = serde_json::json!(format!("sha256:{digest}"));
                }
                v
            }
        })
        .collect();
    let page = format!("{server}/releases/tag/{}", r.tag);
    if gitlab {
        serde_json::json!({
            "tag_name": r.tag,
            "released_at": r.published_at,
            "upcoming_release": r.prerelease,
            "assets": { "links": assets },
            "description": r.notes,
            "_links": { "self": page },
        })
    } else {
        serde_json::json!({
            "tag_name": r.tag,
            "draft": r.draft,
            "prerelease": r.prerelease,
            "published_at": r.published_at,
            "assets": assets,
            "body": r.notes,
            "html_url": page,
        })
    }
}

/// The request head, read byte by byte up to the blank line (a GET has no
/// body, and nothing past the head may be consumed).
fn read_head(stream: &mut impl std::io::Read) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[allow(clippy::too_many_lines)]
fn handle<S: std::io::Read + Write>(
    mut out: S,
    base: &str,
    state: &Mutex<State>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let head = read_head(&mut out)?;
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = BTreeMap::new();
    for h in lines {
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let base = base.to_owned();
    let mut st = state.lock().expect("state");
    let record = |st: &mut State, status: u16| {
        st.seen.push(Seen {
            path: path.clone(),
            headers: headers.clone(),
            status,
        });
    };

    if let Some((repo, _)) = path
        .strip_prefix("/repos/")
        .and_then(|rest| rest.split_once("/security-advisories"))
    {
        let body = serde_json::to_vec(
            st.advisories
                .get(repo)
                .unwrap_or(&serde_json::Value::Array(Vec::new())),
        )
        .expect("json");
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..16]);
        let status = if headers.get("if-none-match") == Some(&etag) {
            304
        } else {
            200
        };
        record(&mut st, status);
        drop(st);
        let h = [
            ("ETag".to_owned(), etag),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let body = if status == 304 { &[][..] } else { &body };
        return respond(&mut out, status, &h, body);
    }
    let api = if let Some(rest) = path.strip_prefix("/repos/") {
        rest.split_once("/releases")
            .map(|(repo, _)| (repo.to_owned(), false))
    } else if let Some(rest) = path.strip_prefix("/api/v4/projects/") {
        rest.split_once("/releases")
            .map(|(p, _)| (p.replace("%2F", "/"), true))
    } else {
        None
    };
    if let Some((repo, gitlab)) = api {
        if let Some(other) = st.faults.api_redirect.clone() {
            record(&mut st, 302);
            drop(st);
            return respond(
                &mut out,
                302,
                &[("Location".into(), format!("{other}{path}"))],
                b"",
            );
        }
        if let Some(delay) = st.faults.api_delay {
            drop(st);
            std::thread::sleep(delay);
            st = state.lock().expect("state");
        }
        if st.faults.api_500 > 0 {
            st.faults.api_500 -= 1;
            record(&mut st, 500);
            let body = if st.faults.echo_auth_in_errors {
                format!(
                    "bad credentials {}",
                    headers.get("authorization").cloned().unwrap_or_default()
                )
            } else {
                "boom".into()
            };
            drop(st);
            return respond(&mut out, 500, &[], body.as_bytes());
        }
        let releases = if gitlab {
            st.gitlab.get(&repo)
        } else {
            st.github.get(&repo)
        };
        let Some(releases) = releases.cloned() else {
            record(&mut st, 404);
            drop(st);
            return respond(&mut out, 404, &[], b"{\"message\":\"Not Found\"}");
        };
        let per_page = query(&path, "per_page")
            .unwrap_or(30)
            .min(st.per_page_max)
            .max(1);
        let page = query(&path, "page").unwrap_or(1).max(1);
        let items: Vec<serde_json::Value> = releases
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|r| {
                let asset_base = st.faults.asset_base.as_deref().unwrap_or(&base);
                let mut v = release_json(&base, asset_base, r, gitlab, st.faults.redirect);
                if st.faults.notes_bytes > 0 {
                    v["body"] = serde_json::json!("n".repeat(st.faults.notes_bytes));
                }
                if let (Some(size), Some(assets)) =
                    (st.faults.asset_size, v["assets"].as_array_mut())
                {
                    for a in assets {
                        a["size"] = serde_json::json!(size);
                    }
                }
                v
            })
            .collect();
        let body = serde_json::to_vec(&items).expect("json");
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..16]);
        let mut h = vec![
            ("ETag".to_owned(), etag.clone()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        if page * per_page < releases.len() {
            let route = path.split('?').next().unwrap_or("");
            let next = page + 1;
            h.push((
                "Link".to_owned(),
                format!(
                    "<{base}{route}?per_page={per_page}&page={next}>; rel=\"next\", \
                     <{base}{route}?per_page={per_page}&page=1>; rel=\"first\""
                ),
            ));
        }
        if headers.get("if-none-match") == Some(&etag) {
            h.push((
                "x-ratelimit-remaining".into(),
                st.rate_remaining.to_string(),
            ));
            h.push(("x-ratelimit-reset".into(), st.rate_reset.to_string()));
            record(&mut st, 304);
            drop(st);
            return respond(&mut out, 304, &h, b"");
        }
        if st.rate_remaining == 0 {
            let h = vec![
                ("x-ratelimit-remaining".to_owned(), "0".to_owned()),
                ("x-ratelimit-reset".to_owned(), st.rate_reset.to_string()),
            ];
            record(&mut st, 403);
            drop(st);
            return respond(
                &mut out,
                403,
                &h,
                b"{\"message\":\"API rate limit exceeded\"}",
            );
        }
        st.rate_remaining -= 1;
        h.push((
            "x-ratelimit-remaining".into(),
            st.rate_remaining.to_string(),
        ));
        h.push(("x-ratelimit-reset".into(), st.rate_reset.to_string()));
        record(&mut st, 200);
        drop(st);
        return respond(&mut out, 200, &h, &body);
    }

    if let Some(rest) = path.strip_prefix("/redirect/") {
        let to = st
            .faults
            .redirect_base
            .clone()
            .unwrap_or_else(|| base.clone());
        record(&mut st, 302);
        drop(st);
        return respond(
            &mut out,
            302,
            &[("Location".into(), format!("{to}/dl/{rest}"))],
            b"",
        );
    }
    if let Some(rest) = path.strip_prefix("/dl/") {
        let (tag, name) = rest.split_once('/').unwrap_or(("", rest));
        let data = st
            .github
            .values()
            .chain(st.gitlab.values())
            .flatten()
            .filter(|r| r.tag == tag)
            .flat_map(|r| r.assets.iter())
            .find(|a| a.name == name)
            .map(|a| a.data.clone());
        let Some(data) = data else {
            record(&mut st, 404);
            drop(st);
            return respond(&mut out, 404, &[], b"no such asset");
        };
        if st.faults.download_500 > 0 {
            st.faults.download_500 -= 1;
            record(&mut st, 500);
            drop(st);
            return respond(&mut out, 500, &[], b"try again");
        }
        let faults = st.faults.clone();
        let start = headers
            .get("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        let (status, from) = match start {
            Some(s) if s < data.len() => (206, s),
            Some(_) => {
                record(&mut st, 416);
                drop(st);
                return respond(&mut out, 416, &[], b"");
            }
            None => (200, 0),
        };
        record(&mut st, status);
        drop(st);
        let mut body = data[from..].to_vec();
        let is_checksums = Path::new(name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
            || name == "SHA256SUMS";
        if faults.corrupt && !is_checksums && !body.is_empty() {
            body[0] ^= 0xff;
        }
        let mut h = vec![("Content-Length".to_owned(), body.len().to_string())];
        if status == 206 {
            h.push((
                "Content-Range".into(),
                format!("bytes {from}-{}/{}", data.len() - 1, data.len()),
            ));
        }
        if let (Some((chunk, pause)), false) = (faults.trickle, is_checksums) {
            let mut head = format!("HTTP/1.1 {status} OK\r\nConnection: close\r\n");
            for (k, v) in &h {
                let _ = write!(head, "{k}: {v}\r\n");
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes())?;
            for part in body.chunks(chunk.max(1)) {
                if stop.load(Ordering::SeqCst)
                    || out.write_all(part).and_then(|()| out.flush()).is_err()
                {
                    break;
                }
                std::thread::sleep(pause);
            }
            return Ok(());
        }
        let cut = if is_checksums {
            None
        } else {
            faults.stall_after.or(faults.truncate_after)
        };
        let Some(cut) = cut else {
            return respond(&mut out, status, &h, &body);
        };
        let mut head = format!("HTTP/1.1 {status} OK\r\nConnection: close\r\n");
        for (k, v) in &h {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.write_all(&body[..cut.min(body.len())])?;
        out.flush()?;
        if faults.stall_after.is_some() {
            for _ in 0..600 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        return Ok(());
    }
    record(&mut st, 404);
    drop(st);
    respond(&mut out, 404, &[], b"not found")
}
