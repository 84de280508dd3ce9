//! The seeds' phase-1 exporters that differ from the Prometheus shape:
//! php-fpm_exporter (GitHub: a `version` subcommand, no build-info metric)
//! and the fail2ban exporter (GitLab: three asset namings, two tag styles,
//! its version in `f2b_version{exporter}`, a `/health` that fails while
//! fail2ban is down). Each goes through check → plan → stage → apply →
//! rollback with the CLI against upstream-shaped releases on a loopback
//! server, with stand-ins that answer like the real binaries, supervised
//! without systemd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use obs_upgrade_tests::archives::{self, Entry};
use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease};
use obs_upgrade_tests::sandbox::patched;
use obs_upgrade_tests::world::{Sandbox, free_port};
use obs_upgrade_tests::{bin, obs_upgrade, output_text};
use upgrade_core::catalog::Platform;

/// A sandbox host (its supervisor stops every service when dropped) with
/// the stand-in exporter to install and publish.
struct Host {
    sb: Sandbox,
    exporter: Vec<u8>,
}

impl Host {
    fn new() -> Self {
        let sb = Sandbox::new();
        std::fs::create_dir_all(sb.root.path().join("etc/obs-upgrade")).unwrap();
        Host {
            sb,
            exporter: std::fs::read(bin("sandbox-exporter")).unwrap(),
        }
    }

    /// Installs `name` at `version` by hand and runs it as `unit`.
    fn install(&self, name: &str, version: &str, unit: &str, flags: &[String]) -> PathBuf {
        let path = self
            .sb
            .install_bytes(name, &patched(&self.exporter, version));
        self.sb.run_service(unit, name, flags);
        path
    }

    /// A tarball holding the stand-in at `version` under `inner` (mode 0644,
    /// as a careless packer would store it).
    fn tarball(&self, version: &str, inner: &str) -> Vec<u8> {
        let bin = patched(&self.exporter, version);
        let entries: Vec<Entry<'_>> = vec![(inner, bin.as_slice(), 0o644)];
        archives::tar_gz(&entries)
    }

