//! Keyless Sigstore signatures over an upstream's checksum file, as
//! nginx-prometheus-exporter publishes them from 1.5.3 (goreleaser runs
//! `cosign sign-blob --bundle` in its release workflow): the catalog pins
//! the workflow identity and the issuer, and the bundle is verified offline
//! by sigstore-verify against a trusted root.
//!
//! The real Fulcio, CT log and Rekor cannot be reached (nor made to sign for
//! a test identity), so the bundles here come from a miniature Sigstore
//! (`obs_upgrade_tests::sigstore`) whose `trusted_root.json` the component
//! names with `sigstore_trusted_root`; the verification itself is the
//! crate's, unchanged. One real bundle from the public-good instance checks
//! the built-in trusted root.

use std::path::Path;

use obs_upgrade_tests::archives::{self, fake_binary};
use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease, ReleaseServer};
use obs_upgrade_tests::sigstore::TestSigstore;
use obs_upgrade_tests::{obs_upgrade as cli, output_text as text};
use upgrade_core::catalog::{self, GITHUB_ACTIONS_ISSUER, Platform, SigstoreSpec};
use upgrade_core::version::Version;

const REPO: &str = "nginx/nginx-prometheus-exporter";
const WORKFLOW: &str = concat!(
    "https://github.com/nginx/nginx-prometheus-exporter",
    "/.github/workflows/release.yml@refs/heads/main"
);

/// How the checksum file of a fake release is signed.
enum Signed<'a> {
    /// A bundle from this instance for this identity.
    By(&'a TestSigstore, &'a str),
    /// cosign 2's legacy bundle from this instance for this identity.
    Legacy(&'a TestSigstore, &'a str),
    /// No bundle.
    Not,
}

/// A release of nginx-prometheus-exporter shaped like upstream's: the
/// archive for this platform, the checksum file and, when signed, the
/// `<checksum file>.bundle`.
fn release(version: &str, signed: &Signed<'_>) -> FakeRelease {
    let spec = &catalog::builtin()["nginx_exporter"];
    let v = Version::parse(version).unwrap();
    let p = Platform::current();
    let bin = fake_binary("nginx-prometheus-exporter", version);
    let paths = spec.binary_paths(&v, &p);
    let entries: Vec<archives::Entry<'_>> = paths
        .iter()
        .map(|(_, path)| (path.as_str(), bin.as_slice(), 0o755))
        .collect();
    let asset = spec.asset_name(&v, &p);
    let data = archives::tar_gz(&entries);
    let sums_name = spec.checksums_name(&v, &p).unwrap();
    let sums = archives::checksums(&[(&asset, &data)]);
    let mut assets = vec![
        FakeAsset {
            name: asset,
            data: data.into(),
            with_digest: true,
        },
        FakeAsset {
            name: sums_name.clone(),
            data: sums.clone().into(),
            with_digest: true,
        },
    ];
    let bundle = match signed {
        Signed::By(sigstore, identity) => {
            Some(sigstore.sign(&sums, identity, GITHUB_ACTIONS_ISSUER))
        }
        Signed::Legacy(sigstore, identity) => {
            Some(sigstore.sign_cosign_legacy(&sums, identity, GITHUB_ACTIONS_ISSUER))
        }
        Signed::Not => None,
    };
    if let Some(bundle) = bundle {
        assets.push(FakeAsset {
            name: format!("{sums_name}.bundle"),
            data: bundle.into(),
            with_digest: true,
        });
    }
    FakeRelease::new(&format!("v{version}"), "2026-10-01T10:00:00Z", assets)
}

