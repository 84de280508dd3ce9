//! upgrade-fetch against a real HTTP server on loopback and a real mirror
//! directory: discovery, caching, rate limits, faults, verification, hostile
//! archives, the store.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use obs_upgrade_tests::archives::{self, checksums, fake_binary, promu};
use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease, ReleaseServer};
use upgrade_core::catalog::Platform;
use upgrade_core::config::{Component, Format, Stack};
use upgrade_core::ports::{Proof, ReleaseSource};
use upgrade_core::version::Version;
use upgrade_fetch::api::ApiClient;
use upgrade_fetch::extract::Limits;
use upgrade_fetch::http::{Forge, Http, HttpOptions, Token};
use upgrade_fetch::sources::Sources;
use upgrade_fetch::store::{self, Store};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn fast_http(token: Option<(String, Token)>) -> Http {
    let http = Http::new(HttpOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(800),
        overall_timeout: Duration::from_secs(5),
        attempts: 3,
        backoff: Duration::from_millis(20),
        ..HttpOptions::default()
    });
    match token {
        Some((base, t)) => http.with_token(&base, Forge::Github, t),
        None => http,
    }
}

fn stack_for(server: &ReleaseServer, extra: &str) -> Stack {
    let yaml = format!(
        "components:\n  node_exporter: {{api_url: '{u}'{extra}}}\n  prometheus: {{api_url: '{u}', allow: major}}\n  loki: {{api_url: '{u}'}}\n  promtail: {{api_url: '{u}'}}\n",
        u = server.url()
    );
    Stack::from_text(&yaml, Format::Yaml, "t.yaml", None).unwrap()
}

fn sources(server: &ReleaseServer, cache: &Path, ttl: Duration, offline: bool) -> Sources {
    let client = ApiClient::new(fast_http(None), cache, ttl, offline);
    Sources::new(client, &server.url(), &server.url(), None)
}

fn asset(name: &str, data: Vec<u8>, with_digest: bool) -> FakeAsset {
    FakeAsset {
        name: name.into(),
        data: Arc::new(data),
        with_digest,
    }
}

/// `node_exporter` releases: 1.9.1 with a checksum file (no API digests), 1.8.2 with API digests.
fn node_releases() -> Vec<FakeRelease> {
    let mut out = Vec::new();
    for (ver, api_digest) in [("1.9.1", false), ("1.8.2", true)] {
        let (name, tgz) = promu(
            "node_exporter",
            ver,
            "amd64",
            &[("node_exporter", &fake_binary("node_exporter", ver))],
        );
        let sums = checksums(&[(&name, &tgz)]);
        out.push(FakeRelease::new(
            &format!("v{ver}"),
            "2026-01-01T00:00:00Z",
            vec![
                asset(&name, tgz, api_digest),
                asset("sha256sums.txt", sums, false),
            ],
        ));
    }
    out
}

#[test]
fn github_listing_pages_drops_drafts_prereleases_and_module_tags() {
    let server = ReleaseServer::start();
    {
        let mut st = server.state();
        st.per_page_max = 2;
        let mut draft = FakeRelease::new("v3.8.0", "2026-11-01T00:00:00Z", vec![]);
        draft.draft = true;
        let mut rc = FakeRelease::new("v3.7.0-rc.0", "2026-10-01T00:00:00Z", vec![]);
        rc.prerelease = true;
        st.github.insert(
            "prometheus/prometheus".into(),
            vec![
                draft,
                rc,
                FakeRelease::new("v3.5.0", "2026-07-14T00:00:00Z", vec![]),
                FakeRelease::new("v0.305.0", "2026-07-14T00:00:00Z", vec![]),
                FakeRelease::new("v2.55.1", "2024-11-01T00:00:00Z", vec![]),
            ],
        );
    }
    let cache = tempfile::tempdir().unwrap();
    let src = sources(&server, cache.path(), Duration::from_secs(900), false);
    let stack = stack_for(&server, "");
    let got = src.releases(&stack.components["prometheus"]).unwrap();
    let versions: Vec<String> = got.iter().map(|r| r.version.to_string()).collect();
    assert_eq!(versions, ["2.55.1", "3.5.0"]);
    assert_eq!(
        got[1].published_at,
        Some("2026-07-14T00:00:00Z".parse().unwrap())
    );
    assert_eq!(
        server.seen("/repos/prometheus/prometheus/releases").len(),
        3,
        "three pages of two"
    );
    // Asked again in the same run: no request.
    src.releases(&stack.components["prometheus"]).unwrap();
    assert_eq!(server.seen("/repos/").len(), 3);
    // A component that asks for pre-releases gets them.
    let pre = Stack::from_text(
        &format!(
            "components:\n  prometheus: {{api_url: '{}', prereleases: true}}\n",
            server.url()
        ),
        Format::Yaml,
        "p.yaml",
        None,
    )
    .unwrap();
    let got = sources(&server, cache.path(), Duration::from_secs(900), false)
        .releases(&pre.components["prometheus"])
        .unwrap();
    assert!(got.iter().any(|r| r.version == v("3.7.0-rc.0")));
}

