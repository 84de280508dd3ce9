//! Cached, paged API requests: an on-disk `ETag` cache with a TTL, conditional
//! requests (a 304 costs nothing against GitHub's limit), rate-limit headers
//! read and reported, and the cached answer used when the limit is gone.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::{self, Http, next_link};

/// Largest API page accepted (a page of 100 Prometheus releases with their
/// notes and 40 assets each is about 5 MiB).
pub const MAX_PAGE: u64 = 16 * 1024 * 1024;
/// Most pages followed for one listing (2,000 releases at 100 a page).
pub const MAX_PAGES: usize = 20;
/// Most bytes read for one listing, all pages together.
pub const MAX_LISTING: u64 = 48 * 1024 * 1024;

/// Why a listing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request failed and nothing cached could stand in.
    #[error(transparent)]
    Http(#[from] http::Error),
    /// Offline, and no cached answer.
    #[error("offline and nothing cached for {url}; run once with network access (or use a mirror)")]
    Offline {
        /// The URL.
        url: String,
    },
    /// A page is larger than [`MAX_PAGE`].
    #[error(
        "{url} answered more than {limit} bytes for one page; refusing it (a release listing \
         is a few MiB)"
    )]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The answer is not the JSON expected.
    #[error("{url} answered something that is not the JSON list expected: {message}")]
    Parse {
        /// The URL.
        url: String,
        /// What was wrong.
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    url: String,
    etag: Option<String>,
    link: Option<String>,
    fetched_at: Timestamp,
    body: String,
}

/// What the server last said about the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RateLimit {
    /// Requests left.
    pub remaining: Option<u64>,
    /// When the window resets.
    pub reset: Option<Timestamp>,
}

/// The API client: HTTP plus the on-disk cache.
#[derive(Debug)]
pub struct ApiClient {
    http: Http,
    cache_dir: PathBuf,
    ttl: Duration,
    offline: bool,
    rate: Mutex<RateLimit>,
    requests: Mutex<u64>,
}

impl ApiClient {
    /// A client caching in `cache_dir` (`<root>/var/cache/obs-upgrade/api`).
    pub fn new(http: Http, cache_dir: impl Into<PathBuf>, ttl: Duration, offline: bool) -> Self {
        ApiClient {
            http,
            cache_dir: cache_dir.into(),
            ttl,
            offline,
            rate: Mutex::new(RateLimit::default()),
            requests: Mutex::new(0),
        }
    }

    /// The HTTP agent.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The rate limit the server last reported.
    pub fn rate_limit(&self) -> RateLimit {
        *self.rate.lock().expect("rate lock")
    }

    /// Requests sent over the network so far (cache hits excluded).
    pub fn requests_sent(&self) -> u64 {
        *self.requests.lock().expect("requests lock")
    }

    fn entry_path(&self, url: &str) -> PathBuf {
        let key = hex::encode(Sha256::digest(url.as_bytes()));
        self.cache_dir.join(format!("{}.json", &key[..32]))
    }

    fn load(&self, url: &str) -> Option<Entry> {
        let e: Entry = serde_json::from_slice(&fs::read(self.entry_path(url)).ok()?).ok()?;
        (e.url == url).then_some(e)
    }

    fn store(&self, e: &Entry) {
        let path = self.entry_path(&e.url);
        let write = || -> Result<(), Box<dyn std::error::Error>> {
            upgrade_state::fsutil::create_dir_all(&self.cache_dir)?;
            let bytes = serde_json::to_vec(e)?;
            Ok(upgrade_state::fsutil::atomic_write(&path, &bytes, None)?)
        };
        if let Err(err) = write() {
            log::warn!("cannot write the API cache {}: {err}", path.display());
        }
    }