/// A host with nginx-prometheus-exporter 1.5.2 installed, releases listed
/// by `server`, and the component's trusted root set to `root` (the stack
/// also takes `extra` keys).
fn host(server: &ReleaseServer, root: &TestSigstore, extra: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc/obs-upgrade");
    std::fs::create_dir_all(&etc).unwrap();
    let trusted = etc.join("sigstore-root.json");
    std::fs::write(&trusted, root.trusted_root()).unwrap();
    std::fs::write(
        etc.join("stack.yaml"),
        format!(
            concat!(
                "components:\n  nginx_exporter:\n    api_url: '{url}'\n",
                "    sigstore_trusted_root: '{trusted}'\n{extra}"
            ),
            url = server.url(),
            trusted = trusted.display(),
            extra = extra
        ),
    )
    .unwrap();
    let bin_dir = dir.path().join("usr/local/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let path = bin_dir.join("nginx-prometheus-exporter");
    std::fs::write(&path, fake_binary("nginx-prometheus-exporter", "1.5.2")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn serve(releases: Vec<FakeRelease>) -> ReleaseServer {
    let server = ReleaseServer::start();
    server.state().github.insert(REPO.into(), releases);
    server
}

/// `stage --json`: the staged detail, or the failure's text.
fn stage(host: &Path) -> Result<String, String> {
    let o = cli(host, &["--json", "stage"]);
    if o.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        Ok(v["staged"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    } else {
        Err(text(&o))
    }
}

/// Whether anything of 1.5.3 reached the store.
fn staged_153(host: &Path) -> bool {
    std::fs::read_dir(host.join("opt/obs-upgrade/nginx_exporter")).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().contains("1.5.3")))
    })
}

/// Stages `bad` (beside 1.5.2) on a fresh host with these `extra` stack
/// keys: it must fail with nothing of 1.5.3 staged. Returns why it failed.
fn refused(bad: FakeRelease, sigstore: &TestSigstore, extra: &str) -> String {
    let server = serve(vec![bad, release("1.5.2", &Signed::Not)]);
    let h = host(&server, sigstore, extra);
    let e = stage(h.path()).unwrap_err();
    assert!(!staged_153(h.path()), "something was staged: {e}");
    e
}