#[test]
fn shared_repository_is_listed_once_even_in_parallel() {
    let server = ReleaseServer::start();
    let zip = archives::zip(&[("loki-linux-amd64", b"x", 0o755)]);
    server.state().github.insert(
        "grafana/loki".into(),
        vec![FakeRelease::new(
            "v3.5.0",
            "2026-01-01T00:00:00Z",
            vec![asset("loki-linux-amd64.zip", zip, true)],
        )],
    );
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    let cache = tempfile::tempdir().unwrap();
    let src = sources(&server, cache.path(), Duration::from_secs(900), false);
    let stack = stack_for(&server, "");
    let comps: Vec<&Component> = ["loki", "promtail", "node_exporter"]
        .iter()
        .map(|n| &stack.components[*n])
        .collect();
    let all = src.resolve_all(&comps, 3);
    assert_eq!(all.len(), 3);
    assert_eq!(all["loki"].as_ref().unwrap().len(), 1);
    assert_eq!(all["promtail"].as_ref().unwrap().len(), 1);
    assert_eq!(
        server.seen("/repos/grafana/loki/").len(),
        1,
        "loki and promtail share one request"
    );
}

#[test]
fn etag_answers_cost_nothing_and_ttl_avoids_requests() {
    let server = ReleaseServer::start();
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    let cache = tempfile::tempdir().unwrap();
    let stack = stack_for(&server, "");
    let node = &stack.components["node_exporter"];
    sources(&server, cache.path(), Duration::ZERO, false)
        .releases(node)
        .unwrap();
    let left = server.state().rate_remaining;
    // TTL over: a conditional request, answered 304, not counted.
    let second = sources(&server, cache.path(), Duration::ZERO, false);
    assert_eq!(second.releases(node).unwrap().len(), 2);
    let seen = server.seen("/repos/");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].status, 304);
    assert!(seen[1].headers.contains_key("if-none-match"));
    assert_eq!(server.state().rate_remaining, left, "a 304 costs nothing");
    assert_eq!(second.client().rate_limit().remaining, Some(left));
    // Inside the TTL: no request at all.
    let third = sources(&server, cache.path(), Duration::from_secs(900), false);
    third.releases(node).unwrap();
    assert_eq!(server.seen("/repos/").len(), 2);
    assert_eq!(third.client().requests_sent(), 0);
}

#[test]
fn rate_limit_exhaustion_with_and_without_a_cached_answer() {
    let server = ReleaseServer::start();
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    server.state().rate_remaining = 0;
    let cache = tempfile::tempdir().unwrap();
    let stack = stack_for(&server, "");
    let node = &stack.components["node_exporter"];
    let err = sources(&server, cache.path(), Duration::ZERO, false)
        .releases(node)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rate limit") && err.contains("until 2030-03-17T17:46:40Z"),
        "{err}"
    );
    assert!(err.contains("OBS_UPGRADE_GITHUB_TOKEN"), "{err}");
    assert!(
        !err.contains("--offline"),
        "nothing is cached to go offline with: {err}"
    );
    assert_eq!(server.seen("/repos/").len(), 1, "no retry storm");
    // With a token sent, asking for a token is no way out.
    let client = ApiClient::new(
        fast_http(Some((server.url(), Token::new("ghp_sent")))),
        cache.path(),
        Duration::ZERO,
        false,
    );
    let err = Sources::new(client, &server.url(), &server.url(), None)
        .releases(node)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the token sent has used up its own limit"),
        "{err}"
    );
    assert!(!err.contains("set a token"), "{err}");

    // With a cached answer from an earlier run: it is used.
    server.state().rate_remaining = 5;
    sources(&server, cache.path(), Duration::ZERO, false)
        .releases(node)
        .unwrap();
    server.state().rate_remaining = 0;
    server
        .state()
        .github
        .get_mut("prometheus/node_exporter")
        .unwrap()
        .insert(
            0,
            FakeRelease::new("v1.10.0", "2026-11-01T00:00:00Z", vec![]),
        );
    let got = sources(&server, cache.path(), Duration::ZERO, false)
        .releases(node)
        .unwrap();
    assert_eq!(got.len(), 2, "the cached answer, not the new one");
    // Offline: cache only, never the network.
    let before = server.seen("/repos/").len();
    let off = sources(&server, cache.path(), Duration::ZERO, true);
    assert_eq!(off.releases(node).unwrap().len(), 2);
    assert_eq!(server.seen("/repos/").len(), before);
    let empty = tempfile::tempdir().unwrap();
    let err = sources(&server, empty.path(), Duration::ZERO, true)
        .releases(node)
        .unwrap_err()
        .to_string();
    assert!(err.contains("offline and nothing cached"), "{err}");
}

