//! Where a service answers: its address, scheme, credentials and paths,
//! read from the command line its unit runs (`ExecStart`) and the web
//! configuration file it names, overridden per component by the stack file.
//!
//! Zero configuration first: an exporter started with
//! `--web.listen-address=10.0.0.5:9443 --web.config.file=/etc/x/web.yml` is
//! probed at `https://10.0.0.5:9443` without a word in the stack file; only
//! what cannot be derived (a basic-auth password, a private CA) is asked for.
//! Every derived value keeps where it came from, for `config show` and for
//! error messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain HTTP.
    #[default]
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Basic-auth credentials; the password is read from a file when probing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// A file holding the password (trailing newline ignored).
    pub password_file: String,
}

/// The stack file's `endpoint` of a component: each key set here wins over
/// what the unit's command line says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointOverride {
    /// `host:port` to probe (`10.0.0.5:9100`, `node1.example:9100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// PEM CA certificates that sign the service's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// A client certificate (PEM) for services that require one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// Its private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Basic-auth credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// A file holding a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    /// The metrics path (`/metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_path: Option<String>,
}

/// How a probe authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// Basic auth.
    Basic(BasicAuth),
    /// A bearer token read from a file.
    BearerFile(String),
}

/// Where and how to reach a service, each part with its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// `host:port` (IPv6 in brackets).
    pub address: String,
    /// Prepended to every catalog path (Prometheus' `--web.route-prefix`).
    pub path_prefix: String,
    /// The metrics path.
    pub metrics_path: String,
    /// CA certificates trusted for it (besides the system's).
    pub ca_file: Option<String>,
    /// A client certificate and key.
    pub client_cert: Option<(String, String)>,
    /// Credentials.
    pub auth: Option<Auth>,
    /// What the service requires that no credential was given for.
    pub missing: Vec<String>,
    /// Where each part came from, in words.
    pub provenance: Vec<String>,
}

impl Endpoint {
    /// `scheme://address`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.address)
    }

    /// The URL of a catalog path (route prefix applied).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base(), self.path_prefix)
    }

    /// The metrics URL.
    pub fn metrics_url(&self) -> String {
        self.url(&self.metrics_path)
    }
}

/// What an exporter-toolkit web configuration file (`--web.config.file`)
/// says about how clients must connect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebConfig {
    /// The server certificate file (TLS is on).
    pub tls_cert_file: Option<String>,
    /// Clients must present a certificate.
    pub client_cert_required: bool,
    /// Users of basic auth (bcrypt hashes are not kept).
    pub basic_auth_users: Vec<String>,
}

#[derive(Deserialize)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, yaml_serde::Value>>,
}

#[derive(Deserialize)]
struct RawTls {
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
}

/// Parses a web configuration file's text (other keys are ignored).
pub fn parse_web_config(text: &str) -> Result<WebConfig, String> {
    let raw: RawWebConfig = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    let tls = raw.tls_server_config;
    Ok(WebConfig {
        tls_cert_file: tls.as_ref().and_then(|t| {
            t.cert_file
                .clone()
                .or_else(|| t.cert.as_ref().map(|_| String::new()))
        }),
        client_cert_required: tls.as_ref().is_some_and(|t| {
            t.client_auth_type
                .as_deref()
                .is_some_and(|c| c.starts_with("Require"))
        }),
        basic_auth_users: raw
            .basic_auth_users
            .unwrap_or_default()
            .into_keys()
            .collect(),
    })
}

/// Splits a systemd command line into words: double and single quotes,
/// backslash escapes, and the prefixes `-@+!:` of the program dropped.
pub fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.trim().chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if let Some(first) = words.first_mut() {
        *first = first
            .trim_start_matches(['-', '@', '+', '!', ':'])
            .to_owned();
    }
    words
}

/// The value of a flag in `argv`: `--name=value`, `--name value`, or with a
/// single dash (Go's flag package, Loki and Promtail). The last one wins.
pub fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let mut found = None;
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        let bare = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-'))
            .unwrap_or("");
        if let Some(v) = bare
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
        {
            found = Some(v);
        } else if bare == name && i + 1 < argv.len() {
            found = Some(argv[i + 1].as_str());
            i += 1;
        }
        i += 1;
    }
    found
}

