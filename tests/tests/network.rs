//! Credentials, TLS, redirects and proxies against real servers on
//! loopback: a token reaches only its own API's origin, a private CA is
//! trusted through `SSL_CERT_FILE` or a component's `ca_file`, an https →
//! http redirect is refused naming the hop, and proxies from the
//! environment are used (and bypassed by `NO_PROXY`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use obs_upgrade_tests::archives::{checksums, fake_binary, promu};
use obs_upgrade_tests::bin;
use obs_upgrade_tests::proxy::ConnectProxy;
use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease, ReleaseServer};
use obs_upgrade_tests::tls::PrivateCa;
use upgrade_core::catalog::Platform;
use upgrade_core::config::{Component, Format, Stack};
use upgrade_core::ports::ReleaseSource;
use upgrade_fetch::api::ApiClient;
use upgrade_fetch::http::{HttpOptions, Proxies, Token, Trust};
use upgrade_fetch::sources::{Forges, Sources};
use upgrade_fetch::store::Store;

const GH: &str = "ghp_github_secret_0001";
const GL: &str = "glpat-gitlab-secret-0002";

fn node_releases() -> Vec<FakeRelease> {
    let ver = "1.9.1";
    let (name, tgz) = promu(
        "node_exporter",
        ver,
        "amd64",
        &[("node_exporter", &fake_binary("node_exporter", ver))],
    );
    let sums = checksums(&[(&name, &tgz)]);
    let asset = |name: &str, data: Vec<u8>| FakeAsset {
        name: name.into(),
        data: Arc::new(data),
        with_digest: false,
    };
    vec![FakeRelease::new(
        &format!("v{ver}"),
        "2026-01-01T00:00:00Z",
        vec![asset(&name, tgz), asset("sha256sums.txt", sums)],
    )]
}

/// Options that read nothing from this process's environment.
fn opts(trust: Trust, proxies: Proxies) -> HttpOptions {
    HttpOptions {
        attempts: 1,
        backoff: Duration::from_millis(10),
        trust,
        proxies,
        ..HttpOptions::default()
    }
}

fn forges(github: &str, gitlab: &str) -> Forges {
    Forges {
        github_api: github.into(),
        gitlab_api: gitlab.into(),
        github_token: Some(Token::new(GH)),
        gitlab_token: Some(Token::new(GL)),
    }
}

fn stack(yaml: &str) -> Stack {
    Stack::from_text(yaml, Format::Yaml, "t.yaml", None).unwrap()
}