#[test]
fn server_errors_are_retried_then_succeed() {
    let server = ReleaseServer::start();
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    server.state().faults.api_500 = 2;
    let cache = tempfile::tempdir().unwrap();
    let stack = stack_for(&server, "");
    assert_eq!(
        sources(&server, cache.path(), Duration::ZERO, false)
            .releases(&stack.components["node_exporter"])
            .unwrap()
            .len(),
        2
    );
    let statuses: Vec<u16> = server.seen("/repos/").iter().map(|s| s.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    server.state().faults.api_500 = 5;
    let err = sources(
        &server,
        tempfile::tempdir().unwrap().path(),
        Duration::ZERO,
        false,
    )
    .releases(&stack.components["node_exporter"])
    .unwrap_err()
    .to_string();
    assert!(err.contains("HTTP 500"), "{err}");
}

#[test]
fn gitlab_listing_and_mirror_directory() {
    let server = ReleaseServer::start();
    let (name, tgz) = promu(
        "node_exporter",
        "1.9.1",
        "amd64",
        &[("node_exporter", &fake_binary("node_exporter", "1.9.1"))],
    );
    server.state().gitlab.insert(
        "ops/node_exporter".into(),
        vec![FakeRelease::new(
            "v1.9.1",
            "2026-01-01T00:00:00Z",
            vec![asset(&name, tgz.clone(), false)],
        )],
    );
    let stack = Stack::from_text(
        &format!("components:\n  node_exporter: {{source: gitlab, repo: ops/node_exporter, api_url: '{}'}}\n", server.url()),
        Format::Yaml,
        "g.yaml",
        None,
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let got = sources(&server, cache.path(), Duration::ZERO, false)
        .releases(&stack.components["node_exporter"])
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].assets[0].url.contains("/dl/v1.9.1/"));
    assert_eq!(
        server
            .seen("/api/v4/projects/ops%2Fnode_exporter/releases")
            .len(),
        1
    );

    // The same release from a mirror directory, staged over file://.
    let mirror = tempfile::tempdir().unwrap();
    let dir = mirror.path().join("node_exporter/v1.9.1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&name), &tgz).unwrap();
    std::fs::write(dir.join("sha256sums.txt"), checksums(&[(&name, &tgz)])).unwrap();
    std::fs::write(
        dir.join("release.json"),
        br#"{"published_at": "2026-01-02T00:00:00Z"}"#,
    )
    .unwrap();
    let stack = Stack::from_text(
        &format!(
            "components:\n  node_exporter: {{source: mirror, api_url: 'file://{}'}}\n",
            mirror.path().display()
        ),
        Format::Yaml,
        "m.yaml",
        None,
    )
    .unwrap();
    let node = &stack.components["node_exporter"];
    let got = sources(&server, cache.path(), Duration::ZERO, false)
        .releases(node)
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].published_at,
        Some("2026-01-02T00:00:00Z".parse().unwrap())
    );
    let root = tempfile::tempdir().unwrap();
    let store = Store::new(
        root.path().join("opt"),
        root.path().join("cache"),
        fast_http(None),
        Platform::new("linux", "amd64"),
    );
    let staged = store.stage(node, &got[0], &mut |_, _| {}).unwrap();
    assert_eq!(
        staged.proof,
        Proof::ChecksumFile {
            name: "sha256sums.txt".into()
        }
    );
    assert!(staged.dir.join("node_exporter").is_file());
}