/// A listen address as a client reaches it: a wildcard or empty host is
/// probed on loopback (`:9100` → `127.0.0.1:9100`, `[::]:9100` → `[::1]:9100`).
pub fn reachable(listen: &str) -> Option<String> {
    let (host, port) = listen.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        h => h,
    };
    Some(format!("{host}:{port}"))
}

/// Which flag gave which part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `host:port` and the flag(s) it came from.
    pub address: Option<(String, String)>,
    /// The web configuration file.
    pub web_config: Option<String>,
    /// TLS from a flag (Loki's `-server.http-tls-cert-path`).
    pub tls_flag: Option<String>,
    /// The metrics path.
    pub metrics_path: Option<String>,
    /// A route prefix.
    pub path_prefix: Option<(String, String)>,
}

/// Reads the flags every supported program uses for where it listens:
/// exporter-toolkit's `--web.listen-address`, `--web.config.file` and
/// `--web.telemetry-path` (Prometheus, Alertmanager and the exporters),
/// Prometheus' `--web.route-prefix` and `--web.external-url`, Loki's and
/// Promtail's `-server.http-listen-address`/`-port` and TLS paths, Alloy's
/// `--server.http.listen-addr`.
pub fn read_flags(argv: &[String]) -> Flags {
    let mut f = Flags::default();
    if let Some(a) = flag(argv, "web.listen-address") {
        // Several may be given; the first is probed.
        f.address = reachable(a).map(|r| (r, "--web.listen-address".into()));
    } else if let Some(a) = flag(argv, "server.http.listen-addr") {
        f.address = reachable(a).map(|r| (r, "--server.http.listen-addr".into()));
    } else if let Some(port) = flag(argv, "server.http-listen-port") {
        let host = flag(argv, "server.http-listen-address").unwrap_or("");
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        f.address = reachable(&format!("{host}:{port}"))
            .map(|r| (r, "-server.http-listen-address/-port".into()));
    }
    f.web_config = flag(argv, "web.config.file").map(str::to_owned);
    f.tls_flag = flag(argv, "server.http-tls-cert-path").map(str::to_owned);
    f.metrics_path = flag(argv, "web.telemetry-path").map(str::to_owned);
    if let Some(p) = flag(argv, "web.route-prefix") {
        f.path_prefix = Some((
            p.trim_end_matches('/').to_owned(),
            "--web.route-prefix".into(),
        ));
    } else if let Some(url) = flag(argv, "web.external-url") {
        let path = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split_once('/')
            .map_or("", |(_, p)| p)
            .trim_end_matches('/');
        if !path.is_empty() {
            f.path_prefix = Some((format!("/{path}"), "--web.external-url".into()));
        }
    }
    f
}

/// The command a unit runs, and where it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    /// The words.
    pub argv: &'a [String],
    /// Where they were read (`systemctl show node_exporter.service`, a
    /// drop-in path).
    pub source: &'a str,
}

