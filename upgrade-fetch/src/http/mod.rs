//! One HTTP client for everything: timeouts, retries with backoff on 5xx and
//! connection errors, a User-Agent with the tool's version, and:
//!
//! - **redirects followed here, hop by hop**: each hop must be https
//!   (loopback excepted) and the error names the hop;
//! - **credentials bound to an origin** (scheme, host, port): a token is
//!   sent only to the API it was given for, never to an asset host the
//!   release data names nor across a redirect to another origin;
//! - **the trust store operators expect**: the system's bundle, or
//!   `SSL_CERT_FILE` / `SSL_CERT_DIR`, plus a CA file per source origin;
//! - **proxies from the environment** by curl's rules (`HTTPS_PROXY`,
//!   `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

mod net;
mod origin;

pub use net::{MAX_PEM, Proxies, SYSTEM_BUNDLES, Trust, load_pem};
pub use origin::{Origin, resolve as resolve_location};

/// The User-Agent sent with every request.
pub const USER_AGENT: &str = concat!("obs-upgrade/", env!("CARGO_PKG_VERSION"));

/// A secret that prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Token(secret.into())
    }

    /// The first set variable among `names`, if any (empty values ignored).
    pub fn from_env(names: &[&str]) -> Option<Token> {
        names.iter().find_map(|n| {
            std::env::var(n)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| Token(v.trim().to_owned()))
        })
    }

    /// The GitHub token: `OBS_UPGRADE_GITHUB_TOKEN`, then `GITHUB_TOKEN`, then `GH_TOKEN`.
    pub fn github_from_env() -> Option<Token> {
        Token::from_env(&["OBS_UPGRADE_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"])
    }

    /// The GitLab token: `OBS_UPGRADE_GITLAB_TOKEN`, then `GITLAB_TOKEN`.
    pub fn gitlab_from_env() -> Option<Token> {
        Token::from_env(&["OBS_UPGRADE_GITLAB_TOKEN", "GITLAB_TOKEN"])
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Plain http to a non-loopback host.
    #[error(
        "refusing plain http for {url}{}: use an https URL (plain http is accepted only on \
            loopback addresses, and file:// for a mirror directory)",
        match via { Some(v) => format!(" (a redirect from {v})"), None => String::new() }
    )]
    Insecure {
        /// The URL (for a redirect hop: without its query).
        url: String,
        /// The URL that redirected there, if it was a redirect.
        via: Option<String>,
    },
    /// The trust store or a CA file could not be read.
    #[error("cannot set up TLS: {message}")]
    Tls {
        /// What went wrong.
        message: String,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}{}", body_suffix(body))]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body, token redacted.
        body: String,
    },
    /// The API's rate limit is used up.
    #[error(
        "the API rate limit for {url} is used up{}, and no answer is cached; {}",
        match reset { Some(r) => format!(" until {r}"), None => String::new() },
        if *token_sent {
            "the token sent has used up its own limit: wait for the reset, or list releases \
             from a mirror"
        } else {
            "set a token (OBS_UPGRADE_GITHUB_TOKEN, or OBS_UPGRADE_GITLAB_TOKEN for GitLab) for \
             a higher limit, or list releases from a mirror"
        }
    )]
    RateLimited {
        /// The URL.
        url: String,
        /// When the limit resets, if the server said.
        reset: Option<Timestamp>,
        /// Whether a token was sent (then a token is not the way out).
        token_sent: bool,
    },
    /// The request timed out.
    #[error("{url} timed out ({what}); the server is slow or unreachable, try again later")]
    Timeout {
        /// The URL.
        url: String,
        /// Which timeout.
        what: String,
    },
    /// Connecting or reading failed.
    #[error("cannot reach {url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong, token redacted.
        message: String,
    },
}

impl Error {
    /// Whether a retry may help (5xx, connection errors; not timeouts of a stalled body or 4xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Status { status, .. } => *status >= 500,
            Error::Transport { .. } => true,
            _ => false,
        }
    }
}