struct Fixture {
    server: ReleaseServer,
    root: tempfile::TempDir,
    stack: Stack,
}

impl Fixture {
    fn new(extra: &str) -> Self {
        let server = ReleaseServer::start();
        server
            .state()
            .github
            .insert("prometheus/node_exporter".into(), node_releases());
        let stack = stack_for(&server, extra);
        Fixture {
            server,
            root: tempfile::tempdir().unwrap(),
            stack,
        }
    }

    fn store(&self) -> Store {
        Store::new(
            self.root.path().join("opt/obs-upgrade"),
            self.root.path().join("var/cache/obs-upgrade"),
            fast_http(None),
            Platform::new("linux", "amd64"),
        )
    }

    fn release(&self, version: &str) -> upgrade_core::planner::Release {
        let client = ApiClient::new(
            fast_http(None),
            self.root.path().join("api"),
            Duration::ZERO,
            false,
        );
        let src = Sources::new(client, &self.server.url(), &self.server.url(), None);
        src.releases(self.node())
            .unwrap()
            .into_iter()
            .find(|r| r.version == v(version))
            .unwrap()
    }

    fn node(&self) -> &Component {
        &self.stack.components["node_exporter"]
    }

    /// Every file under the root except the API cache, with its size
    /// (directories are left out: an empty cache directory is no change).
    fn tree(&self) -> Vec<(String, u64)> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<(String, u64)>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let rel = e.path().strip_prefix(base).unwrap().display().to_string();
                if rel.starts_with("api") {
                    continue;
                }
                let m = e.path().symlink_metadata().unwrap();
                if m.is_dir() {
                    walk(&e.path(), base, out);
                } else {
                    out.push((rel, m.len()));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root.path(), self.root.path(), &mut out);
        out.sort();
        out
    }
}

#[test]
fn stage_verifies_by_the_ladder_and_is_idempotent() {
    let f = Fixture::new("");
    let store = f.store();
    let mut calls = Vec::new();
    let staged = store
        .stage(f.node(), &f.release("1.9.1"), &mut |d, t| {
            calls.push((d, t));
        })
        .unwrap();
    assert_eq!(
        staged.proof,
        Proof::ChecksumFile {
            name: "sha256sums.txt".into()
        }
    );
    assert!(
        calls.last().is_some_and(|(d, t)| Some(*d) == *t),
        "progress reaches the total: {calls:?}"
    );
    let bin = staged.dir.join("node_exporter");
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("version 1.9.1"),
        "the staged binary runs"
    );
    assert!(!staged.dir.join("LICENSE").exists() || staged.dir.join("LICENSE").is_file());
    // The API digest is the proof when there is one.
    let s2 = store
        .stage(f.node(), &f.release("1.8.2"), &mut |_, _| {})
        .unwrap();
    assert_eq!(s2.proof, Proof::ApiDigest);
    // Staging again downloads nothing.
    let before = f.server.seen("/dl/").len();
    store
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap();
    assert_eq!(f.server.seen("/dl/").len(), before);
    assert_eq!(
        store.versions("node_exporter").unwrap(),
        [v("1.8.2"), v("1.9.1")]
    );
    // A tampered binary is not "staged" any more.
    std::fs::write(&bin, b"#!/bin/sh\necho evil\n").unwrap();
    assert!(
        store
            .staged("node_exporter", &v("1.9.1"))
            .unwrap()
            .is_none()
    );
    store
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap();
    assert!(
        store
            .staged("node_exporter", &v("1.9.1"))
            .unwrap()
            .is_some()
    );
}

#[test]
fn pinned_digest_wins_and_unverified_is_refused_unless_allowed() {
    // A pinned digest that is wrong beats a correct checksum file: refused.
    let f = Fixture::new(
        ", sha256: {1.9.1: '0000000000000000000000000000000000000000000000000000000000000000'}",
    );
    let before = f.tree();
    let err = f
        .store()
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err();
    assert!(
        matches!(err, store::Error::Mismatch { ref proof, .. } if proof == "pinned"),
        "{err}"
    );
    assert!(
        err.to_string().contains("the partial download was removed"),
        "{err}"
    );
    assert_eq!(f.tree(), before, "nothing left behind");

    // No proof at all.
    let f = Fixture::new(", checksums: NOPE.txt");
    let err = f
        .store()
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, store::Error::Unverifiable { .. }), "{err}");
    assert!(err.to_string().contains("allow_unverified"), "{err}");
    let f = Fixture::new(", checksums: NOPE.txt, allow_unverified: true");
    assert_eq!(
        f.store()
            .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
            .unwrap()
            .proof,
        Proof::Unverified
    );
}

