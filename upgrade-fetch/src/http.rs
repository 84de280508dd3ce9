//! One HTTP agent for everything: timeouts, retries with backoff on 5xx and
//! connection errors, redirects, https required (loopback excepted), a
//! User-Agent with the tool's version, and a token that never leaves the
//! `Authorization` header.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use jiff::Timestamp;

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
        "refusing plain http for {url}: use https, or allow insecure URLs explicitly (loopback \
            and file:// are always allowed)"
    )]
    Insecure {
        /// The URL.
        url: String,
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
        }
    }
}

/// An answer: status, the headers we use, and a body reader.
pub struct Answer {
    /// The status code.
    pub status: u16,
    headers: Vec<(String, String)>,
    body: ureq::Body,
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
    pub fn text(mut self, limit: u64) -> Result<String, ureq::Error> {
        let bytes = self.body.with_config().limit(limit).read_to_vec()?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The agent.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    download_agent: ureq::Agent,
    token: Option<Token>,
    opts: HttpOptions,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("token", &self.token)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or("");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Http {
    /// An agent with these options and an optional token.
    pub fn new(opts: HttpOptions, token: Option<Token>) -> Self {
        let build = |overall: Option<Duration>| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .user_agent(USER_AGENT)
                .timeout_connect(Some(opts.connect_timeout))
                .timeout_recv_response(Some(opts.read_timeout))
                .timeout_recv_body(overall)
                .timeout_per_read(Some(opts.read_timeout))
                .timeout_global(overall)
                .max_redirects(opts.max_redirects)
                .build()
                .into()
        };
        Http {
            agent: build(Some(opts.overall_timeout)),
            download_agent: build(None),
            token,
            opts,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// Replaces every occurrence of the token in `text` by `***`.
    pub fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(t) if !t.expose().is_empty() => text.replace(t.expose(), "***"),
            _ => text.to_owned(),
        }
    }

    /// Refuses plain http except to loopback, unless allowed.
    pub fn check_url(&self, url: &str) -> Result<(), Error> {
        if url.starts_with("https://")
            || url.starts_with("file://")
            || self.opts.allow_insecure
            || is_loopback(url)
        {
            return Ok(());
        }
        Err(Error::Insecure {
            url: url.to_owned(),
        })
    }

    /// A GET with retries on transient failures. `headers` are extra
    /// request headers; `download` drops the overall timeout (large bodies).
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
            match self.get_once(url, headers, download) {
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

    fn get_once(
        &self,
        url: &str,
        headers: &[(&str, String)],
        download: bool,
    ) -> Result<Answer, Error> {
        let agent = if download {
            &self.download_agent
        } else {
            &self.agent
        };
        let mut req = agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {}", t.expose()));
        }
        log::debug!("GET {url}");
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
        let answer = Answer {
            status,
            headers,
            body: resp.into_body(),
        };
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
                url: url.to_owned(),
                reset,
                token_sent: self.token.is_some(),
            });
        }
        let body = answer.text(4096).unwrap_or_default();
        let body: String = self.redact(body.trim()).chars().take(300).collect();
        Err(Error::Status {
            url: url.to_owned(),
            status,
            body,
        })
    }

    /// A read or connect error in our words, token redacted.
    pub fn transport_error(&self, url: &str, e: &ureq::Error) -> Error {
        match e {
            ureq::Error::Timeout(t) => Error::Timeout {
                url: url.to_owned(),
                what: t.to_string(),
            },
            ureq::Error::Io(io)
                if io.kind() == std::io::ErrorKind::TimedOut
                    || io.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Error::Timeout {
                    url: url.to_owned(),
                    what: "read".into(),
                }
            }
            other => Error::Transport {
                url: url.to_owned(),
                message: self.redact(&other.to_string()),
            },
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
        let h = Http::new(HttpOptions::default(), None);
        assert!(h.check_url("https://api.github.com").is_ok());
        assert!(h.check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(h.check_url("http://localhost/x").is_ok());
        assert!(h.check_url("http://[::1]:80/x").is_ok());
        assert!(h.check_url("file:///srv/mirror").is_ok());
        let e = h.check_url("http://mirror.internal/x").unwrap_err();
        assert!(e.to_string().contains("refusing plain http"), "{e}");
        let h = Http::new(
            HttpOptions {
                allow_insecure: true,
                ..HttpOptions::default()
            },
            None,
        );
        assert!(h.check_url("http://mirror.internal/x").is_ok());
    }

    #[test]
    fn token_never_prints() {
        let t = Token::new("ghp_secret123");
        assert_eq!(format!("{t} {t:?}"), "*** Token(***)");
        let h = Http::new(HttpOptions::default(), Some(t));
        assert_eq!(h.redact("bad token ghp_secret123!"), "bad token ***!");
        assert!(!format!("{h:?}").contains("secret"));
    }
}