    fn stack(&self, yaml: &str) {
        let path = self.sb.root.path().join("etc/obs-upgrade/stack.yaml");
        std::fs::write(path, yaml).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        obs_upgrade(self.sb.root.path(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let out = output_text(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {out}");
        out
    }

    /// The unit's running pid.
    fn pid(&self, unit: &str) -> u32 {
        self.sb.supervisor.running_pid(unit).expect("running")
    }
}

fn asset(name: &str, data: Vec<u8>) -> FakeAsset {
    FakeAsset {
        name: name.into(),
        data: Arc::new(data),
        with_digest: false,
    }
}

/// The version the binary behind `link` prints with `args`.
fn printed(link: &Path, args: &[&str]) -> String {
    let o = Command::new(link).args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn arch() -> String {
    Platform::current().arch
}

#[test]
fn php_fpm_exporter_from_github_through_check_apply_and_rollback() {
    let h = Host::new();
    let port = free_port();
    let link = h.install(
        "php-fpm_exporter",
        "2.1.0",
        "phpfpm_exporter.service",
        &[
            "server".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--phpfpm.scrape-uri=tcp://127.0.0.1:9000/status".into(),
        ],
    );
    // goreleaser's defaults: `<project>_<v>_<os>_<arch>.tar.gz`, the binary at
    // the root, `<project>_<v>_checksums.txt`.
    let release = |v: &str, published: &str| {
        let name = format!("php-fpm_exporter_{v}_linux_{}.tar.gz", arch());
        let tgz = h.tarball(v, "php-fpm_exporter");
        let sums = archives::checksums(&[(&name, &tgz)]);
        FakeRelease::new(
            &format!("v{v}"),
            published,
            vec![
                asset(&name, tgz),
                asset(&format!("php-fpm_exporter_{v}_checksums.txt"), sums),
            ],
        )
    };
    let releases = vec![
        release("2.3.0+broken", "2026-02-01T00:00:00Z"),
        release("2.2.0", "2026-01-01T00:00:00Z"),
        release("2.1.0", "2025-06-01T00:00:00Z"),
    ];
    h.sb.server
        .state()
        .github
        .insert("hipages/php-fpm_exporter".into(), releases);
    h.stack(&format!(
        concat!(
            "defaults: {{allow: minor, min_release_age: \"0\"}}\ncomponents:\n",
            "  phpfpm_exporter: {{api_url: '{url}', port: {port}, health_deadline_secs: 5}}\n",
        ),
        url = h.sb.server.url(),
        port = port,
    ));

    // check reads the installed version through the `version` subcommand.
    let out = h.ok(&["check"]);
    assert!(out.contains("phpfpm_exporter"), "{out}");
    assert!(out.contains("2.1.0"), "{out}");
    let out = h.ok(&["plan"]);
    assert!(out.contains("2.1.0 → 2.3.0+broken"), "{out}");
    h.ok(&["stage", "--component", "phpfpm_exporter"]);

    // The newest release starts but fails every request: rolled back, and
    // the service runs the old binary again.
    let o = h.run(&["apply", "--yes", "--component", "phpfpm_exporter"]);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    assert!(
        output_text(&o).contains("rolled back"),
        "{}",
        output_text(&o)
    );
    assert_eq!(printed(&link, &["version"]), "php-fpm_exporter 2.1.0\n");

    // The good one: verified by the running binary (there is no version metric).
    h.ok(&["apply", "--yes", "--component", "phpfpm_exporter"]);
    let out = h.ok(&["--json", "status"]);
    assert!(out.contains("runs the release's binary: ok"), "{out}");
    assert!(!out.contains("phpfpm_exporter_build_info"), "{out}");
    assert_eq!(printed(&link, &["version"]), "php-fpm_exporter 2.2.0\n");
    let upgraded = h.pid("phpfpm_exporter.service");
    let exe = std::fs::read_link(format!("/proc/{upgraded}/exe")).unwrap();
    assert!(
        exe.ends_with("phpfpm_exporter/2.2.0/php-fpm_exporter"),
        "{}",
        exe.display()
    );

    // Back by hand; a second look changes nothing.
    h.ok(&["rollback", "--component", "phpfpm_exporter", "--previous"]);
    assert_eq!(printed(&link, &["version"]), "php-fpm_exporter 2.1.0\n");
    assert_ne!(h.pid("phpfpm_exporter.service"), upgraded);
    let out = h.ok(&["status"]);
    assert!(out.contains("2.1.0"), "{out}");
}

#[test]
fn fail2ban_exporter_from_gitlab_across_its_three_namings() {
    let h = Host::new();
    let port = free_port();
    let socket = h.sb.root.path().join("fail2ban.sock");
    let link = h.install(
        "fail2ban_exporter",
        "0.4.0",
        "fail2ban_exporter.service",
        &[
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--collector.f2b.socket={}", socket.display()),
        ],
    );
    let a = arch();
    let arch_name = |a: &str| {
        if a == "arm" {
            "armv7".to_owned()
        } else {
            a.to_owned()
        }
    };
    let a = arch_name(&a);
    // 0.5: fail2ban-prometheus-exporter_*, binary at the root, checksums.txt.
    let legacy = {
        let name = format!("fail2ban-prometheus-exporter_0.5.0_linux_{a}.tar.gz");
        let tgz = h.tarball("0.5.0", "fail2ban-prometheus-exporter");
        let sums = archives::checksums(&[(&name, &tgz)]);
        FakeRelease::new(
            "0.5.0",
            "2022-01-01T00:00:00Z",
            vec![asset(&name, tgz), asset("checksums.txt", sums)],
        )
    };
    // 0.6–0.7: fail2ban_exporter_*, inside a directory of the same name.
    let wrapped = {
        let dir = format!("fail2ban_exporter_0.7.2_linux_{a}");
        let name = format!("{dir}.tar.gz");
        let tgz = h.tarball("0.7.2", &format!("{dir}/fail2ban_exporter"));
        let sums = archives::checksums(&[(&name, &tgz)]);
        FakeRelease::new(
            "0.7.2",
            "2022-06-01T00:00:00Z",
            vec![asset(&name, tgz), asset("checksums.txt", sums)],
        )
    };
    // 0.8 on: `v` tags, at the root, fail2ban_exporter_<v>_checksums.txt.
    let current = {
        let name = format!("fail2ban_exporter_0.10.1_linux_{a}.tar.gz");
        let tgz = h.tarball("0.10.1", "fail2ban_exporter");
        let sums = archives::checksums(&[(&name, &tgz)]);
        FakeRelease::new(
            "v0.10.1",
            "2023-10-01T00:00:00Z",
            vec![
                asset(&name, tgz),
                asset("fail2ban_exporter_0.10.1_checksums.txt", sums),
            ],
        )
    };
    h.sb.server.state().gitlab.insert(
        "hectorjsmith/fail2ban-prometheus-exporter".into(),
        vec![current, wrapped, legacy],
    );
    let stack = |track: &str| {
        format!(
            concat!(
                "defaults: {{allow: major, min_release_age: \"0\"}}\ncomponents:\n",
                "  fail2ban_exporter: {{api_url: '{url}', port: {port}, ",
                "health_deadline_secs: 5, track: \"{track}\"}}\n",
            ),
            url = h.sb.server.url(),
            port = port,
            track = track,
        )
    };

    // fail2ban is down: no f2b_version, /health 503 (advisory), still verified.
    h.stack(&stack("0.5.0"));
    let out = h.ok(&["check"]);
    assert!(out.contains("0.4.0") && out.contains("→ 0.5.0"), "{out}");
    h.ok(&["stage", "--component", "fail2ban_exporter"]);
    h.ok(&["apply", "--yes", "--component", "fail2ban_exporter"]);
    let out = h.ok(&["--json", "status"]);
    assert!(out.contains("no f2b_version now (optional)"), "{out}");
    assert!(out.contains("(advisory)"), "{out}");
    assert!(out.contains("failed, not deciding"), "{out}");
    assert!(printed(&link, &["--version"]).starts_with("0.5.0\n"));

    // fail2ban up: f2b_version{exporter} must say the new version.
    std::fs::write(&socket, b"").unwrap();
    h.stack(&stack("0.7.2"));
    h.ok(&["apply", "--yes", "--component", "fail2ban_exporter"]);
    let out = h.ok(&["--json", "status"]);
    assert!(out.contains("f2b_version version 0.7.2: ok"), "{out}");
    assert!(out.contains("running 0.7.2"), "{out}");
    assert!(printed(&link, &["--version"]).starts_with("0.7.2\n"));

    h.stack(&stack("latest"));
    let out = h.ok(&["plan"]);
    assert!(out.contains("0.7.2 → 0.10.1"), "{out}");
    let out = h.ok(&["apply", "--yes", "--component", "fail2ban_exporter"]);
    assert!(out.contains("0.7.2 → 0.10.1"), "{out}");
    assert!(printed(&link, &["--version"]).starts_with("0.10.1\n"));

    // Back to the wrapped release by hand.
    h.ok(&["rollback", "--component", "fail2ban_exporter", "--previous"]);
    assert!(printed(&link, &["--version"]).starts_with("0.7.2\n"));
    let out = h.ok(&["status"]);
    assert!(out.contains("0.7.2"), "{out}");
    // Every download came from the GitLab API's listing.
    assert!(
        !h.sb
            .server
            .seen("/api/v4/projects/hectorjsmith%2Ffail2ban-prometheus-exporter/releases")
            .is_empty()
    );
}
