//! Resolve once, pin everywhere, against the loopback release server: a
//! controller pins the targets (digests it verified), fills a mirror; a
//! host applying the pin file installs exactly the pinned version from the
//! mirror with no release API request, even when a newer one is out; a
//! tampered mirror file is refused; a pin file for another platform or
//! stack is a clear error; a mirror served over http is a release source.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::sync::Arc;

use obs_upgrade_tests::archives::{self, fake_binary};
use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease, ReleaseServer};
use obs_upgrade_tests::static_server::StaticServer;
use obs_upgrade_tests::{obs_upgrade, output_text};

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(o)))
}

/// A promu release of `node_exporter` with its checksum file.
fn release(version: &str, published: &str) -> (FakeRelease, String) {
    let bin = fake_binary("node_exporter", version);
    let (name, tgz) = archives::promu(
        "node_exporter",
        version,
        "amd64",
        &[("node_exporter", &bin)],
    );
    let digest = archives::sha256(&tgz);
    let sums = archives::checksums(&[(&name, &tgz)]);
    let asset = |name: String, data: Vec<u8>| FakeAsset {
        name,
        data: Arc::new(data),
        with_digest: false,
    };
    let r = FakeRelease::new(
        &format!("v{version}"),
        published,
        vec![asset(name, tgz), asset("sha256sums.txt".into(), sums)],
    );
    (r, digest)
}