/// Options for [`Http`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout for each read (a stalled body trips it).
    pub read_timeout: Duration,
    /// Overall timeout for API calls (downloads use only the read timeout).
    pub overall_timeout: Duration,
    /// Attempts for transient failures.
    pub attempts: u32,
    /// First pause between attempts (doubles each time).
    pub backoff: Duration,
    /// Allow plain http to any host.
    pub allow_insecure: bool,
    /// Redirects followed at most.
    pub max_redirects: u32,
    /// A download slower than this many bytes per second over a whole
    /// [`HttpOptions::speed_window`] is given up (a trickle never holds the
    /// run lock for long); the partial file is kept and resumed next time.
    pub min_speed: u64,
    /// The window `min_speed` is measured over.
    pub speed_window: Duration,
    /// Proxies (from the environment by default).
    pub proxies: Proxies,
    /// The trust store (from the environment by default).
    pub trust: Trust,
}

impl Http {
    /// The minimum download speed and its window.
    pub fn min_speed(&self) -> (u64, Duration) {
        (self.opts.min_speed, self.opts.speed_window)
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            overall_timeout: Duration::from_secs(60),
            attempts: 3,
            backoff: Duration::from_millis(500),
            allow_insecure: false,
            max_redirects: 5,
            min_speed: 1024,
            speed_window: Duration::from_secs(60),
            proxies: Proxies::from_env(),
            trust: Trust::from_env(),
        }
    }
}

/// An answer: status, the headers we use, and a body reader.
pub struct Answer {
    /// The status code.
    pub status: u16,
    headers: Vec<(String, String)>,
    body: ureq::Body,
    token_sent: bool,
}

impl Answer {
    /// A header by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as a reader.
    pub fn into_reader(self) -> impl Read + 'static {
        self.body.into_reader()
    }

    /// The body as text (invalid UTF-8 replaced), at most `limit` bytes.
    pub fn text(self, limit: u64) -> Result<String, ureq::Error> {
        Ok(String::from_utf8_lossy(&self.bytes(limit)?).into_owned())
    }

    /// The body's bytes, at most `limit` of them.
    pub fn bytes(mut self, limit: u64) -> Result<Vec<u8>, ureq::Error> {
        self.body.with_config().limit(limit).read_to_vec()
    }
}

/// How a forge expects its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// `Authorization: Bearer <token>` (GitHub, GitHub Enterprise).
    Github,
    /// `PRIVATE-TOKEN: <token>` (GitLab).
    Gitlab,
}

#[derive(Debug, Clone)]
struct Credential {
    origin: Origin,
    forge: Forge,
    token: Token,
}

/// Which agent a hop needs: its timeouts, its proxy and its extra CA.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AgentKey {
    download: bool,
    proxy: Option<String>,
    ca: Option<usize>,
}

/// Certificates shared by the agents that trust them.
type Certs = Arc<Vec<Certificate<'static>>>;

type Roots = Result<Option<Certs>, String>;

/// The client.
#[derive(Clone)]
pub struct Http {
    credentials: Vec<Credential>,
    cas: Vec<(Origin, Result<Certs, String>)>,
    cleartext_ok: Vec<Origin>,
    roots: Arc<OnceLock<Roots>>,
    agents: Arc<Mutex<HashMap<AgentKey, ureq::Agent>>>,
    opts: HttpOptions,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("credentials", &self.credentials)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn is_loopback(url: &str) -> bool {
    url.starts_with("http://") && Origin::of(url).is_some_and(|o| o.is_loopback())
}

/// A URL as an error shows a redirect hop: without its query (signed
/// download URLs carry a signature there).
pub fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

impl Http {
    /// A client with these options and no credential.
    pub fn new(opts: HttpOptions) -> Self {
        Http {
            credentials: Vec::new(),
            cas: Vec::new(),
            cleartext_ok: Vec::new(),
            roots: Arc::new(OnceLock::new()),
            agents: Arc::new(Mutex::new(HashMap::new())),
            opts,
        }
    }