    /// One page: from the cache while fresh, else a conditional request.
    fn page(&self, url: &str) -> Result<(String, Option<String>), Error> {
        let cached = self.load(url);
        if let Some(e) = &cached {
            let age = Timestamp::now().duration_since(e.fetched_at);
            if self.offline
                || age
                    < jiff::SignedDuration::try_from(self.ttl).unwrap_or(jiff::SignedDuration::MAX)
            {
                log::debug!("using cached answer for {url}");
                return Ok((e.body.clone(), e.link.clone()));
            }
        } else if self.offline {
            return Err(Error::Offline {
                url: url.to_owned(),
            });
        }
        let mut headers = vec![("Accept", "application/vnd.github+json".to_owned())];
        if let Some(tag) = cached.as_ref().and_then(|e| e.etag.clone()) {
            headers.push(("If-None-Match", tag));
        }
        *self.requests.lock().expect("requests lock") += 1;
        let answer = match self.http.get(url, &headers, false) {
            Ok(a) => a,
            Err(err @ http::Error::RateLimited { .. }) => {
                if let http::Error::RateLimited { reset, .. } = &err {
                    *self.rate.lock().expect("rate lock") = RateLimit {
                        remaining: Some(0),
                        reset: *reset,
                    };
                }
                return match cached {
                    Some(e) => {
                        log::warn!("{err}; using the answer cached at {}", e.fetched_at);
                        Ok((e.body, e.link))
                    }
                    None => Err(err.into()),
                };
            }
            Err(err) => return Err(err.into()),
        };
        let remaining = answer
            .header("x-ratelimit-remaining")
            .and_then(|v| v.parse().ok());
        let reset = answer
            .header("x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|s| Timestamp::from_second(s).ok());
        if remaining.is_some() {
            *self.rate.lock().expect("rate lock") = RateLimit { remaining, reset };
            log::debug!("rate limit: {remaining:?} requests left, reset at {reset:?}");
        }
        if answer.status == 304 {
            let mut e = cached.ok_or_else(|| Error::Parse {
                url: url.into(),
                message: "304 without a cached answer".into(),
            })?;
            e.fetched_at = Timestamp::now();
            self.store(&e);
            return Ok((e.body, e.link));
        }
        let etag = answer.header("etag").map(str::to_owned);
        let link = answer.header("link").map(str::to_owned);
        let body = answer.text(MAX_PAGE).map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::TooLarge {
                url: url.to_owned(),
                limit: MAX_PAGE,
            },
            e => self.http.transport_error(url, &e).into(),
        })?;
        let entry = Entry {
            url: url.to_owned(),
            etag,
            link,
            fetched_at: Timestamp::now(),
            body,
        };
        self.store(&entry);
        Ok((entry.body, entry.link))
    }

    /// Every page of a listing, following `Link: rel="next"`; each page's
    /// JSON array items in order, parsed straight into `T` (fields `T` does
    /// not name are skipped, never held). At most [`MAX_PAGES`] pages and
    /// [`MAX_LISTING`] bytes are read; past either the listing stops with a
    /// warning (the newest releases come first).
    pub fn list<T: serde::de::DeserializeOwned>(&self, first: &str) -> Result<Vec<T>, Error> {
        let mut out = Vec::new();
        let mut url = Some(first.to_owned());
        let (mut pages, mut bytes) = (0, 0u64);
        while let Some(u) = url.take() {
            pages += 1;
            if pages > MAX_PAGES || bytes > MAX_LISTING {
                log::warn!(
                    "stopped listing {} after {} pages and {bytes} bytes (the limits are \
                     {MAX_PAGES} pages and {MAX_LISTING} bytes)",
                    crate::http::without_query(first),
                    pages - 1
                );
                break;
            }
            let (body, link) = self.page(&u)?;
            bytes += body.len() as u64;
            let items: Vec<T> = serde_json::from_str(&body).map_err(|e| Error::Parse {
                url: u.clone(),
                message: e.to_string(),
            })?;
            drop(body);
            out.extend(items);
            url = link.as_deref().and_then(next_link);
        }
        Ok(out)
    }
}

/// The cache directory for API answers under a cache root.
pub fn cache_dir(cache_root: &Path) -> PathBuf {
    cache_root.join("api")
}
