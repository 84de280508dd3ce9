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

/// Largest API page accepted.
const MAX_PAGE: u64 = 32 * 1024 * 1024;
/// Most pages followed for one listing.
const MAX_PAGES: usize = 20;

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
    /// The answer is not the JSON expected.
    #[error("{url} answered something that is not a release list: {message}")]
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
        let body = answer
            .text(MAX_PAGE)
            .map_err(|e| self.http.transport_error(url, &e))?;
        self.store(&Entry {
            url: url.to_owned(),
            etag,
            link: link.clone(),
            fetched_at: Timestamp::now(),
            body: body.clone(),
        });
        Ok((body, link))
    }

    /// Every page of a listing, following `Link: rel="next"`; each page's
    /// JSON array items in order.
    pub fn list(&self, first: &str) -> Result<Vec<serde_json::Value>, Error> {
        let mut out = Vec::new();
        let mut url = Some(first.to_owned());
        let mut pages = 0;
        while let Some(u) = url.take() {
            pages += 1;
            if pages > MAX_PAGES {
                log::warn!("stopped after {MAX_PAGES} pages of {first}");
                break;
            }
            let (body, link) = self.page(&u)?;
            let items: Vec<serde_json::Value> =
                serde_json::from_str(&body).map_err(|e| Error::Parse {
                    url: u.clone(),
                    message: e.to_string(),
                })?;
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