    /// Sends `token` to the origin of `api_base` (and nowhere else) the
    /// way `forge` expects it. A base that is not https (loopback excepted)
    /// gets no token: it would travel in the clear. The first token bound
    /// to an origin stays its only one.
    #[must_use]
    pub fn with_token(mut self, api_base: &str, forge: Forge, token: Token) -> Self {
        let Some(origin) = Origin::of(api_base) else {
            return self;
        };
        if origin.scheme != "https" && !origin.is_loopback() {
            log::warn!("not sending a token to {origin}: it is not https");
            return self;
        }
        match self.credentials.iter().find(|c| c.origin == origin) {
            None => self.credentials.push(Credential {
                origin,
                forge,
                token,
            }),
            Some(c) if c.forge != forge => {
                log::warn!(
                    "{origin} already has a {:?} token; not sending it another",
                    c.forge
                );
            }
            Some(_) => {}
        }
        self
    }

    /// Trusts the certificates of the PEM file `ca_file` for the origin of
    /// `base`, in addition to the trust store. A file that cannot be read
    /// fails every request to that origin with [`Error::Tls`] naming it
    /// (never a silent fallback to the trust store alone); a `base` that is
    /// not an http(s) URL is ignored.
    #[must_use]
    pub fn with_ca_file(mut self, base: &str, ca_file: &Path) -> Self {
        let Some(origin) = Origin::of(base) else {
            return self;
        };
        let certs = load_pem(ca_file).map_err(|e| format!("the CA file for {origin}: {e}"));
        match (self.cas.iter_mut().find(|(o, _)| *o == origin), certs) {
            (Some((_, Ok(have))), Ok(c)) => Arc::make_mut(have).extend(c),
            (Some((_, slot)), Err(e)) => *slot = Err(e),
            (Some((_, Err(_))), Ok(_)) => {}
            (None, certs) => self.cas.push((origin, certs.map(Arc::new))),
        }
        self
    }