#[test]
fn wrong_checksum_truncation_stall_redirect_and_resume() {
    // Corrupted bytes: the checksum file catches it, the partial is removed.
    let f = Fixture::new("");
    f.server.state().faults.corrupt = true;
    let before = f.tree();
    let err = f
        .store()
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, store::Error::Mismatch { .. }), "{err}");
    assert_eq!(f.tree(), before);

    // A truncated body: an error that says the partial is kept, then a resume with Range.
    let f = Fixture::new("");
    f.server.state().faults.truncate_after = Some(100);
    let err = f
        .store()
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err();
    assert!(err.to_string().contains("resumed"), "{err}");
    assert!(f.store().versions("node_exporter").unwrap().is_empty());
    f.server.state().faults.truncate_after = None;
    let staged = f
        .store()
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap();
    let dl = f.server.seen("/dl/v1.9.1/node_exporter");
    let last = dl.last().unwrap();
    assert_eq!(
        last.headers.get("range").map(String::as_str),
        Some("bytes=100-"),
        "resumed where it stopped"
    );
    assert_eq!(last.status, 206);
    assert_eq!(
        staged.proof,
        Proof::ChecksumFile {
            name: "sha256sums.txt".into()
        }
    );

    // A stalled body hits the read timeout.
    let f = Fixture::new("");
    f.server.state().faults.stall_after = Some(10);
    let t = Instant::now();
    let err = f
        .store()
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // A trickle (every read succeeds, 50 B/s) is given up by the
    // minimum-speed rule, the partial kept for a resume.
    let f = Fixture::new("");
    f.server.state().faults.trickle = Some((10, Duration::from_millis(200)));
    let slow_rule = Http::new(HttpOptions {
        read_timeout: Duration::from_secs(5),
        min_speed: 2000,
        speed_window: Duration::from_secs(1),
        attempts: 1,
        ..HttpOptions::default()
    });
    let store = Store::new(
        f.root.path().join("opt/obs-upgrade"),
        f.root.path().join("var/cache/obs-upgrade"),
        slow_rule,
        Platform::new("linux", "amd64"),
    );
    let t = Instant::now();
    let err = store
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("slower than 2000 bytes/s over 1 s"),
        "{err}"
    );
    assert!(
        err.to_string().contains("kept and will be resumed"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());

    // Downloads behind a redirect, and a 500 that goes away.
    let f = Fixture::new("");
    f.server.state().faults.redirect = true;
    f.server.state().faults.download_500 = 1;
    f.store()
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap();
    assert!(f.server.seen("/redirect/").len() >= 2);
}

#[test]
fn size_cap_and_missing_asset() {
    let f = Fixture::new("");
    let store = f.store().with_limits(Limits::default(), 50);
    // The size the release lists is refused before a byte is fetched...
    let err = store
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("bytes, over the download limit of 50 bytes"),
        "{err}"
    );
    // ...and a release that lists no size is cut off at the cap.
    let mut unsized_release = f.release("1.9.1");
    for a in &mut unsized_release.assets {
        a.size = None;
    }
    let err = store
        .stage(f.node(), &unsized_release, &mut |_, _| {})
        .unwrap_err();
    assert!(
        err.to_string().contains("larger than the 50-byte limit"),
        "{err}"
    );
    let arm = Store::new(
        f.root.path().join("opt2"),
        f.root.path().join("c2"),
        fast_http(None),
        Platform::new("linux", "arm64"),
    );
    let err = arm
        .stage(f.node(), &f.release("1.9.1"), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no asset named `node_exporter-1.9.1.linux-arm64.tar.gz` for linux/arm64"),
        "{err}"
    );
}

