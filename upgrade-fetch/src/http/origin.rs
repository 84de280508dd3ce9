//! Origins (scheme, host, port): what a credential or a CA is bound to, and
//! how a redirect's `Location` is resolved against the URL it came from.

use std::fmt;

/// A URL's origin: scheme, lower-case host and port (default ports filled in).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// `https` or `http`.
    pub scheme: String,
    /// The host, lower-case, without brackets for IPv6.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Origin {
    /// The origin of an `http(s)://` URL; `None` for anything else.
    pub fn of(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next()?;
        // Credentials in the URL are not part of the origin.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some("") | None => default,
            Some(p) => p.parse().ok()?,
        };
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether the host is `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// `location` (a redirect's target) resolved against `base`.
pub fn resolve(base: &str, location: &str) -> String {
    let location = location.trim();
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = &rest[authority.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{authority}{dir}/{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = Origin::of("https://API.github.com/repos/x").unwrap();
        assert_eq!(
            (o.scheme.as_str(), o.host.as_str(), o.port),
            ("https", "api.github.com", 443)
        );
        assert_eq!(Origin::of("http://127.0.0.1:8080").unwrap().port, 8080);
        assert_eq!(Origin::of("http://[::1]:9/x").unwrap().host, "::1");
        assert!(Origin::of("http://[::1]:9/x").unwrap().is_loopback());
        assert_eq!(
            Origin::of("https://u:p@h.example/").unwrap().host,
            "h.example"
        );
        assert_ne!(
            Origin::of("https://h.example"),
            Origin::of("http://h.example")
        );
        assert_ne!(
            Origin::of("https://h.example"),
            Origin::of("https://h.example:8443")
        );
        assert_eq!(
            Origin::of("https://h.example"),
            Origin::of("https://h.example:443/a")
        );
        assert_eq!(Origin::of("file:///srv"), None);
        assert_eq!(Origin::of("https://h.example:99999/"), None);
    }

    #[test]
    fn locations() {
        let base = "https://a.example/x/y?z=1";
        assert_eq!(resolve(base, "http://b.example/q"), "http://b.example/q");
        assert_eq!(resolve(base, "//c.example/q"), "https://c.example/q");
        assert_eq!(resolve(base, "/root"), "https://a.example/root");
        assert_eq!(resolve(base, "sib"), "https://a.example/x/sib");
    }
}
