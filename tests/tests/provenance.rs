//! Knowing what is installed, against the loopback release server: release
//! dates, pages and notes kept with the cached listing; breaking lines in
//! an intermediate release's notes raise the step; security advisories
//! flag the installed version in `check`, `plan`, `status` and the
//! metrics, and may bypass `min_release_age` only when the stack says so.

use std::path::Path;
use std::process::{Command, Output};

use obs_upgrade_tests::archives::fake_binary;
use obs_upgrade_tests::release_server::{FakeRelease, ReleaseServer};
use obs_upgrade_tests::{bin, fixtures};

const GHSA: &str = "GHSA-8f2x-9q3r-4m5p";
const REPO_API: &str = "https://api.github.com/repos/prometheus/node_exporter";
const REPO_PAGE: &str = "https://github.com/prometheus/node_exporter";

fn cli(root: &Path, args: &[&str]) -> Output {
    Command::new(bin("obs-upgrade"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("OBS_UPGRADE_GITHUB_TOKEN")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// A root with this stack and `node_exporter` 1.8.0 installed.
fn root_with(yaml: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/obs-upgrade");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("stack.yaml"), yaml).unwrap();
    let bin_dir = root.path().join("usr/local/bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let path = bin_dir.join("node_exporter");
    std::fs::write(&path, fake_binary("node_exporter", "1.8.0")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// 1.8.0 (installed), 1.8.1 with a `[CHANGE]` line, 1.8.2 with a bugfix:
/// a patch-level target whose way crosses a breaking change.
fn releases_with_a_breaking_middle() -> Vec<FakeRelease> {
    vec![
        FakeRelease::new("v1.8.2", "2026-03-02T10:00:00Z", vec![]).with_notes(
            "## 1.8.2 / 2026-03-02\n\n* [BUGFIX] Fix a panic in the hwmon collector.\n",
        ),
        FakeRelease::new("v1.8.1", "2026-02-01T10:00:00Z", vec![]).with_notes(
            "## 1.8.1 / 2026-02-01\n\n\
             * [CHANGE] Remove the deprecated `--collector.ntp.server` flag. #3001\n\
             * [ENHANCEMENT] Faster filesystem stats.\n",
        ),
        FakeRelease::new("v1.8.0", "2026-01-01T10:00:00Z", vec![])
            .with_notes("* [FEATURE] Everything new.\n"),
    ]
}

fn node_component(server: &ReleaseServer, extra: &str) -> String {
    format!(
        "components:\n  node_exporter: {{api_url: '{}'{extra}}}\n",
        server.url()
    )
}

#[test]
fn a_change_line_in_an_intermediate_release_raises_the_step_and_is_quoted() {
    let server = ReleaseServer::start();
    server.state().github.insert(
        "prometheus/node_exporter".into(),
        releases_with_a_breaking_middle(),
    );
    let root = root_with(&node_component(&server, ""));

    let o = cli(root.path(), &["--json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    let row = &v["components"][0];
    assert_eq!(row["name"], "node_exporter");
    assert_eq!(row["target"], "1.8.2");
    assert_eq!(row["change"], "patch");
    assert_eq!(row["risk"], "high", "{row:#}");
    let quoted = concat!(
        "breaking change in the 1.8.1 release notes: ",
        "\"[CHANGE] Remove the deprecated `--collector.ntp.server` flag. #3001\""
    );
    assert!(
        row["risk_reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == quoted),
        "{row:#}"
    );
    // The candidate's date and page, in JSON and in words.
    assert_eq!(row["candidate"]["version"], "1.8.2");
    assert_eq!(row["candidate"]["published_at"], "2026-03-02T10:00:00Z");
    let page = format!("{}/releases/tag/v1.8.2", server.url());
    assert_eq!(row["candidate"]["url"], page.as_str());
    let o = cli(root.path(), &["check"]);
    let shown = text(&o);
    assert_eq!(o.status.code(), Some(0), "{shown}");
    assert!(shown.contains("RELEASED"), "{shown}");
    assert!(shown.contains("2026-03-02"), "{shown}");
    assert!(
        shown.contains(&format!("node_exporter 1.8.2: {page}")),
        "{shown}"
    );

    // The plan quotes it; `--notes` shows every release crossed, JSON too.
    let o = cli(root.path(), &["--json", "plan"]);
    let v = json(&o);
    let step = &v["phases"][0]["steps"][0];
    assert_eq!(step["risk"], "high");
    let crossed: Vec<&str> = step["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    assert_eq!(crossed, ["1.8.1", "1.8.2"]);
    assert!(
        step["releases"][0].get("notes").is_none(),
        "notes only with --notes: {step:#}"
    );
    assert_eq!(
        step["releases"][0]["breaking"][0],
        "[CHANGE] Remove the deprecated `--collector.ntp.server` flag. #3001"
    );
    let o = cli(root.path(), &["--json", "plan", "--notes"]);
    let v = json(&o);
    let notes = v["phases"][0]["steps"][0]["releases"][1]["notes"]
        .as_str()
        .unwrap();
    assert!(notes.contains("[BUGFIX] Fix a panic"), "{notes}");
    let o = cli(root.path(), &["plan", "--notes"]);
    let shown = text(&o);
    assert!(
        shown.contains("── node_exporter 1.8.1 (2026-02-01)"),
        "{shown}"
    );
    assert!(
        shown.contains("[ENHANCEMENT] Faster filesystem stats."),
        "{shown}"
    );
    assert!(
        !shown.contains("[FEATURE] Everything new."),
        "1.8.0 is not crossed: {shown}"
    );
}

#[test]
fn a_warm_check_asks_nothing_more_for_notes_or_advisories() {
    let server = ReleaseServer::start();
    server.state().github.insert(
        "prometheus/node_exporter".into(),
        releases_with_a_breaking_middle(),
    );
    server.state().advisories.insert(
        "prometheus/node_exporter".into(),
        advisory(">= 1.0.0, < 1.8.1", "1.8.1"),
    );
    let root = root_with(&node_component(&server, ""));
    let o = cli(root.path(), &["--json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cold: Vec<String> = server.seen("/").iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        cold,
        [
            "/repos/prometheus/node_exporter/releases?per_page=100",
            "/repos/prometheus/node_exporter/security-advisories?state=published&per_page=100",
        ],
        "one listing and one advisory request, nothing per release"
    );
    for args in [
        &["--json", "check"][..],
        &["check"],
        &["plan", "--notes"],
        &["status"],
    ] {
        let o = cli(root.path(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
    let warm = server.seen("/").len();
    assert_eq!(warm, 2, "warm runs sent requests: {:?}", server.seen("/"));
}

/// A GitHub repository advisory answer with one advisory.
fn advisory(range: &str, patched: &str) -> serde_json::Value {
    serde_json::json!([{
        "ghsa_id": GHSA,
        "cve_id": "CVE-2026-31337",
        "url": format!("{REPO_API}/security-advisories/{GHSA}"),
        "html_url": format!("{REPO_PAGE}/security/advisories/{GHSA}"),
        "summary": "Unauthenticated file read through the textfile collector",
        "description": "Long text.",
        "severity": "high",
        "state": "published",
        "published_at": "2026-02-01T12:00:00Z",
        "withdrawn_at": null,
        "vulnerabilities": [{
            "package": {"ecosystem": "go", "name": "github.com/prometheus/node_exporter"},
            "vulnerable_version_range": range,
            "patched_versions": patched,
            "vulnerable_functions": []
        }]
    }])
}

#[test]
fn an_affected_installed_version_is_flagged_everywhere_with_its_id() {
    let server = ReleaseServer::start();
    server.state().github.insert(
        "prometheus/node_exporter".into(),
        releases_with_a_breaking_middle(),
    );
    server.state().advisories.insert(
        "prometheus/node_exporter".into(),
        advisory(">= 1.0.0, < 1.8.1", "1.8.1"),
    );
    let root = root_with(&node_component(&server, ""));

    let o = cli(root.path(), &["--json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    let found = &v["components"][0]["advisories"][0];
    assert_eq!(found["id"], GHSA, "{v:#}");
    assert_eq!(found["severity"], "high");
    assert_eq!(found["installed"], "1.8.0");
    assert_eq!(found["fixed_in"], "1.8.1");
    assert_eq!(found["cve"], "CVE-2026-31337");
    let o = cli(root.path(), &["check"]);
    let shown = text(&o);
    assert!(shown.contains("Security advisories:"), "{shown}");
    assert!(
        shown.contains(&format!(
            "node_exporter 1.8.0: {GHSA}, CVE-2026-31337 (high) Unauthenticated file read"
        )),
        "{shown}"
    );
    assert!(shown.contains("fixed in 1.8.1"), "{shown}");

    // The plan's step says what it fixes; the plan lists the finding.
    let v = json(&cli(root.path(), &["--json", "plan"]));
    assert_eq!(v["advisories"][0]["id"], GHSA);
    let reasons = v["phases"][0]["steps"][0]["risk_reasons"].to_string();
    assert!(
        reasons.contains(&format!("fixes {GHSA} (high) affecting 1.8.0")),
        "{reasons}"
    );
    let shown = text(&cli(root.path(), &["plan"]));
    assert!(shown.contains(GHSA), "{shown}");

    // `status` reads the cached advisories: no request.
    let before = server.seen("/").len();
    let o = cli(root.path(), &["status"]);
    let shown = text(&o);
    assert!(
        shown.contains(&format!(
            "advisory: node_exporter 1.8.0 is affected by {GHSA} (high)"
        )),
        "{shown}"
    );
    let v = json(&cli(root.path(), &["--json", "status"]));
    assert_eq!(v["advisories"][0]["id"], GHSA);
    assert_eq!(server.seen("/").len(), before, "status asked the server");

    // The metric, which the alert rule reads.
    let o = cli(root.path(), &["metrics"]);
    let metrics = String::from_utf8_lossy(&o.stdout).into_owned();
    let sample = format!(
        "obs_upgrade_advisory_affected{{component=\"node_exporter\",advisory=\"{GHSA}\",\
         advisory_severity=\"high\",fixed_in=\"1.8.1\"}} 1\n"
    );
    assert!(metrics.contains(&sample), "{metrics}");

    // Once the fixed version is installed, nothing is flagged.
    std::fs::write(
        root.path().join("usr/local/bin/node_exporter"),
        fake_binary("node_exporter", "1.8.2"),
    )
    .unwrap();
    let v = json(&cli(root.path(), &["--json", "check"]));
    assert_eq!(v["components"][0]["advisories"], serde_json::json!([]));
    let o = cli(root.path(), &["metrics"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("obs_upgrade_advisory_affected{"));

    let Some(promtool) = fixtures::require(
        "bookworm",
        "prometheus",
        "promtool",
        "an_affected_installed_version_is_flagged_everywhere_with_its_id",
    ) else {
        return;
    };
    let file = root.path().join("metrics.prom");
    std::fs::write(&file, &metrics).unwrap();
    let check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/alerts.yml");
    let check = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    let tests = rules.with_file_name("alerts.test.yml");
    let check = Command::new(&promtool)
        .args(["test", "rules"])
        .arg(&tests)
        .current_dir(rules.parent().unwrap())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        std::fs::read_to_string(&rules)
            .unwrap()
            .contains("obs_upgrade_advisory_affected == 1"),
        "the rule reads the metric this test saw written"
    );
}

#[test]
fn a_fix_skips_min_release_age_only_when_the_stack_says_so() {
    let server = ReleaseServer::start();
    let yesterday = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    server.state().github.insert(
        "prometheus/node_exporter".into(),
        vec![
            FakeRelease::new("v1.8.1", &yesterday.to_string(), vec![]),
            FakeRelease::new("v1.8.0", "2026-01-01T10:00:00Z", vec![]),
        ],
    );
    server.state().advisories.insert(
        "prometheus/node_exporter".into(),
        advisory("< 1.8.1", "1.8.1"),
    );

    let root = root_with(&node_component(&server, ", min_release_age: 3d"));
    let v = json(&cli(root.path(), &["--json", "plan"]));
    assert!(v["phases"].as_array().unwrap().is_empty(), "{v:#}");
    assert_eq!(v["blocked"][0]["reason"]["kind"], "too_new", "{v:#}");
    assert_eq!(
        v["advisories"][0]["id"], GHSA,
        "flagged even when held back"
    );

    let root = root_with(&node_component(
        &server,
        ", min_release_age: 3d, advisories_bypass_age: true",
    ));
    let v = json(&cli(root.path(), &["--json", "plan"]));
    let step = &v["phases"][0]["steps"][0];
    assert_eq!(step["to"], "1.8.1", "{v:#}");
    let reasons = step["risk_reasons"].to_string();
    assert!(
        reasons.contains(&format!(
            "min_release_age 3d bypassed (advisories_bypass_age): 1.8.1 fixes {GHSA} (high) \
             affecting 1.8.0"
        )),
        "{reasons}"
    );

    // A release that fixes nothing is still held back with the bypass on.
    server.state().advisories.clear();
    let root = root_with(&node_component(
        &server,
        ", min_release_age: 3d, advisories_bypass_age: true",
    ));
    let v = json(&cli(root.path(), &["--json", "plan"]));
    assert_eq!(v["blocked"][0]["reason"]["kind"], "too_new", "{v:#}");
}

#[test]
fn a_mirror_carries_notes_pages_and_advisories_for_air_gapped_hosts() {
    let mirror = tempfile::tempdir().unwrap();
    let comp = mirror.path().join("node_exporter");
    for (tag, meta) in [
        (
            "v1.8.0",
            serde_json::json!({"published_at": "2026-01-01T00:00:00Z"}),
        ),
        (
            "v1.9.0",
            serde_json::json!({
                "published_at": "2026-02-01T00:00:00Z",
                "url": "https://mirror.example/node_exporter/v1.9.0",
                "notes": concat!(
                    "## Breaking changes\n",
                    "- The `--web.config` flag is now `--web.config.file`.\n"
                )
            }),
        ),
    ] {
        std::fs::create_dir_all(comp.join(tag)).unwrap();
        std::fs::write(comp.join(tag).join("release.json"), meta.to_string()).unwrap();
    }
    std::fs::write(
        comp.join("advisories.json"),
        advisory("< 1.9.0", "1.9.0").to_string(),
    )
    .unwrap();
    let root = root_with(&format!(
        "components:\n  node_exporter: {{source: mirror, api_url: '{}'}}\n",
        mirror.path().display()
    ));
    let o = cli(root.path(), &["--json", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = json(&o);
    let row = &v["components"][0];
    assert_eq!(
        row["candidate"]["url"],
        "https://mirror.example/node_exporter/v1.9.0"
    );
    assert_eq!(row["advisories"][0]["id"], GHSA);
    assert!(
        row["risk_reasons"].to_string().contains(
            "breaking change in the 1.9.0 release notes: \\\"The `--web.config` flag is now \
             `--web.config.file`.\\\""
        ),
        "{row:#}"
    );

    // A damaged advisory file is a warning on the plan, never a silent "no advisories".
    std::fs::write(comp.join("advisories.json"), "{not json").unwrap();
    let o = cli(root.path(), &["--json", "check"]);
    let v = json(&o);
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("cannot read security advisories"),
        "{warnings}"
    );
    assert!(warnings.contains("advisories.json"), "{warnings}");
}

/// The minisign CLI (`apt-get install minisign`; `scripts/setup` installs it).
fn minisign_cli(test: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("minisign"))
            .find(|f| f.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if obs_upgrade_tests::nsd::in_ci() => {
            panic!("{test}: minisign is missing in CI; scripts/setup installs it")
        }
        None => {
            #[allow(clippy::print_stderr)] // the skip is said where the test output shows it
            {
                eprintln!("SKIPPED {test}: minisign is missing; apt-get install minisign");
            }
            None
        }
    }
}

/// A minisign key pair made by the real tool: (public key line, secret key file).
fn minisign_keys(cli: &Path, dir: &Path, name: &str) -> (String, std::path::PathBuf) {
    let (public, secret) = (
        dir.join(format!("{name}.pub")),
        dir.join(format!("{name}.key")),
    );
    let o = Command::new(cli)
        .args(["-G", "-W", "-f", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let key = std::fs::read_to_string(&public).unwrap();
    (key.lines().nth(1).unwrap().trim().to_owned(), secret)
}

fn minisign_sign(cli: &Path, secret: &Path, file: &Path) {
    let o = Command::new(cli)
        .args(["-S", "-s"])
        .arg(secret)
        .arg("-m")
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// A mirror with `node_exporter` 1.9.1: archive and checksum file.
fn mirror_release(mirror: &Path) -> std::path::PathBuf {
    use obs_upgrade_tests::archives::{checksums, promu};
    let platform = upgrade_core::catalog::Platform::current();
    let dir = mirror.join("node_exporter/v1.9.1");
    std::fs::create_dir_all(&dir).unwrap();
    let (name, tgz) = promu(
        "node_exporter",
        "1.9.1",
        &platform.arch,
        &[("node_exporter", &fake_binary("node_exporter", "1.9.1"))],
    );
    std::fs::write(dir.join(&name), &tgz).unwrap();
    std::fs::write(dir.join("sha256sums.txt"), checksums(&[(&name, &tgz)])).unwrap();
    dir
}

/// Lists the mirror and stages its newest release for a component with
/// `minisign_key: key` (and the extra YAML given).
fn stage_from_mirror(mirror: &Path, key: &str, extra: &str, work: &Path) -> Result<String, String> {
    use upgrade_core::config::{Format, Stack};
    use upgrade_core::ports::ReleaseSource;
    use upgrade_fetch::api::ApiClient;
    use upgrade_fetch::http::{Http, HttpOptions};
    use upgrade_fetch::sources::{GITHUB_API, GITLAB_API, Sources};
    use upgrade_fetch::store::Store;
    let yaml = format!(
        concat!(
            "components:\n  node_exporter: ",
            "{{source: mirror, api_url: '{m}', minisign_key: '{key}'{extra}}}\n"
        ),
        m = mirror.display(),
        key = key,
        extra = extra
    );
    let stack = Stack::from_text(&yaml, Format::Yaml, "stack.yaml", None).unwrap();
    let comp = &stack.components["node_exporter"];
    let http = Http::new(HttpOptions::default());
    let ttl = std::time::Duration::ZERO;
    let sources = Sources::new(
        ApiClient::new(http.clone(), work.join("api"), ttl, false),
        GITHUB_API,
        GITLAB_API,
        None,
    );
    let release = sources.releases(comp).unwrap().pop().unwrap();
    let store = Store::new(
        work.join("opt"),
        work.join("cache"),
        http,
        upgrade_core::catalog::Platform::current(),
    );
    let _ = std::fs::remove_dir_all(work.join("opt"));
    store
        .stage(comp, &release, &mut |_, _| {})
        .map(|s| s.proof.to_string())
        .map_err(|e| e.to_string())
}

#[test]
fn a_mirror_signed_with_the_operators_minisign_key_is_verified_before_its_digests() {
    let test = "a_mirror_signed_with_the_operators_minisign_key_is_verified_before_its_digests";
    let Some(cli) = minisign_cli(test) else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let (key, secret) = minisign_keys(&cli, keys.path(), "mirror");
    let (other_key, other_secret) = minisign_keys(&cli, keys.path(), "other");
    let mirror = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let release = mirror_release(mirror.path());
    let sums = release.join("sha256sums.txt");

    // Not signed yet: refused, unless unsigned releases are allowed.
    let e = stage_from_mirror(mirror.path(), &key, "", work.path()).unwrap_err();
    assert!(
        e.contains("sha256sums.txt.minisig is missing") && e.contains("allow_unsigned"),
        "{e}"
    );
    let proof = stage_from_mirror(mirror.path(), &key, ", allow_unsigned: true", work.path());
    assert_eq!(
        proof.as_deref(),
        Ok("verified by the checksum file sha256sums.txt")
    );

    // Signed with the operator's key: verified, and the proof says by whom.
    minisign_sign(&cli, &secret, &sums);
    let proof = stage_from_mirror(mirror.path(), &key, "", work.path()).unwrap();
    let short: String = key.chars().take(12).collect();
    assert_eq!(
        proof,
        format!("verified by sha256sums.txt, signed by minisign key {short}…")
    );

    // Another key's signature: refused (even with allow_unsigned).
    let e = stage_from_mirror(
        mirror.path(),
        &other_key,
        ", allow_unsigned: true",
        work.path(),
    )
    .unwrap_err();
    assert!(
        e.contains("does not verify sha256sums.txt") && e.contains("another key"),
        "{e}"
    );

    // The checksum file changed after signing: refused.
    let good = std::fs::read(&sums).unwrap();
    let mut tampered = good.clone();
    tampered[0] = if tampered[0] == b'0' { b'1' } else { b'0' };
    std::fs::write(&sums, &tampered).unwrap();
    let e = stage_from_mirror(mirror.path(), &key, "", work.path()).unwrap_err();
    assert!(e.contains("does not match the file's contents"), "{e}");

    // Re-signed by someone else's key after the change: still refused.
    minisign_sign(&cli, &other_secret, &sums);
    let e = stage_from_mirror(mirror.path(), &key, "", work.path()).unwrap_err();
    assert!(e.contains("another key"), "{e}");
    std::fs::write(&sums, &good).unwrap();
    minisign_sign(&cli, &secret, &sums);
    assert!(stage_from_mirror(mirror.path(), &key, "", work.path()).is_ok());
}