#[test]
fn store_switch_remove_and_cleanup() {
    let f = Fixture::new("");
    let store = f.store();
    for ver in ["1.8.2", "1.9.1"] {
        store
            .stage(f.node(), &f.release(ver), &mut |_, _| {})
            .unwrap();
    }
    assert_eq!(store.current("node_exporter").unwrap(), None);
    store.switch("node_exporter", &v("1.8.2")).unwrap();
    store.mark_good("node_exporter", &v("1.8.2")).unwrap();
    store.switch("node_exporter", &v("1.9.1")).unwrap();
    assert_eq!(store.current("node_exporter").unwrap(), Some(v("1.9.1")));
    let link = store.dir().join("node_exporter/current/node_exporter");
    assert!(link.is_file(), "current/ resolves to the release");
    for (ver, what) in [("1.9.1", "current"), ("1.8.2", "last known-good")] {
        let err = store
            .remove("node_exporter", &v(ver))
            .unwrap_err()
            .to_string();
        assert!(err.contains(what), "{err}");
    }
    assert!(
        store
            .switch("node_exporter", &v("9.9.9"))
            .unwrap_err()
            .to_string()
            .contains("not in the store")
    );
    store.mark_good("node_exporter", &v("1.9.1")).unwrap();
    store.remove("node_exporter", &v("1.8.2")).unwrap();
    assert_eq!(store.versions("node_exporter").unwrap(), [v("1.9.1")]);
    std::fs::create_dir_all(store.dir().join("node_exporter/2.0.0.partial/x")).unwrap();
    assert_eq!(store.cleanup_partials().unwrap().len(), 1);
    assert!(!store.dir().join("node_exporter/2.0.0.partial").exists());
}

// ---- the token ----

struct Capture(Mutex<Vec<String>>);
static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));
static INIT: Once = Once::new();

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.target(), record.args()));
    }
    fn flush(&self) {}
}