    /// The options in force.
    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// Replaces every occurrence of a token in `text` by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for c in &self.credentials {
            if !c.token.expose().is_empty() {
                out = out.replace(c.token.expose(), "***");
            }
        }
        out
    }

    /// Accepts plain http from the origin of `base`: only for files whose
    /// digests are pinned from elsewhere (a fleet's mirror serving the
    /// releases of a pin file), so that a tampered answer is refused by its
    /// digest, not trusted. Tokens are never sent there.
    #[must_use]
    pub fn with_plain_http(mut self, base: &str) -> Self {
        if let Some(origin) = Origin::of(base) {
            self.cleartext_ok.push(origin);
        }
        self
    }

    /// Refuses plain http except to loopback, unless allowed.
    pub fn check_url(&self, url: &str) -> Result<(), Error> {
        if url.starts_with("https://")
            || url.starts_with("file://")
            || self.opts.allow_insecure
            || is_loopback(url)
            || (url.starts_with("http://")
                && Origin::of(url).is_some_and(|o| self.cleartext_ok.contains(&o)))
        {
            return Ok(());
        }
        Err(Error::Insecure {
            url: url.to_owned(),
            via: None,
        })
    }

    fn roots(&self) -> Result<Option<Arc<Vec<Certificate<'static>>>>, Error> {
        self.roots
            .get_or_init(|| self.opts.trust.load().map(|c| c.map(Arc::new)))
            .clone()
            .map_err(|message| Error::Tls { message })
    }

    fn agent(&self, origin: Option<&Origin>, download: bool) -> Result<ureq::Agent, Error> {
        let key = AgentKey {
            download,
            proxy: origin
                .and_then(|o| self.opts.proxies.for_origin(o))
                .map(str::to_owned),
            ca: origin.and_then(|o| self.cas.iter().position(|(c, _)| c == o)),
        };
        let mut agents = self.agents.lock().expect("agents lock");
        if let Some(a) = agents.get(&key) {
            return Ok(a.clone());
        }
        let base = self.roots()?;
        let roots = match (key.ca, base) {
            (None, None) => RootCerts::WebPki,
            (None, Some(b)) => RootCerts::Specific(b),
            (Some(i), b) => {
                let extra = self.cas[i]
                    .1
                    .clone()
                    .map_err(|message| Error::Tls { message })?;
                let mut all: Vec<Certificate<'static>> =
                    b.map(|b| (*b).clone()).unwrap_or_default();
                all.extend(extra.iter().cloned());
                RootCerts::Specific(Arc::new(all))
            }
        };
        let proxy = match &key.proxy {
            Some(p) => Some(ureq::Proxy::new(p).map_err(|e| Error::Transport {
                url: p.clone(),
                message: format!("the proxy from the environment is not usable: {e}"),
            })?),
            None => None,
        };
        let overall = (!download).then_some(self.opts.overall_timeout);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .timeout_connect(Some(self.opts.connect_timeout))
            .timeout_recv_response(Some(self.opts.read_timeout))
            .timeout_recv_body(overall)
            .timeout_per_read(Some(self.opts.read_timeout))
            .timeout_global(overall)
            // Redirects are followed by `get`, which checks every hop.
            .max_redirects(0)
            .proxy(proxy)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        agents.insert(key, agent.clone());
        Ok(agent)
    }

    /// A GET with retries on transient failures. `headers` are extra
    /// request headers; `download` drops the overall timeout (large bodies).
    /// Redirects are followed up to `max_redirects`, each hop checked.
    /// A non-2xx/304/206 status is an error, a used-up rate limit a
    /// [`Error::RateLimited`] that is never retried.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
        download: bool,
    ) -> Result<Answer, Error> {
        self.check_url(url)?;
        let mut pause = self.opts.backoff;
        let mut attempt = 1;
        loop {
            match self.follow(url, headers, download) {
                Err(e) if e.is_transient() && attempt < self.opts.attempts => {
                    log::warn!(
                        "{e}; retrying in {} ms (attempt {} of {})",
                        pause.as_millis(),
                        attempt + 1,
                        self.opts.attempts
                    );
                    std::thread::sleep(pause);
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn follow(
        &self,
        url: &str,
        headers: &[(&str, String)],
        download: bool,
    ) -> Result<Answer, Error> {
        let mut current = url.to_owned();
        let mut hops = 0;
        loop {
            let answer = self.get_once(&current, headers, download)?;
            if !is_redirect(answer.status) {
                return self.judge(&current, answer);
            }
            let Some(location) = answer.header("location") else {
                return self.judge(&current, answer);
            };
            let next = origin::resolve(&current, location);
            hops += 1;
            if hops > self.opts.max_redirects {
                return Err(Error::Transport {
                    url: url.to_owned(),
                    message: format!("more than {} redirects", self.opts.max_redirects),
                });
            }
            if let Err(Error::Insecure { .. }) = self.check_url(&next) {
                return Err(Error::Insecure {
                    url: without_query(&next),
                    via: Some(without_query(&current)),
                });
            }
            log::debug!(
                "{} redirects to {}",
                without_query(&current),
                without_query(&next)
            );
            current = next;
        }
    }

    fn get_once(
        &self,
        url: &str,
        headers: &[(&str, String)],
        download: bool,
    ) -> Result<Answer, Error> {
        let origin = Origin::of(url);
        let agent = self.agent(origin.as_ref(), download)?;
        let mut req = agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let credential = origin
            .as_ref()
            .and_then(|o| self.credentials.iter().find(|c| c.origin == *o));
        if let Some(c) = credential {
            req = match c.forge {
                Forge::Github => {
                    req.header("Authorization", format!("Bearer {}", c.token.expose()))
                }
                Forge::Gitlab => req.header("PRIVATE-TOKEN", c.token.expose()),
            };
        }
        log::debug!("GET {}", without_query(url));
        let resp = req.call().map_err(|e| self.transport_error(url, &e))?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        Ok(Answer {
            status,
            headers,
            body: resp.into_body(),
            token_sent: credential.is_some(),
        })
    }

    /// A final answer: 2xx and 304 pass, a used-up rate limit and other
    /// statuses are errors.
    fn judge(&self, url: &str, answer: Answer) -> Result<Answer, Error> {
        let status = answer.status;
        if (200..300).contains(&status) || status == 304 {
            return Ok(answer);
        }
        let remaining = answer
            .header("x-ratelimit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if status == 429 || (status == 403 && remaining == Some(0)) {
            let reset = answer
                .header("x-ratelimit-reset")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .and_then(|s| Timestamp::from_second(s).ok());
            return Err(Error::RateLimited {
                url: without_query(url),
                reset,
                token_sent: answer.token_sent,
            });
        }
        let body = answer.text(4096).unwrap_or_default();
        let body = upgrade_core::names::shorten(&self.redact(body.trim()), 300);
        Err(Error::Status {
            url: without_query(url),
            status,
            body,
        })
    }

    /// A read or connect error in our words, token redacted.
    pub fn transport_error(&self, url: &str, e: &ureq::Error) -> Error {
        match e {
            ureq::Error::Timeout(t) => Error::Timeout {
                url: without_query(url),
                what: t.to_string(),
            },
            ureq::Error::Io(io)
                if io.kind() == std::io::ErrorKind::TimedOut
                    || io.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Error::Timeout {
                    url: without_query(url),
                    what: "read".into(),
                }
            }
            other => {
                let mut message = self.redact(&other.to_string());
                if message.to_ascii_lowercase().contains("certificate") {
                    message.push_str(
                        "; if the server's certificate comes from a private CA, trust it with \
                         SSL_CERT_FILE or the component's `ca_file`",
                    );
                }
                Error::Transport {
                    url: without_query(url),
                    message,
                }
            }
        }
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GITHUB: &str = "https://api.github.com";

    #[test]
    fn link_header() {
        let l = concat!(
            r#"<https://api.github.com/repositories/1/releases?page=2>; rel="next", "#,
            r#"<https://api.github.com/repositories/1/releases?page=5>; rel="last""#
        );
        assert_eq!(
            next_link(l).as_deref(),
            Some("https://api.github.com/repositories/1/releases?page=2")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn https_required_except_loopback() {
        let h = Http::new(HttpOptions::default());
        assert!(h.check_url("https://api.github.com").is_ok());
        assert!(h.check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(h.check_url("http://localhost/x").is_ok());
        assert!(h.check_url("http://[::1]:80/x").is_ok());
        assert!(h.check_url("file:///srv/mirror").is_ok());
        let e = h.check_url("http://mirror.internal/x").unwrap_err();
        assert!(e.to_string().contains("refusing plain http"), "{e}");
        let h = Http::new(HttpOptions {
            allow_insecure: true,
            ..HttpOptions::default()
        });
        assert!(h.check_url("http://mirror.internal/x").is_ok());
    }

    #[test]
    fn token_never_prints() {
        let t = Token::new("ghp_secret123");
        assert_eq!(format!("{t} {t:?}"), "*** Token(***)");
        let h = Http::new(HttpOptions::default()).with_token(GITHUB, Forge::Github, t.clone());
        assert_eq!(h.redact("bad token ghp_secret123!"), "bad token ***!");
        assert!(!format!("{h:?}").contains("secret"));
        let plain = Http::new(HttpOptions::default()).with_token(
            "http://ghe.example/api/v3",
            Forge::Github,
            t,
        );
        assert!(plain.credentials.is_empty(), "no token over plain http");
    }
}
