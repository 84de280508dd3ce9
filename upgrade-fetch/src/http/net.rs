//! What the environment says about the network, read as operators expect:
//! proxies by curl's rules and the trust store (the system's bundle, or
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` instead).

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, PemItem};

use super::origin::Origin;

/// Proxies for outgoing requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// For `https://` URLs: `HTTPS_PROXY` (or `https_proxy`), else `ALL_PROXY`.
    pub https: Option<String>,
    /// For `http://` URLs: `HTTP_PROXY` (or `http_proxy`), else `ALL_PROXY`.
    pub http: Option<String>,
    /// Hosts reached directly (`NO_PROXY` or `no_proxy`, comma-separated):
    /// `*`, a domain (matching itself and its subdomains, a leading `.` or
    /// `*.` allowed), an IP address or a CIDR block.
    pub no_proxy: Vec<String>,
}

fn env_any(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        std::env::var(n)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

impl Proxies {
    /// The proxies the environment names.
    pub fn from_env() -> Proxies {
        let all = env_any(&["ALL_PROXY", "all_proxy"]);
        Proxies {
            https: env_any(&["HTTPS_PROXY", "https_proxy"]).or_else(|| all.clone()),
            http: env_any(&["HTTP_PROXY", "http_proxy"]).or(all),
            no_proxy: env_any(&["NO_PROXY", "no_proxy"])
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The proxy a request to `origin` goes through, if any.
    pub fn for_origin(&self, origin: &Origin) -> Option<&str> {
        let proxy = match origin.scheme.as_str() {
            "https" => self.https.as_deref(),
            _ => self.http.as_deref(),
        }?;
        (!self.no_proxy.iter().any(|e| no_proxy_matches(e, origin))).then_some(proxy)
    }
}

fn no_proxy_matches(entry: &str, origin: &Origin) -> bool {
    if entry == "*" {
        return true;
    }
    let host = origin.host.as_str();
    if let Some((net, bits)) = entry.split_once('/') {
        let (Ok(net), Ok(bits), Ok(ip)) = (
            net.parse::<IpAddr>(),
            bits.parse::<u32>(),
            host.parse::<IpAddr>(),
        ) else {
            return false;
        };
        return match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        };
    }
    let entry = entry.trim_start_matches("*.").trim_start_matches('.');
    let entry = entry.trim_start_matches('[').trim_end_matches(']');
    // An optional port: `host:port` (not for bare IPv6 addresses).
    let (name, port) = match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
        _ => (entry, None),
    };
    let name = name.to_ascii_lowercase();
    port.is_none_or(|p| p == origin.port) && (host == name || host.ends_with(&format!(".{name}")))
}

/// Where the trusted CA certificates come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `SSL_CERT_FILE`: a PEM bundle used instead of the system's.
    pub cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR`: directories (colon-separated) of PEM files used
    /// instead of the system's.
    pub cert_dirs: Vec<PathBuf>,
}

/// The system bundles looked for, in order (Debian and Ubuntu, Fedora and
/// RHEL, openSUSE, RHEL's extracted bundle, Alpine and others).
pub const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The largest certificate file read.
pub const MAX_PEM: u64 = 16 * 1024 * 1024;

impl Trust {
    /// The trust settings the environment names.
    pub fn from_env() -> Trust {
        Trust {
            cert_file: env_any(&["SSL_CERT_FILE"]).map(PathBuf::from),
            cert_dirs: env_any(&["SSL_CERT_DIR"])
                .map(|v| {
                    v.split(':')
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The certificates trusted: those of `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` when either is set, else the first system bundle
    /// found; `None` when there is none (the compiled-in Mozilla roots are
    /// used then).
    pub fn load(&self) -> Result<Option<Vec<Certificate<'static>>>, String> {
        if self.cert_file.is_some() || !self.cert_dirs.is_empty() {
            let mut certs = Vec::new();
            if let Some(f) = &self.cert_file {
                certs.extend(load_pem(f).map_err(|e| format!("SSL_CERT_FILE: {e}"))?);
            }
            for dir in &self.cert_dirs {
                let entries = std::fs::read_dir(dir)
                    .map_err(|e| format!("SSL_CERT_DIR: cannot read {}: {e}", dir.display()))?;
                for entry in entries.flatten() {
                    if entry
                        .file_type()
                        .is_ok_and(|t| t.is_file() || t.is_symlink())
                    {
                        // Files that are not certificates (an index, a README) are skipped.
                        certs.extend(load_pem(&entry.path()).unwrap_or_default());
                    }
                }
            }
            if certs.is_empty() {
                return Err("SSL_CERT_FILE / SSL_CERT_DIR hold no certificate".into());
            }
            return Ok(Some(certs));
        }
        for bundle in SYSTEM_BUNDLES {
            if let Ok(certs) = load_pem(Path::new(bundle))
                && !certs.is_empty()
            {
                log::debug!("trusting the {} certificates of {bundle}", certs.len());
                return Ok(Some(certs));
            }
        }
        log::debug!("no system certificate bundle found; trusting the compiled-in roots");
        Ok(None)
    }
}

/// The certificates of a PEM file (at most [`MAX_PEM`] bytes, a regular file).
pub fn load_pem(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(format!("{shown} is larger than {MAX_PEM} bytes"));
    }
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{shown} is not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(url: &str) -> Origin {
        Origin::of(url).unwrap()
    }

    #[test]
    fn no_proxy_follows_curl() {
        let p = Proxies {
            https: Some("http://proxy:3128".into()),
            http: None,
            no_proxy: vec![
                "internal.example".into(),
                ".corp".into(),
                "10.0.0.0/8".into(),
                "::1".into(),
                "mirror:8443".into(),
            ],
        };
        assert_eq!(
            p.for_origin(&o("https://api.github.com")),
            Some("http://proxy:3128")
        );
        assert_eq!(
            p.for_origin(&o("http://api.github.com")),
            None,
            "no http proxy set"
        );
        assert_eq!(p.for_origin(&o("https://internal.example")), None);
        assert_eq!(
            p.for_origin(&o("https://a.internal.example")),
            None,
            "subdomains too"
        );
        assert!(p.for_origin(&o("https://notinternal.example")).is_some());
        assert_eq!(p.for_origin(&o("https://git.corp")), None);
        assert_eq!(p.for_origin(&o("https://10.1.2.3")), None);
        assert!(p.for_origin(&o("https://11.1.2.3")).is_some());
        assert_eq!(p.for_origin(&o("https://[::1]:9")), None);
        assert_eq!(p.for_origin(&o("https://mirror:8443")), None);
        assert!(p.for_origin(&o("https://mirror")).is_some(), "another port");
        let all = Proxies {
            no_proxy: vec!["*".into()],
            ..p
        };
        assert_eq!(all.for_origin(&o("https://api.github.com")), None);
    }

    #[test]
    fn a_missing_or_empty_cert_file_is_an_error() {
        let t = Trust {
            cert_file: Some("/nonexistent/ca.pem".into()),
            cert_dirs: vec![],
        };
        assert!(
            t.load()
                .unwrap_err()
                .contains("SSL_CERT_FILE: cannot read /nonexistent")
        );
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "not pem").unwrap();
        let e = load_pem(f.path()).unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        assert!(
            load_pem(Path::new("/dev/zero"))
                .unwrap_err()
                .contains("not a regular file")
        );
    }
}