#[test]
fn token_is_sent_but_never_logged_or_shown() {
    const SECRET: &str = "ghp_TOPSECRET0123456789";
    INIT.call_once(|| {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    let server = ReleaseServer::start();
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), node_releases());
    server.state().faults.api_500 = 10;
    server.state().faults.echo_auth_in_errors = true;
    let stack = stack_for(&server, "");
    let cache = tempfile::tempdir().unwrap();
    let http = fast_http(Some((server.url(), Token::new(SECRET))));
    let src = Sources::new(
        ApiClient::new(http.clone(), cache.path(), Duration::ZERO, false),
        &server.url(),
        &server.url(),
        None,
    );
    let err = src
        .releases(&stack.components["node_exporter"])
        .unwrap_err();
    let shown = format!("{err} {err:?} {http:?}");
    assert!(shown.contains("bad credentials Bearer ***"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    // It was sent.
    assert_eq!(
        server.seen("/repos/")[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some(format!("Bearer {SECRET}").as_str())
    );
    // A successful run at trace level logs nothing secret either.
    server.state().faults.api_500 = 0;
    let src = Sources::new(
        ApiClient::new(http, cache.path(), Duration::ZERO, false),
        &server.url(),
        &server.url(),
        None,
    );
    src.releases(&stack.components["node_exporter"]).unwrap();
    let logs = CAPTURE.0.lock().unwrap().join("\n");
    assert!(!logs.is_empty(), "logs were captured");
    assert!(!logs.contains(SECRET), "{logs}");
}

/// A raw (unarchived) asset is moved into the store by one rename: the
/// binary is the downloaded file itself (same inode), not a copy read again;
/// with the cache on another file system it is copied instead, and both run.
#[test]
fn a_raw_asset_is_renamed_into_the_store_not_copied() {
    let server = ReleaseServer::start();
    let bin = fake_binary("rawexp", "2.0.0");
    let name = "rawexp-2.0.0-linux-amd64";
    let sums = checksums(&[(name, &bin)]);
    server.state().github.insert(
        "acme/rawexp".into(),
        vec![FakeRelease::new(
            "v2.0.0",
            "2026-01-01T00:00:00Z",
            vec![
                asset(name, bin.clone(), false),
                asset("SHA256SUMS", sums, false),
            ],
        )],
    );
    let yaml = format!(
        "components:\n  rawexp:\n    api_url: '{}'\n    repo: acme/rawexp\n    \
         asset: 'rawexp-{{version}}-{{os}}-{{arch}}'\n    archive: raw\n    \
         checksums: SHA256SUMS\n    binaries: [{{name: rawexp, path: rawexp}}]\n",
        server.url()
    );
    let stack = Stack::from_text(&yaml, Format::Yaml, "t.yaml", None).unwrap();
    let comp = &stack.components["rawexp"];
    let root = tempfile::tempdir().unwrap();
    let client = ApiClient::new(
        fast_http(None),
        root.path().join("api"),
        Duration::ZERO,
        false,
    );
    let release = Sources::new(client, &server.url(), &server.url(), None)
        .releases(comp)
        .unwrap()
        .remove(0);
    // The cache on the store's file system, then on another one (/dev/shm).
    let other_fs = tempfile::tempdir_in("/dev/shm").ok();
    let caches = [
        Some(root.path().join("cache")),
        other_fs.map(tempfile::TempDir::keep),
    ];
    for (i, cache) in caches.into_iter().flatten().enumerate() {
        let store = Store::new(
            root.path().join(format!("store{i}")),
            &cache,
            fast_http(None),
            Platform::new("linux", "amd64"),
        );
        let part = cache.join("downloads/rawexp-2.0.0-rawexp-2.0.0-linux-amd64.part");
        let mut inode = None;
        let staged = store
            .stage(comp, &release, &mut |_, _| {
                inode = std::fs::metadata(&part).ok().map(|m| m.ino());
            })
            .unwrap();
        let binary = staged.dir.join("rawexp");
        let out = std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("version 2.0.0"));
        assert_eq!(
            std::fs::metadata(&binary).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(!part.exists(), "the download is gone from the cache");
        let same_fs = i == 0;
        assert_eq!(
            inode == Some(std::fs::metadata(&binary).unwrap().ino()),
            same_fs,
            "renamed on the same file system, copied across (cache {})",
            cache.display()
        );
        assert!(store.staged("rawexp", &v("2.0.0")).unwrap().is_some());
        if !same_fs {
            std::fs::remove_dir_all(&cache).ok();
        }
    }
}

/// A binary is executable in the store whatever mode its archive stored:
/// 0644 in a tarball, 0644 in a zip.
#[test]
fn binaries_are_executable_whatever_mode_the_archive_stored() {
    use std::os::unix::fs::PermissionsExt;
    let server = ReleaseServer::start();
    let bin = fake_binary("plainexp", "2.0.0");
    let tgz = obs_upgrade_tests::archives::tar_gz(&[("plainexp", &bin, 0o644)]);
    let zip = obs_upgrade_tests::archives::zip(&[("plainexp", &bin, 0o644)]);
    let (tname, zname) = (
        "plainexp-2.0.0-linux-amd64.tar.gz",
        "plainexp-2.0.0-linux-amd64.zip",
    );
    let sums = checksums(&[(tname, &tgz), (zname, &zip)]);
    server.state().github.insert(
        "acme/plainexp".into(),
        vec![FakeRelease::new(
            "v2.0.0",
            "2026-01-01T00:00:00Z",
            vec![
                asset(tname, tgz, false),
                asset(zname, zip, false),
                asset("SHA256SUMS", sums, false),
            ],
        )],
    );
    for (ext, kind) in [("tar.gz", "tar.gz"), ("zip", "zip")] {
        let yaml = format!(
            "components:\n  plainexp:\n    api_url: '{}'\n    repo: acme/plainexp\n    \
             asset: 'plainexp-{{version}}-{{os}}-{{arch}}.{ext}'\n    archive: {kind}\n    \
             checksums: SHA256SUMS\n    binaries: [{{name: plainexp, path: plainexp}}]\n",
            server.url()
        );
        let stack = Stack::from_text(&yaml, Format::Yaml, "t.yaml", None).unwrap();
        let comp = &stack.components["plainexp"];
        let root = tempfile::tempdir().unwrap();
        let client = ApiClient::new(
            fast_http(None),
            root.path().join("api"),
            Duration::ZERO,
            false,
        );
        let release = Sources::new(client, &server.url(), &server.url(), None)
            .releases(comp)
            .unwrap()
            .remove(0);
        let store = Store::new(
            root.path().join("store"),
            root.path().join("cache"),
            fast_http(None),
            Platform::new("linux", "amd64"),
        );
        let staged = store.stage(comp, &release, &mut |_, _| {}).unwrap();
        let binary = staged.dir.join("plainexp");
        let mode = std::fs::metadata(&binary).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{ext}");
        let out = std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("version 2.0.0"),
            "{ext}"
        );
    }
}