/// A root with this stack and `node_exporter` `installed` as a plain binary.
fn root_with(stack: &str, installed: Option<&str>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/obs-upgrade");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("stack.yaml"), stack).unwrap();
    if let Some(v) = installed {
        let bin_dir = root.path().join("usr/local/bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let path = bin_dir.join("node_exporter");
        std::fs::write(&path, fake_binary("node_exporter", v)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

fn stack_for(server: &ReleaseServer) -> String {
    format!(
        "defaults:\n  min_release_age: \"0\"\ncomponents:\n  node_exporter: {{api_url: '{}'}}\n",
        server.url()
    )
}

fn api_requests(server: &ReleaseServer) -> usize {
    server.seen("/repos/").len()
}

struct Fleet {
    server: ReleaseServer,
    controller: tempfile::TempDir,
    pins: std::path::PathBuf,
    mirror: std::path::PathBuf,
    digest: String,
}

/// A controller that pinned `node_exporter` 1.8.0 → 1.8.2 and filled a mirror.
fn pinned_fleet() -> Fleet {
    let server = ReleaseServer::start();
    let (r182, digest) = release("1.8.2", "2026-03-02T10:00:00Z");
    let (r180, _) = release("1.8.0", "2026-01-01T10:00:00Z");
    server
        .state()
        .github
        .insert("prometheus/node_exporter".into(), vec![r182, r180]);
    let controller = root_with(&stack_for(&server), None);
    let pins = controller.path().join("pins.json");
    let o = obs_upgrade(
        controller.path(),
        &[
            "pin",
            "--from",
            "node_exporter=1.8.0",
            "--output",
            pins.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let shown = output_text(&o);
    assert!(shown.contains("1.8.2"), "{shown}");
    let mirror = controller.path().join("mirror");
    let o = obs_upgrade(
        controller.path(),
        &[
            "mirror",
            "fill",
            mirror.to_str().unwrap(),
            "--pins",
            pins.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("2 files copied"),
        "{}",
        output_text(&o)
    );
    Fleet {
        server,
        controller,
        pins,
        mirror,
        digest,
    }
}

#[test]
fn a_pin_records_the_verified_target_and_a_pinned_host_asks_no_api() {
    let f = pinned_fleet();
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&f.pins).unwrap()).unwrap();
    let node = &file["components"]["node_exporter"];
    assert_eq!(node["version"], "1.8.2", "{file:#}");
    assert_eq!(node["tag"], "v1.8.2");
    assert_eq!(node["repo"], "prometheus/node_exporter");
    assert_eq!(node["asset"]["sha256"], f.digest.as_str());
    assert_eq!(
        node["verification"],
        "verified by the checksum file sha256sums.txt"
    );
    assert_eq!(node["files"][0]["name"], "sha256sums.txt");
    assert_eq!(file["platform"]["os"], "linux");
    // The mirror: the files, the release's facts, an index with digests.
    let tag = f.mirror.join("node_exporter/v1.8.2");
    assert!(tag.join("node_exporter-1.8.2.linux-amd64.tar.gz").is_file());
    assert!(tag.join("sha256sums.txt").is_file());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.mirror.join("node_exporter/index.json")).unwrap())
            .unwrap();
    assert_eq!(index[0]["tag"], "v1.8.2", "{index:#}");
    assert_eq!(index[0]["assets"][0]["sha256"], f.digest.as_str());
    // A second fill copies nothing.
    let o = obs_upgrade(
        f.controller.path(),
        &[
            "mirror",
            "fill",
            f.mirror.to_str().unwrap(),
            "--pins",
            f.pins.to_str().unwrap(),
        ],
    );
    assert!(
        output_text(&o).contains("0 files copied (0 bytes), 2 already there"),
        "{}",
        output_text(&o)
    );

    // Upstream publishes 1.8.3 meanwhile: a pinned host still gets 1.8.2.
    let (r183, _) = release("1.8.3", "2026-04-01T10:00:00Z");
    f.server
        .state()
        .github
        .get_mut("prometheus/node_exporter")
        .unwrap()
        .insert(0, r183);
    let host = root_with(&stack_for(&f.server), Some("1.8.0"));
    let etc = host.path().join("etc/obs-upgrade");
    std::fs::copy(&f.pins, etc.join("pins.json")).unwrap();
    let (api_before, dl_before) = (api_requests(&f.server), f.server.seen("/dl/").len());
    let mirror = f.mirror.to_str().unwrap();
    let o = obs_upgrade(host.path(), &["--mirror", mirror, "--json", "plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let plan = json(&o);
    let step = &plan["phases"][0]["steps"][0];
    assert_eq!(step["to"], "1.8.2", "{plan:#}");
    let o = obs_upgrade(host.path(), &["--mirror", mirror, "--json", "stage"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let staged = json(&o);
    assert_eq!(staged["staged"][0]["version"], "1.8.2", "{staged:#}");
    assert_eq!(
        staged["staged"][0]["detail"],
        "verified by a pinned digest (stack file or pin file)"
    );
    assert_eq!(
        api_requests(&f.server),
        api_before,
        "the pinned host asked the API"
    );
    assert_eq!(
        f.server.seen("/dl/").len(),
        dl_before,
        "the pinned host downloaded from upstream, not the mirror"
    );
}

#[test]
fn a_tampered_mirror_file_is_refused_and_nothing_is_staged() {
    let f = pinned_fleet();
    let asset = f
        .mirror
        .join("node_exporter/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz");
    let mut bytes = std::fs::read(&asset).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&asset, bytes).unwrap();
    let host = root_with(&stack_for(&f.server), Some("1.8.0"));
    let pins = f.pins.to_str().unwrap();
    let mirror = f.mirror.to_str().unwrap();
    let o = obs_upgrade(host.path(), &["--pins", pins, "--mirror", mirror, "stage"]);
    let shown = output_text(&o);
    assert_eq!(o.status.code(), Some(1), "{shown}");
    assert!(shown.contains("pinned"), "{shown}");
    assert!(
        !host
            .path()
            .join("opt/obs-upgrade/node_exporter/1.8.2")
            .exists()
    );
    // Filling again from upstream repairs the mirror file.
    let o = obs_upgrade(
        f.controller.path(),
        &["mirror", "fill", mirror, "--pins", pins],
    );
    assert!(
        output_text(&o).contains("1 files copied"),
        "{}",
        output_text(&o)
    );
    // A source that serves something else is refused, the mirror untouched.
    let other = tempfile::tempdir().unwrap();
    let bad = other.path().join("node_exporter/v1.8.2");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("node_exporter-1.8.2.linux-amd64.tar.gz"), b"evil").unwrap();
    let fresh = other.path().join("fresh");
    let o = obs_upgrade(
        f.controller.path(),
        &[
            "mirror",
            "fill",
            fresh.to_str().unwrap(),
            "--pins",
            pins,
            "--from",
            other.path().to_str().unwrap(),
        ],
    );
    let shown = output_text(&o);
    assert_ne!(o.status.code(), Some(0), "{shown}");
    assert!(shown.contains("does not serve what was pinned"), "{shown}");
    assert!(
        !fresh
            .join("node_exporter/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz")
            .exists()
    );
}

#[test]
fn a_pin_file_for_another_platform_or_stack_is_a_clear_error() {
    let f = pinned_fleet();
    let text = std::fs::read_to_string(&f.pins).unwrap();
    let arm = f.controller.path().join("arm.json");
    std::fs::write(&arm, text.replace("\"amd64\"", "\"arm64\"")).unwrap();
    let host = root_with(&stack_for(&f.server), Some("1.8.0"));
    let o = obs_upgrade(host.path(), &["--pins", arm.to_str().unwrap(), "plan"]);
    let shown = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("linux/arm64 but this host is linux/amd64"),
        "{shown}"
    );

    let wider = format!(
        "{}  mysqld_exporter: {{api_url: '{}'}}\n",
        stack_for(&f.server),
        f.server.url()
    );
    let host = root_with(&wider, Some("1.8.0"));
    let o = obs_upgrade(host.path(), &["--pins", f.pins.to_str().unwrap(), "plan"]);
    let shown = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("mysqld_exporter that it does not pin"),
        "{shown}"
    );

    let o = obs_upgrade(host.path(), &["--pins", "/nonexistent/pins.json", "plan"]);
    let shown = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("cannot read the pin file /nonexistent/pins.json"),
        "{shown}"
    );

    // A controller that cannot pin every component pins nothing.
    let out = f.controller.path().join("partial.json");
    let o = obs_upgrade(
        host.path(),
        &[
            "pin",
            "--set",
            "node_exporter=9.9.9",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let shown = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{shown}");
    assert!(shown.contains("9.9.9 is not among its releases"), "{shown}");
    assert!(!out.exists());
}

#[test]
fn a_mirror_served_over_http_is_a_release_source() {
    let f = pinned_fleet();
    let web = StaticServer::start(&f.mirror, "127.0.0.1:0");
    let stack = format!(
        "defaults:\n  min_release_age: \"0\"\ncomponents:\n  node_exporter: {{source: mirror, \
         api_url: '{}'}}\n",
        web.url()
    );
    let host = root_with(&stack, Some("1.8.0"));
    let o = obs_upgrade(host.path(), &["--json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let v = json(&o);
    assert_eq!(v["components"][0]["target"], "1.8.2", "{v:#}");
    let o = obs_upgrade(host.path(), &["--json", "stage"]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    let staged = json(&o);
    assert_eq!(staged["staged"][0]["version"], "1.8.2", "{staged:#}");
    let paths = web.counters.paths.lock().unwrap().clone();
    assert!(
        paths.contains(&"/node_exporter/index.json".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("linux-amd64.tar.gz")),
        "{paths:?}"
    );
    // A second mirror filled from the first one over http.
    let second = f.controller.path().join("second");
    let o = obs_upgrade(
        f.controller.path(),
        &[
            "mirror",
            "fill",
            second.to_str().unwrap(),
            "--pins",
            f.pins.to_str().unwrap(),
            "--from",
            &web.url(),
        ],
    );
    assert!(
        output_text(&o).contains("2 files copied"),
        "{}",
        output_text(&o)
    );
    assert_eq!(
        std::fs::read(second.join("node_exporter/index.json")).unwrap(),
        std::fs::read(f.mirror.join("node_exporter/index.json")).unwrap()
    );
}