/// Lists and stages `component` through the client `Forges::client` builds.
fn list_and_stage(f: &Forges, o: HttpOptions, comp: &Component, dir: &Path) -> Result<(), String> {
    let http = f.client(o, &[comp]);
    let sources = Sources::new(
        ApiClient::new(http.clone(), dir.join("api"), Duration::ZERO, false),
        &f.github_api,
        &f.gitlab_api,
        None,
    );
    let release = sources
        .releases(comp)
        .map_err(|e| e.to_string())?
        .pop()
        .ok_or("no release")?;
    let store = Store::new(
        dir.join("opt"),
        dir.join("cache"),
        http,
        Platform::new("linux", "amd64"),
    );
    store
        .stage(comp, &release, &mut |_, _| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn auth_headers(server: &ReleaseServer, prefix: &str) -> Vec<(Option<String>, Option<String>)> {
    server
        .seen(prefix)
        .iter()
        .map(|s| {
            (
                s.headers.get("authorization").cloned(),
                s.headers.get("private-token").cloned(),
            )
        })
        .collect()
}

#[test]
fn a_token_never_reaches_an_asset_host_or_a_redirect_target() {
    let api = ReleaseServer::start();
    let assets = ReleaseServer::start();
    for s in [&api, &assets] {
        s.state()
            .github
            .insert("prometheus/node_exporter".into(), node_releases());
    }
    // The release data names another origin for its assets.
    api.state().faults.asset_base = Some(assets.url());
    let st = stack(&format!(
        "components:\n  node_exporter: {{api_url: '{}'}}\n",
        api.url()
    ));
    let dir = tempfile::tempdir().unwrap();
    let f = forges(&api.url(), "https://gitlab.invalid");
    list_and_stage(
        &f,
        opts(Trust::default(), Proxies::default()),
        &st.components["node_exporter"],
        dir.path(),
    )
    .unwrap();
    let bearer = Some(format!("Bearer {GH}"));
    assert_eq!(auth_headers(&api, "/repos/"), vec![(bearer.clone(), None)]);
    let downloads = auth_headers(&assets, "/dl/");
    assert_eq!(downloads.len(), 2, "archive and checksums: {downloads:?}");
    assert!(
        downloads.iter().all(|h| *h == (None, None)),
        "{downloads:?}"
    );

    // The API redirects to another origin: the token stays behind.
    let api2 = ReleaseServer::start();
    api2.state().faults.api_redirect = Some(assets.url());
    let st = stack(&format!(
        "components:\n  node_exporter: {{api_url: '{}'}}\n",
        api2.url()
    ));
    let f = forges(&api2.url(), "https://gitlab.invalid");
    let dir = tempfile::tempdir().unwrap();
    list_and_stage(
        &f,
        opts(Trust::default(), Proxies::default()),
        &st.components["node_exporter"],
        dir.path(),
    )
    .unwrap();
    assert_eq!(auth_headers(&api2, "/repos/"), vec![(bearer, None)]);
    let listed = auth_headers(&assets, "/repos/");
    assert_eq!(
        listed,
        vec![(None, None)],
        "the redirect target got no token"
    );
}

fn cli(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin("obs-upgrade"));
    c.arg("--root").arg(root).args(args).env("NO_COLOR", "1");
    for v in [
        "RUST_LOG",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "OBS_UPGRADE_GITHUB_TOKEN",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "OBS_UPGRADE_GITLAB_TOKEN",
        "GITLAB_TOKEN",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

/// A root with this stack file and `node_exporter` 1.8.0 and `loki` 3.0.0
/// installed (so that `check` lists their releases).
fn root_with(yaml: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/obs-upgrade");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("stack.yaml"), yaml).unwrap();
    let bin_dir = root.path().join("usr/local/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    for (name, ver) in [("node_exporter", "1.8.0"), ("loki", "3.0.0")] {
        let path = bin_dir.join(name);
        std::fs::write(&path, fake_binary(name, ver)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn each_forge_gets_its_own_token_from_the_environment() {
    let github = ReleaseServer::start();
    let gitlab = ReleaseServer::start();
    github
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    gitlab.state().gitlab.insert("grafana/loki".into(), vec![]);
    let root = root_with(&format!(
        "components:\n  node_exporter: {{api_url: '{}'}}\n  \
         loki: {{source: gitlab, api_url: '{}'}}\n",
        github.url(),
        gitlab.url()
    ));
    let o = cli(
        root.path(),
        &["check"],
        &[
            ("OBS_UPGRADE_GITHUB_TOKEN", GH),
            ("OBS_UPGRADE_GITLAB_TOKEN", GL),
            ("RUST_LOG", "trace"),
        ],
    );
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(0), "{shown}");
    // The listing and the security advisories, each with the GitHub token.
    assert_eq!(
        auth_headers(&github, "/repos/"),
        vec![(Some(format!("Bearer {GH}")), None); 2]
    );
    assert_eq!(
        auth_headers(&gitlab, "/api/v4/"),
        vec![(None, Some(GL.to_owned()))],
        "the GitLab token, the GitLab way, and not GitHub's"
    );
    assert!(
        shown.contains("GET http://127.0.0.1:"),
        "trace logging is on: {shown}"
    );
    // Even at trace level nothing prints a token (the HTTP library's wire
    // dump is held back), in text or in its hex rows.
    for secret in [GH, GL] {
        assert!(!shown.contains(secret), "{shown}");
        let hex_start = hex::encode(&secret.as_bytes()[..8]);
        assert!(!shown.replace(' ', "").contains(&hex_start), "{shown}");
    }
}

#[test]
fn a_private_ca_works_through_ssl_cert_file_and_through_ca_file() {
    let ca = PrivateCa::new();
    let server = ReleaseServer::start_tls(&ca);
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(&dir.path().join("private-ca.pem"));
    let yaml = format!(
        "components:\n  node_exporter: {{api_url: '{}'}}\n",
        server.url()
    );
    let root = root_with(&yaml);
    let args = ["check"];
    // Not trusted by default: a clear error that names both ways out.
    let o = cli(root.path(), &args, &[]);
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("SSL_CERT_FILE or the component's `ca_file`"),
        "{shown}"
    );
    let o = cli(
        root.path(),
        &args,
        &[("SSL_CERT_FILE", ca_file.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("1.9.1"), "{}", text(&o));

    // The per-source option, with the system store for everything else.
    let root = root_with(&format!(
        "components:\n  node_exporter: {{api_url: '{}', ca_file: '{}'}}\n",
        server.url(),
        ca_file.display()
    ));
    let o = cli(root.path(), &args, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A CA file that cannot be read is an error naming it, not a fallback.
    let root = root_with(&format!(
        "components:\n  node_exporter: {{api_url: '{}', ca_file: /nonexistent/ca.pem}}\n",
        server.url()
    ));
    let o = cli(root.path(), &args, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("cannot read /nonexistent/ca.pem"),
        "{}",
        text(&o)
    );

    // Downloads from that origin are trusted too (library, same client).
    let st = stack(&format!(
        "components:\n  node_exporter: {{api_url: '{}', ca_file: '{}'}}\n",
        server.url(),
        ca_file.display()
    ));
    let f = forges(&server.url(), "https://gitlab.invalid");
    list_and_stage(
        &f,
        opts(Trust::default(), Proxies::default()),
        &st.components["node_exporter"],
        dir.path(),
    )
    .unwrap();
}

#[test]
fn an_https_to_http_redirect_is_refused_naming_the_hop() {
    let ca = PrivateCa::new();
    let server = ReleaseServer::start_tls(&ca);
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    server.state().faults.redirect = true;
    server.state().faults.redirect_base = Some("http://downloads.example.invalid".into());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(&dir.path().join("ca.pem"));
    let st = stack(&format!(
        "components:\n  node_exporter: {{api_url: '{}', ca_file: '{}'}}\n",
        server.url(),
        ca_file.display()
    ));
    let f = forges(&server.url(), "https://gitlab.invalid");
    let err = list_and_stage(
        &f,
        opts(Trust::default(), Proxies::default()),
        &st.components["node_exporter"],
        dir.path(),
    )
    .unwrap_err();
    assert!(
        err.contains("refusing plain http for http://downloads.example.invalid/dl/v1.9.1/")
            && err.contains(&format!(
                "(a redirect from {}/redirect/v1.9.1/",
                server.url()
            )),
        "{err}"
    );
}

#[test]
fn proxies_from_the_environment_are_used_and_no_proxy_bypasses_them() {
    let ca = PrivateCa::new();
    let server = ReleaseServer::start_tls(&ca);
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    let proxy = ConnectProxy::start();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(&dir.path().join("ca.pem"));
    let root = root_with(&format!(
        "components:\n  node_exporter: {{api_url: '{}', ca_file: '{}'}}\n",
        server.url(),
        ca_file.display()
    ));
    let args = ["check"];
    let port = server.url().rsplit(':').next().unwrap().to_owned();
    let o = cli(root.path(), &args, &[("HTTPS_PROXY", &proxy.url())]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The listing and the security advisories, both through the proxy.
    assert_eq!(proxy.targets(), vec![format!("localhost:{port}"); 2]);
    // NO_PROXY, curl's way: the domain and its subdomains go direct.
    let o = cli(
        root.path(),
        &args,
        &[
            ("https_proxy", &proxy.url()),
            ("NO_PROXY", "example.com,localhost"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(proxy.targets().len(), 2, "not through the proxy");
    // HTTP_PROXY is for http URLs only; plain http goes through it.
    let plain = ReleaseServer::start();
    plain
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    let root = root_with(&format!(
        "components:\n  node_exporter: {{api_url: '{}'}}\n",
        plain.url()
    ));
    let o = cli(root.path(), &args, &[("HTTP_PROXY", &proxy.url())]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plain_port = plain.url().rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        proxy.targets().last(),
        Some(&format!("127.0.0.1:{plain_port}"))
    );
}