/// Resolves a component's endpoint: the stack file's `endpoint` (`over`)
/// over the command line's flags over the catalog's `port`. `web_config` is
/// the parsed file the command names (read by the caller), with its path.
pub fn resolve(
    over: Option<&EndpointOverride>,
    port: Option<u16>,
    command: Option<Command<'_>>,
    web_config: Option<(&str, &WebConfig)>,
) -> Option<Endpoint> {
    let o = over.cloned().unwrap_or_default();
    let flags = command
        .as_ref()
        .map(|c| read_flags(c.argv))
        .unwrap_or_default();
    let from = command.as_ref().map_or("", |c| c.source);
    let mut provenance = Vec::new();
    let address = if let Some(a) = &o.address {
        provenance.push(format!("address {a} from the stack file"));
        a.clone()
    } else if let Some((a, flag)) = &flags.address {
        provenance.push(format!("address {a} from {flag} in {from}"));
        a.clone()
    } else {
        let port = port?;
        provenance.push(format!("address 127.0.0.1:{port} from the catalog port"));
        format!("127.0.0.1:{port}")
    };
    let mut missing = Vec::new();
    let mut scheme = Scheme::Http;
    if let Some((path, wc)) = web_config {
        if wc.tls_cert_file.is_some() {
            scheme = Scheme::Https;
            provenance.push(format!("https from web config {path}"));
        }
        if !wc.basic_auth_users.is_empty() {
            provenance.push(format!(
                "basic auth required by web config {path} (users: {})",
                wc.basic_auth_users.join(", ")
            ));
            if o.basic_auth.is_none() && o.bearer_token_file.is_none() {
                missing.push(format!(
                    "web config {path} requires basic auth: set `endpoint.basic_auth` \
                     (username, password_file) for this component in the stack file"
                ));
            }
        }
        if wc.client_cert_required && (o.cert_file.is_none() || o.key_file.is_none()) {
            missing.push(format!(
                "web config {path} requires a client certificate: set `endpoint.cert_file` \
                 and `endpoint.key_file` for this component in the stack file"
            ));
        }
    } else if let Some(cert) = &flags.tls_flag {
        scheme = Scheme::Https;
        provenance.push(format!(
            "https from -server.http-tls-cert-path={cert} in {from}"
        ));
    }
    if let Some(s) = o.scheme {
        scheme = s;
        provenance.push(format!("{} from the stack file", s.as_str()));
    }
    let metrics_path = if let Some(p) = &o.metrics_path {
        provenance.push(format!("metrics path {p} from the stack file"));
        p.clone()
    } else if let Some(p) = &flags.metrics_path {
        provenance.push(format!(
            "metrics path {p} from --web.telemetry-path in {from}"
        ));
        p.clone()
    } else {
        "/metrics".to_owned()
    };
    let path_prefix = match &flags.path_prefix {
        Some((p, flag)) => {
            provenance.push(format!("path prefix {p} from {flag} in {from}"));
            p.clone()
        }
        None => String::new(),
    };
    // Without a CA of the stack file's, the server's own certificate file
    // (self-signed, or carrying its chain) is what it presents.
    let ca_file = o.ca_file.clone().or_else(|| {
        web_config
            .and_then(|(_, wc)| wc.tls_cert_file.clone())
            .filter(|c| !c.is_empty() && scheme == Scheme::Https)
    });
    if let Some(ca) = &ca_file {
        let whence = if o.ca_file.is_some() {
            "the stack file"
        } else {
            "the web config's cert_file"
        };
        provenance.push(format!("trusting {ca} from {whence}"));
    }
    let auth = match (&o.basic_auth, &o.bearer_token_file) {
        (Some(b), _) => {
            provenance.push(format!("basic auth as {} from the stack file", b.username));
            Some(Auth::Basic(b.clone()))
        }
        (None, Some(t)) => {
            provenance.push("bearer token from the stack file".to_owned());
            Some(Auth::BearerFile(t.clone()))
        }
        (None, None) => None,
    };
    Some(Endpoint {
        scheme,
        address,
        path_prefix,
        metrics_path,
        ca_file,
        client_cert: o.cert_file.clone().zip(o.key_file.clone()),
        auth,
        missing,
        provenance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_command(s)
    }

    #[test]
    fn commands_split_like_systemd() {
        assert_eq!(
            words(r#"-/usr/bin/x --a="b c" 'd e' f\ g"#),
            ["/usr/bin/x", "--a=b c", "d e", "f g"]
        );
        assert_eq!(words("   "), Vec::<String>::new());
    }

    #[test]
    fn flags_in_every_spelling() {
        let argv = words("/x --web.listen-address 10.0.0.5:9100 -web.telemetry-path=/m");
        assert_eq!(flag(&argv, "web.listen-address"), Some("10.0.0.5:9100"));
        assert_eq!(flag(&argv, "web.telemetry-path"), Some("/m"));
        assert_eq!(flag(&argv, "web.config.file"), None);
        // The program itself is never a flag.
        assert_eq!(
            flag(&words("--web.listen-address=:1"), "web.listen-address"),
            None
        );
    }

    #[test]
    fn wildcards_are_probed_on_loopback() {
        assert_eq!(reachable(":9100").as_deref(), Some("127.0.0.1:9100"));
        assert_eq!(reachable("0.0.0.0:9100").as_deref(), Some("127.0.0.1:9100"));
        assert_eq!(reachable("[::]:9100").as_deref(), Some("[::1]:9100"));
        assert_eq!(
            reachable("127.0.0.2:9101").as_deref(),
            Some("127.0.0.2:9101")
        );
        assert_eq!(reachable("nope"), None);
        assert_eq!(reachable(":99999"), None);
    }

    #[test]
    fn loki_promtail_and_alloy_flags() {
        let f = read_flags(&words(
            "/loki -config.file=/etc/loki.yml -server.http-listen-port=3101",
        ));
        assert_eq!(f.address.unwrap().0, "127.0.0.1:3101");
        let f = read_flags(&words(
            "/promtail -server.http-listen-address=10.1.1.1 -server.http-listen-port 9081",
        ));
        assert_eq!(f.address.unwrap().0, "10.1.1.1:9081");
        let f = read_flags(&words(
            "/alloy run --server.http.listen-addr=0.0.0.0:12346 /c",
        ));
        assert_eq!(f.address.unwrap().0, "127.0.0.1:12346");
        let f = read_flags(&words(
            "/prometheus --web.external-url=https://mon.example/prom/ --web.listen-address=:9091",
        ));
        assert_eq!(f.path_prefix.unwrap().0, "/prom");
    }

    #[test]
    fn web_config_shapes() {
        let wc = parse_web_config(concat!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "basic_auth_users:\n  alice: $2y$10$abc\nhttp_server_config:\n  http2: false\n",
        ))
        .unwrap();
        assert_eq!(wc.tls_cert_file.as_deref(), Some("server.crt"));
        assert!(wc.client_cert_required);
        assert_eq!(wc.basic_auth_users, ["alice"]);
        assert_eq!(parse_web_config("").unwrap(), WebConfig::default());
        assert!(parse_web_config("tls_server_config: [").is_err());
    }

    #[test]
    fn resolution_order_and_provenance() {
        let argv = words(concat!(
            "/usr/local/bin/node_exporter --web.listen-address=10.0.0.5:9443",
            " --web.config.file=/etc/ne/web.yml",
        ));
        let cmd = Command {
            argv: &argv,
            source: "drop-in /etc/systemd/system/node_exporter.service.d/flags.conf",
        };
        let wc = WebConfig {
            tls_cert_file: Some("/etc/ne/tls.crt".into()),
            client_cert_required: false,
            basic_auth_users: vec!["prom".into()],
        };
        let e = resolve(None, Some(9100), Some(cmd), Some(("/etc/ne/web.yml", &wc))).unwrap();
        assert_eq!(e.metrics_url(), "https://10.0.0.5:9443/metrics");
        assert_eq!(e.ca_file.as_deref(), Some("/etc/ne/tls.crt"));
        assert_eq!(e.missing.len(), 1, "{e:?}");
        assert!(e.missing[0].contains("endpoint.basic_auth"), "{e:?}");
        assert!(
            e.provenance[0].contains("--web.listen-address in drop-in"),
            "{e:?}"
        );
        let over = EndpointOverride {
            address: Some("127.0.0.2:9443".into()),
            ca_file: Some("/etc/pki/ca.pem".into()),
            basic_auth: Some(BasicAuth {
                username: "prom".into(),
                password_file: "/etc/obs-upgrade/ne.pass".into(),
            }),
            ..EndpointOverride::default()
        };
        let e = resolve(
            Some(&over),
            Some(9100),
            Some(cmd),
            Some(("/etc/ne/web.yml", &wc)),
        )
        .unwrap();
        assert_eq!(e.base(), "https://127.0.0.2:9443");
        assert!(e.missing.is_empty(), "{e:?}");
        assert_eq!(e.ca_file.as_deref(), Some("/etc/pki/ca.pem"));
        // Nothing known: the catalog port on loopback.
        let e = resolve(None, Some(9100), None, None).unwrap();
        assert_eq!(e.metrics_url(), "http://127.0.0.1:9100/metrics");
    }
}