#[test]
fn a_checksum_file_signed_by_the_release_workflow_verifies_and_the_proof_says_who() {
    let sigstore = TestSigstore::new("upstream");
    let server = serve(vec![
        release("1.5.3", &Signed::By(&sigstore, WORKFLOW)),
        release("1.5.2", &Signed::Not),
    ]);
    let host = host(&server, &sigstore, "");
    let detail = stage(host.path()).unwrap();
    assert_eq!(
        detail,
        format!(
            concat!(
                "verified by nginx-prometheus-exporter_1.5.3_checksums.txt, signed by ",
                "Sigstore identity {w} (issuer {i})"
            ),
            w = WORKFLOW,
            i = GITHUB_ACTIONS_ISSUER
        )
    );
    assert!(staged_153(host.path()));
    // The proof stays with the staged release: `versions` reports it.
    let o = cli(host.path(), &["--json", "versions"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let proof = &v["components"][0]["verification"]["1.5.3"];
    assert_eq!(proof["kind"], "signed", "{v:#}");
    assert_eq!(
        proof["file"], "nginx-prometheus-exporter_1.5.3_checksums.txt",
        "{v:#}"
    );
    assert_eq!(
        proof["by"],
        format!("Sigstore identity {WORKFLOW} (issuer {GITHUB_ACTIONS_ISSUER})")
    );
}

#[test]
fn a_legacy_cosign_bundle_is_verified_the_same_way() {
    let sigstore = TestSigstore::new("upstream");
    let elsewhere = TestSigstore::new("elsewhere");
    let server = serve(vec![
        release("1.5.3", &Signed::Legacy(&sigstore, WORKFLOW)),
        release("1.5.2", &Signed::Not),
    ]);
    let h = host(&server, &sigstore, "");
    assert_eq!(
        stage(h.path()).unwrap(),
        format!(
            concat!(
                "verified by nginx-prometheus-exporter_1.5.3_checksums.txt, signed by ",
                "Sigstore identity {w} (issuer {i})"
            ),
            w = WORKFLOW,
            i = GITHUB_ACTIONS_ISSUER
        )
    );

    let mut tampered = release("1.5.3", &Signed::Legacy(&sigstore, WORKFLOW));
    tampered.assets[1].data =
        b"0000000000000000000000000000000000000000000000000000000000000000  x\n"
            .to_vec()
            .into();
    let fork = concat!(
        "https://github.com/someone/nginx-prometheus-exporter",
        "/.github/workflows/release.yml@refs/heads/main"
    );
    let mut no_cert = release("1.5.3", &Signed::Legacy(&sigstore, WORKFLOW));
    let mut legacy: serde_json::Value = serde_json::from_slice(&no_cert.assets[2].data).unwrap();
    legacy["cert"] = "bm90IGEgY2VydGlmaWNhdGU=".into();
    no_cert.assets[2].data = serde_json::to_vec(&legacy).unwrap().into();
    let cases = [
        (tampered, "signature invalid"),
        (
            release("1.5.3", &Signed::Legacy(&sigstore, fork)),
            "it was signed by `https://github.com/someone/",
        ),
        (
            release("1.5.3", &Signed::Legacy(&elsewhere, WORKFLOW)),
            "no log key valid",
        ),
        (
            no_cert,
            "the cosign bundle's certificate is not a PEM certificate",
        ),
    ];
    for (bad, why) in cases {
        let e = refused(bad, &sigstore, "");
        assert!(
            e.contains("does not verify nginx-prometheus-exporter_1.5.3_checksums.txt")
                && e.to_lowercase().contains(&why.to_lowercase()),
            "{why}: {e}"
        );
    }
}

#[test]
fn a_pin_records_the_signature_and_mirror_fill_copies_the_bundle() {
    let sigstore = TestSigstore::new("upstream");
    let server = serve(vec![
        release("1.5.3", &Signed::By(&sigstore, WORKFLOW)),
        release("1.5.2", &Signed::Not),
    ]);
    let controller = host(&server, &sigstore, "");
    let pins = controller.path().join("pins.json");
    let o = cli(controller.path(), &["pin", "-o", pins.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&pins).unwrap()).unwrap();
    let pin = &file["components"]["nginx_exporter"];
    assert_eq!(pin["version"], "1.5.3", "{file:#}");
    assert!(
        pin["verification"].as_str().unwrap().ends_with(&format!(
            "signed by Sigstore identity {WORKFLOW} (issuer {GITHUB_ACTIONS_ISSUER})"
        )),
        "{file:#}"
    );
    let names: Vec<&str> = pin["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "nginx-prometheus-exporter_1.5.3_checksums.txt",
            "nginx-prometheus-exporter_1.5.3_checksums.txt.bundle"
        ]
    );
    // A mirror filled from the pin carries the bundle, so an unpinned host
    // reading that mirror verifies the same signature.
    let mirror = controller.path().join("mirror");
    let o = cli(
        controller.path(),
        &[
            "mirror",
            "fill",
            mirror.to_str().unwrap(),
            "--pins",
            pins.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let reader = host(&server, &sigstore, "");
    let etc = reader.path().join("etc/obs-upgrade");
    std::fs::write(
        etc.join("stack.yaml"),
        format!(
            concat!(
                "components:\n  nginx_exporter:\n    source: mirror\n",
                "    api_url: '{mirror}'\n    sigstore_trusted_root: '{trusted}'\n"
            ),
            mirror = mirror.display(),
            trusted = etc.join("sigstore-root.json").display()
        ),
    )
    .unwrap();
    let downloads = server.seen("/dl/").len();
    let o = cli(reader.path(), &["--json", "stage"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["staged"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("signed by Sigstore identity {WORKFLOW}")),
        "{v:#}"
    );
    assert_eq!(
        server.seen("/dl/").len(),
        downloads,
        "the host read upstream, not the mirror"
    );
    // A mirror without the bundle does not pass for signed.
    let bundle =
        mirror.join("nginx_exporter/v1.5.3/nginx-prometheus-exporter_1.5.3_checksums.txt.bundle");
    std::fs::remove_file(bundle).unwrap();
    std::fs::remove_dir_all(reader.path().join("opt/obs-upgrade/nginx_exporter")).unwrap();
    let e = stage(reader.path()).unwrap_err();
    assert!(e.contains("checksums.txt.bundle is missing"), "{e}");
    assert!(!staged_153(reader.path()));
}

#[test]
fn a_tampered_checksum_file_another_identity_or_another_sigstore_is_refused() {
    let sigstore = TestSigstore::new("upstream");
    let elsewhere = TestSigstore::new("elsewhere");
    let ci = concat!(
        "https://github.com/nginx/nginx-prometheus-exporter",
        "/.github/workflows/ci.yml@refs/tags/v1.5.3"
    );
    let fork = concat!(
        "https://github.com/someone/nginx-prometheus-exporter",
        "/.github/workflows/release.yml@refs/heads/main"
    );

    // The checksum file was changed after signing (both digests in it point
    // at a replaced archive): the bundle no longer covers it.
    let mut tampered = release("1.5.3", &Signed::By(&sigstore, WORKFLOW));
    let evil = archives::tar_gz(&[(
        "nginx-prometheus-exporter",
        fake_binary("nginx-prometheus-exporter", "6.6.6").as_slice(),
        0o755,
    )]);
    let asset_name = tampered.assets[0].name.clone();
    tampered.assets[1].data = archives::checksums(&[(&asset_name, &evil)]).into();
    tampered.assets[0].data = evil.into();
    let cases = [
        (tampered, "does not match artifact hash"),
        (
            release("1.5.3", &Signed::By(&sigstore, ci)),
            concat!(
                "it was signed by `https://github.com/nginx/nginx-prometheus-exporter",
                "/.github/workflows/ci.yml"
            ),
        ),
        (
            release("1.5.3", &Signed::By(&sigstore, fork)),
            "it was signed by `https://github.com/someone/",
        ),
        (
            release("1.5.3", &Signed::By(&elsewhere, WORKFLOW)),
            "no log key valid",
        ),
    ];
    for (bad, why) in cases {
        // allow_unsigned does not let a bad signature through.
        for extra in ["", "    allow_unsigned: true\n"] {
            let e = refused(bad.clone(), &sigstore, extra);
            assert!(
                e.contains(
                    "the signature nginx-prometheus-exporter_1.5.3_checksums.txt.bundle does \
                     not verify nginx-prometheus-exporter_1.5.3_checksums.txt"
                ) && e.to_lowercase().contains(&why.to_lowercase())
                    && e.contains("refusing to install it"),
                "{why}: {e}"
            );
        }
    }
}

#[test]
fn a_missing_bundle_is_refused_unless_allowed_and_older_releases_are_not_asked_for_one() {
    let sigstore = TestSigstore::new("upstream");
    let server = serve(vec![
        release("1.5.3", &Signed::Not),
        release("1.5.2", &Signed::Not),
    ]);
    let h = host(&server, &sigstore, "");
    let e = stage(h.path()).unwrap_err();
    assert!(
        e.contains("nginx-prometheus-exporter_1.5.3_checksums.txt.bundle is missing")
            && e.contains("allow_unsigned: true"),
        "{e}"
    );
    assert!(!staged_153(h.path()));
    // Allowed: down the ladder (the API's digest), with the proof saying so.
    let h = host(&server, &sigstore, "    allow_unsigned: true\n");
    assert_eq!(
        stage(h.path()).as_deref(),
        Ok("verified by the release API's digest")
    );

    // Releases before 1.5.3 carry no bundle upstream: the ladder as before.
    let server = serve(vec![
        release("1.5.2", &Signed::Not),
        release("1.5.1", &Signed::Not),
    ]);
    let h = host(&server, &sigstore, "    track: '1.5.2'\n");
    let bin = h.path().join("usr/local/bin/nginx-prometheus-exporter");
    std::fs::write(&bin, fake_binary("nginx-prometheus-exporter", "1.5.1")).unwrap();
    assert_eq!(
        stage(h.path()).as_deref(),
        Ok("verified by the release API's digest")
    );
}

#[test]
fn a_hostile_bundle_is_refused_without_reading_it_all() {
    let sigstore = TestSigstore::new("upstream");
    let cases: [(Vec<u8>, &str); 3] = [
        (
            vec![b' '; 5 * 1024 * 1024],
            "over the limit of 4194304 bytes",
        ),
        (
            b"{\"mediaType\": [".to_vec(),
            "does not read as a Sigstore bundle",
        ),
        (vec![0xff; 64], "the bundle is not text"),
    ];
    for (bytes, why) in cases {
        let mut r = release("1.5.3", &Signed::By(&sigstore, WORKFLOW));
        r.assets[2].data = bytes.into();
        let e = refused(r, &sigstore, "");
        assert!(e.contains(why), "{why}: {e}");
    }
}

#[test]
fn a_bad_sigstore_setting_is_a_config_error_with_its_key() {
    let sigstore = TestSigstore::new("upstream");
    let server = serve(vec![release("1.5.3", &Signed::By(&sigstore, WORKFLOW))]);
    let h = host(
        &server,
        &sigstore,
        "    sigstore: {identity: 'https://github.com/*/release.yml@*'}\n",
    );
    let o = cli(h.path(), &["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("components.nginx_exporter.sigstore.identity")
            && text(&o).contains("`*` may only end the identity"),
        "{}",
        text(&o)
    );

    // A trusted root that is not one: the signature cannot be checked, so
    // nothing is installed, and the message names the file.
    let h = host(&server, &sigstore, "");
    let trusted = h.path().join("etc/obs-upgrade/sigstore-root.json");
    std::fs::write(&trusted, "{\"mediaType\": 1}").unwrap();
    let e = stage(h.path()).unwrap_err();
    assert!(
        e.contains("the Sigstore trusted root does not read") && e.contains("refusing"),
        "{e}"
    );
    assert!(!staged_153(h.path()));
    // `config check` finds it before any upgrade does.
    let o = cli(h.path(), &["config", "check"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "components.nginx_exporter.sigstore_trusted_root: {}: the Sigstore trusted root \
             does not read",
            trusted.display()
        )),
        "{}",
        text(&o)
    );
    std::fs::write(&trusted, sigstore.trusted_root()).unwrap();
    let o = cli(h.path(), &["config", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A bundle cosign v3 made on the public-good instance (from sigstore-rust's
/// test data, Apache-2.0): verified offline with the trusted root built into
/// the binary, through the same function the ladder calls.
#[test]
fn a_real_public_good_bundle_verifies_offline_with_the_built_in_trusted_root() {
    let blob = include_bytes!("../data/sigstore/cosign-v3-blob.txt").to_vec();
    let bundle = include_bytes!("../data/sigstore/cosign-v3-blob.sigstore.json");
    let spec = |identity: &str, issuer: &str| SigstoreSpec {
        identity: identity.into(),
        issuer: issuer.into(),
        bundle_suffix: ".sigstore.json".into(),
        versions: "*".parse().unwrap(),
    };
    let github = "https://github.com/login/oauth";
    let by = upgrade_fetch::verify::sigstore(&spec("*", github), None, &blob, bundle).unwrap();
    assert!(by.starts_with("Sigstore identity ") && by.ends_with(&format!("(issuer {github})")));
    let mut changed = blob.clone();
    changed.push(b'\n');
    let e = upgrade_fetch::verify::sigstore(&spec("*", github), None, &changed, bundle);
    assert!(e.is_err(), "{e:?}");
    let e = upgrade_fetch::verify::sigstore(&spec("*", GITHUB_ACTIONS_ISSUER), None, &blob, bundle)
        .unwrap_err();
    assert!(e.contains("issuer mismatch"), "{e}");
    // Against the test instance's root instead, it is someone else's.
    let test = TestSigstore::new("test");
    let e = upgrade_fetch::verify::sigstore(
        &spec("*", github),
        Some(test.trusted_root()),
        &blob,
        bundle,
    );
    assert!(e.is_err(), "{e:?}");
}
