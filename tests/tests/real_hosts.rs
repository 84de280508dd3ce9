//! Hosts set up the way operators set them up, on a real systemd in a
//! namespace with Debian's real builds: `node_exporter` behind TLS and
//! basic auth on an address only its drop-in names; Debian's packaged
//! `node_exporter` at `/usr/bin/prometheus-node-exporter` under its own unit
//! in `/lib/systemd/system`, never overwritten; a real Prometheus whose
//! target must be `up` after the switch; a release that exits after a few
//! seconds, caught by the settle period.
#![allow(clippy::print_stderr, clippy::too_many_lines)]

use std::path::Path;
use std::process::{Command, Output};

use obs_upgrade_tests::e2e::{self, Host, ROOT, tag_version};
use obs_upgrade_tests::fixtures;
use obs_upgrade_tests::tls::PrivateCa;
use upgrade_core::journal::RunRecord;
use upgrade_core::version::Version;

fn out(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn old() -> Version {
    tag_version("bookworm", "node_exporter")
}

fn new() -> Version {
    tag_version("trixie", "node_exporter")
}

/// bcrypt of `probe-secret` (cost 10), as exporter-toolkit expects.
const HASH: &str = "$2b$10$cu1VlJzzi9z0zB95ucYtruYYS0gdWRkB4.Sq7HyUR/7MgwiC.MBt6";

/// The health record of a component in a run record.
fn health_of(run: &RunRecord) -> Vec<String> {
    run.components
        .values()
        .find_map(|c| c.health.as_ref().map(|h| h.detail.clone()))
        .unwrap_or_default()
}

/// A shell script release binary.
fn script(body: &str) -> Vec<u8> {
    format!("#!/bin/sh\n{body}\n").into_bytes()
}

/// Copies a host file into the namespace at `inside`, executable.
fn place(h: &Host, src: &Path, inside: &str) {
    use std::os::unix::fs::PermissionsExt;
    let to = h.path(inside);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(src, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn restart(h: &Host, unit: &str) {
    let sd = h.ns.systemd();
    sd.daemon_reload().unwrap();
    sd.systemctl("restart", unit, &["restart", unit]).unwrap();
}

/// The main process's executable (dev, inode), from the host.
fn exe_of(h: &Host, unit: &str) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let pid =
        h.ns.systemd()
            .show(unit)
            .unwrap()
            .main_pid
            .expect("running");
    let m = std::fs::metadata(h.path(&format!("/proc/{pid}/exe"))).unwrap();
    (m.dev(), m.ino())
}

fn file_id(p: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.dev(), m.ino())
}

#[test]
fn tls_basic_auth_and_an_address_from_a_drop_in_upgraded_on_systemd() {
    let test = "tls_basic_auth_and_an_address_from_a_drop_in_upgraded_on_systemd";
    if !e2e::available(test) {
        return;
    }
    let h = Host::boot(&["node_exporter"], &[], "");
    let etc = h.root("etc/node_exporter");
    std::fs::create_dir_all(&etc).unwrap();
    let ca = PrivateCa::new();
    std::fs::write(etc.join("tls.crt"), &ca.cert_pem).unwrap();
    std::fs::write(etc.join("tls.key"), &ca.key_pem).unwrap();
    ca.write_ca(&etc.join("ca.pem"));
    std::fs::write(etc.join("probe.pass"), "probe-secret\n").unwrap();
    let inside = format!("{ROOT}/etc/node_exporter");
    std::fs::write(
        etc.join("web.yml"),
        format!(
            concat!(
                "tls_server_config:\n  cert_file: {d}/tls.crt\n  key_file: {d}/tls.key\n",
                "basic_auth_users:\n  prom: {hash}\n",
            ),
            d = inside,
            hash = HASH,
        ),
    )
    .unwrap();
    // The operator's flags live in a drop-in: another address and port,
    // TLS and basic auth through exporter-toolkit's web config.
    let port = obs_upgrade_tests::world::free_port();
    let dropins = h.ns.unit_dir().join("node_exporter.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        dropins.join("10-flags.conf"),
        format!(
            "[Service]\nExecStart=\nExecStart={ROOT}/usr/local/bin/node_exporter \
             --web.listen-address=127.0.0.2:{port} --web.config.file={inside}/web.yml \
             --no-collector.systemd\n"
        ),
    )
    .unwrap();
    restart(&h, "node_exporter.service");
    // The stack names no address or port: only the credentials and the CA.
    write_node_stack(
        &h,
        &h.root("etc/obs-upgrade/stack.yaml"),
        &format!(
            concat!(
                "    health_deadline_secs: 30\n",
                "    endpoint:\n      ca_file: {d}/ca.pem\n",
                "      basic_auth: {{username: prom, password_file: {d}/probe.pass}}\n",
            ),
            d = inside,
        ),
    );

    // `config show` says where the service answers and where that came from.
    let o = h.obs(&["--json", "config", "show"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ep = &v["endpoints"]["node_exporter"];
    assert_eq!(
        ep["metrics_url"],
        format!("https://127.0.0.2:{port}/metrics"),
        "{v}"
    );
    assert_eq!(ep["auth"], "basic (prom)", "{v}");
    let from = ep["from"].to_string();
    assert!(
        from.contains("--web.listen-address in the command line of pid")
            && from.contains("10-flags.conf")
            && from.contains("web.yml"),
        "{from}"
    );

    let o = h.obs(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(h.current("node_exporter"), Some(new()));
    let run = h.state().expect("a run record");
    let detail = health_of(&run).join("\n");
    assert!(
        detail.contains(&format!("https://127.0.0.2:{port}/metrics: ok"))
            && detail.contains(&format!("running {}", new()))
            && detail.contains("runs the release's binary: ok"),
        "{detail}"
    );
    // The drop-in is the operator's still; the service runs the new release.
    assert!(dropins.join("10-flags.conf").exists());
    assert_eq!(
        exe_of(&h, "node_exporter.service"),
        file_id(&h.root(&format!(
            "opt/obs-upgrade/node_exporter/{}/node_exporter",
            new()
        )))
    );
}

/// Mounts an overlay on each directory inside the namespace (upper layers
/// in its private /run), so that the test writes nothing to the machine.
fn overlay(h: &Host, dirs: &[&str]) {
    for (i, d) in dirs.iter().enumerate() {
        let script = format!(
            "mkdir -p /run/pkg-ov/{i}/u /run/pkg-ov/{i}/w && mount -t overlay overlay -o \
             lowerdir={d},upperdir=/run/pkg-ov/{i}/u,workdir=/run/pkg-ov/{i}/w {d} && \
             [ \"$(findmnt -n -o FSTYPE --mountpoint {d})\" = overlay ]"
        );
        let ok = Command::new("nsenter")
            .args(["-t", &h.ns.pid.to_string(), "-a", "sh", "-c", &script])
            .status()
            .unwrap()
            .success();
        assert!(ok, "overlay on {d} inside the namespace");
    }
}

/// `obs-upgrade` inside the namespace on its real root (every directory it
/// writes is an overlay there).
fn obs_on_root(h: &Host, args: &[&str]) -> Output {
    Command::new("nsenter")
        .args(["-t", &h.ns.pid.to_string(), "-a", "env", "NO_COLOR=1"])
        .arg(&h.obs)
        .args([
            "--root",
            "/",
            "--unit-dir",
            "/etc/systemd/system",
            "--service-manager",
            "systemd",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn md5_of(p: &Path) -> String {
    let o = Command::new("md5sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_debian_packaged_node_exporter_is_managed_without_touching_its_file() {
    let test = "a_debian_packaged_node_exporter_is_managed_without_touching_its_file";
    if !e2e::available(test) {
        return;
    }
    let pkg = fixtures::dir().join("bookworm/prometheus-node-exporter");
    let h = Host::boot(&["node_exporter"], &[], "");
    let port = h.ports["node_exporter"];
    // The plain install of the boot makes way for the package.
    let sd = h.ns.systemd();
    sd.systemctl("stop", "ne", &["stop", "node_exporter.service"])
        .unwrap();
    overlay(
        &h,
        &[
            "/usr/bin",
            "/usr/lib/systemd/system",
            "/usr/local/bin",
            "/etc",
            "/opt",
            "/var/lib",
            "/var/cache",
        ],
    );
    // The package as dpkg installs it: its binary, unit and defaults, and
    // dpkg's own records of its files and their md5sums.
    place(
        &h,
        &pkg.join("bin/prometheus-node-exporter"),
        "/usr/bin/prometheus-node-exporter",
    );
    let unit = "prometheus-node-exporter.service";
    std::fs::copy(
        pkg.join("pkg/lib/systemd/system").join(unit),
        h.path(&format!("/usr/lib/systemd/system/{unit}")),
    )
    .unwrap();
    std::fs::write(
        h.path("/etc/default/prometheus-node-exporter"),
        format!("ARGS=\"--web.listen-address=127.0.0.1:{port} --no-collector.systemd\"\n"),
    )
    .unwrap();
    let info = h.path("/var/lib/dpkg/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::copy(
        pkg.join("files.list"),
        info.join("prometheus-node-exporter.list"),
    )
    .unwrap();
    std::fs::copy(
        pkg.join("md5sums"),
        info.join("prometheus-node-exporter.md5sums"),
    )
    .unwrap();
    let want_md5 = std::fs::read_to_string(pkg.join("md5sums"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_suffix("  usr/bin/prometheus-node-exporter")
                .map(str::to_owned)
        })
        .expect("the binary is in md5sums");
    let packaged = h.path("/usr/bin/prometheus-node-exporter");
    assert_eq!(md5_of(&packaged), want_md5);
    // Its service user (Debian's postinst creates it).
    let users = "echo 'prometheus:x:64999:64999::/var/lib/prometheus:/usr/sbin/nologin' \
                 >> /etc/passwd && echo 'prometheus:x:64999:' >> /etc/group";
    let ok = Command::new("nsenter")
        .args(["-t", &h.ns.pid.to_string(), "-a", "sh", "-c", users])
        .status()
        .unwrap()
        .success();
    assert!(ok, "service user");
    restart(&h, unit);
    assert!(h.wait_version("node_exporter", &old()));
    let status = sd.show(unit).unwrap();
    assert_eq!(
        status.fragment_path.as_deref(),
        Some("/lib/systemd/system/prometheus-node-exporter.service")
    );
    std::fs::create_dir_all(h.path("/etc/obs-upgrade")).unwrap();
    write_node_stack(
        &h,
        &h.path("/etc/obs-upgrade/stack.yaml"),
        &format!("    unit: {unit}\n    health_deadline_secs: 20\n"),
    );
    let dropin = h.path(&format!("/etc/systemd/system/{unit}.d/zz-obs-upgrade.conf"));
    let store_bin =
        |v: &Version| h.path(&format!("/opt/obs-upgrade/node_exporter/{v}/node_exporter"));

    // 1. A release that fails its checks: the redirect is undone with the
    // rest, and the package's binary runs again.
    let exporter = std::fs::read(obs_upgrade_tests::bin("sandbox-exporter")).unwrap();
    h.publish_node_binary(
        "1.9.9+broken",
        &obs_upgrade_tests::sandbox::patched(&exporter, "1.9.9+broken"),
    );
    let o = obs_on_root(&h, &["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("rolled back"),
        "{}",
        out(&o)
    );
    assert!(!dropin.exists(), "the drop-in is gone with the rollback");
    assert!(
        std::fs::symlink_metadata(h.path("/usr/local/bin/node_exporter")).is_err(),
        "so is the link the adoption made"
    );
    assert!(h.wait_version("node_exporter", &old()));
    assert_eq!(exe_of(&h, unit), file_id(&packaged));
    assert_eq!(md5_of(&packaged), want_md5);

    // 2. The good release: the unit runs the managed link through the
    // drop-in, the package's file is as dpkg wrote it.
    let o = obs_on_root(&h, &["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(h.wait_version("node_exporter", &new()));
    let written = std::fs::read_to_string(&dropin).unwrap();
    assert!(
        written.contains("ExecStart=\nExecStart=/usr/local/bin/node_exporter $ARGS\n")
            && written.contains("prometheus-node-exporter (dpkg)"),
        "{written}"
    );
    assert_eq!(exe_of(&h, unit), file_id(&store_bin(&new())));
    assert_eq!(md5_of(&packaged), want_md5);
    assert_eq!(
        sd.show(unit).unwrap().fragment_path.as_deref(),
        Some("/lib/systemd/system/prometheus-node-exporter.service")
    );
    // Idempotent: nothing more to do, nothing restarted.
    let pid = sd.show(unit).unwrap().main_pid;
    let o = obs_on_root(&h, &["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert_eq!(sd.show(unit).unwrap().main_pid, pid);

    // 3. A manual rollback: the adopted copy of the package's release.
    let o = obs_on_root(
        &h,
        &["rollback", "--component", "node_exporter", "--previous"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(h.wait_version("node_exporter", &old()));
    assert_eq!(exe_of(&h, unit), file_id(&store_bin(&old())));
    assert_eq!(md5_of(&packaged), want_md5);

    // 4. Given back to the package: its own binary runs again.
    let o = obs_on_root(&h, &["unmanage", "node_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(!dropin.exists());
    assert!(!h.path("/usr/local/bin/node_exporter").exists());
    assert!(h.wait_version("node_exporter", &old()));
    assert_eq!(exe_of(&h, unit), file_id(&packaged));
    assert_eq!(md5_of(&packaged), want_md5);
    let o = obs_on_root(&h, &["unmanage", "node_exporter"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("nothing changed"),
        "{}",
        out(&o)
    );
}

/// Writes a stack file with `node_exporter` alone (any release age, minor
/// upgrades allowed, releases from the host's server) and `facts`, its
/// further lines.
fn write_node_stack(h: &Host, path: &Path, facts: &str) {
    std::fs::write(
        path,
        format!(
            concat!(
                "defaults:\n  min_release_age: \"0\"\n",
                "components:\n  node_exporter:\n    api_url: '{api}'\n    allow: minor\n",
                "{facts}",
            ),
            api = h.server.url(),
            facts = facts,
        ),
    )
    .unwrap();
}

/// The stack file under the e2e root: `node_exporter` on its port, a 10 s
/// deadline, and `extra`.
fn node_stack(h: &Host, extra: &str) {
    let port = h.ports["node_exporter"];
    write_node_stack(
        h,
        &h.root("etc/obs-upgrade/stack.yaml"),
        &format!("    port: {port}\n    health_deadline_secs: 10\n{extra}"),
    );
}

/// The stand-in exporter at `version`, placed in the namespace as
/// `<dir>/node_exporter` (it answers as `node_exporter` by that name).
fn stand_in(h: &Host, dir: &str, version: &str) -> String {
    let exporter = std::fs::read(obs_upgrade_tests::bin("sandbox-exporter")).unwrap();
    let bin = obs_upgrade_tests::sandbox::patched(&exporter, version);
    let path = format!("{dir}/node_exporter");
    let host = h.path(&path);
    std::fs::create_dir_all(host.parent().unwrap()).unwrap();
    std::fs::write(&host, bin).unwrap();
    std::fs::set_permissions(&host, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn last_health(h: &Host) -> String {
    health_of(&h.state().expect("a run record")).join("\n")
}

#[test]
fn a_prometheus_target_must_be_up_after_the_switch() {
    let test = "a_prometheus_target_must_be_up_after_the_switch";
    if !e2e::available(test) {
        return;
    }
    let h = Host::boot(&["node_exporter", "prometheus"], &[], "");
    let (ne, prom) = (h.ports["node_exporter"], h.ports["prometheus"]);
    std::fs::write(
        h.root("etc/prometheus/prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - \
             job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{ne}']\n"
        ),
    )
    .unwrap();
    restart(&h, "prometheus.service");
    node_stack(
        &h,
        &format!(
            "    verify:\n      prometheus: {{url: 'http://127.0.0.1:{prom}', job: node}}\n      \
             journal_errors: ['panic:', 'Error starting HTTP server']\n"
        ),
    );

    // A good release: scraped after its restart, up; its journal has none
    // of the patterns (node_exporter does log `level=ERROR` lines in a
    // namespace without udev: a pattern list picks what matters).
    let o = h.obs(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(h.wait_version("node_exporter", &new()));
    let detail = last_health(&h);
    assert!(
        detail.contains(&format!(
            "prometheus http://127.0.0.1:{prom} target job=node up: ok"
        )) && detail.contains("scraped since the restart")
            && detail.contains("has no error lines: ok"),
        "{detail}"
    );

    // A release that answers, but not where Prometheus scrapes it (it moved
    // its listen address): the probes follow its command line and pass,
    // the target is down, so it is rolled back.
    let moved = stand_in(&h, "/run/e2e/moved", "1.9.90");
    h.publish_node_binary(
        "1.9.90",
        &script(&format!(
            "[ \"$1\" = --version ] && exec {moved} --version\n\
             exec {moved} --web.listen-address=127.0.0.3:{ne}"
        )),
    );
    let o = h.obs(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("rolled back"),
        "{}",
        out(&o)
    );
    let failure = last_health(&h);
    assert!(
        failure.contains("target 127.0.0.1:") && failure.contains("is down"),
        "{failure}"
    );
    assert!(failure.contains("running 1.9.90"), "{failure}");
    assert!(h.wait_version("node_exporter", &new()));
    h.check_invariants("after the target check");
}

#[test]
fn journal_errors_and_a_release_that_exits_after_seconds_are_rolled_back() {
    let test = "journal_errors_and_a_release_that_exits_after_seconds_are_rolled_back";
    if !e2e::available(test) {
        return;
    }
    let h = Host::boot(&["node_exporter"], &[], "");
    node_stack(
        &h,
        "    verify:\n      journal_errors: ['level=(error|ERROR)']\n      settle_secs: 6\n",
    );
    // A release that logs an error as it starts, then serves well.
    let noisy = stand_in(&h, "/run/e2e/noisy", "1.9.91");
    h.publish_node_binary(
        "1.9.91",
        &script(&format!(
            "[ \"$1\" = --version ] && exec {noisy} --version\n\
             echo 'level=error msg=\"cannot open the textfile directory\"' >&2\n\
             exec {noisy} \"$@\""
        )),
    );
    let o = h.obs(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let failure = last_health(&h);
    assert!(
        failure.contains("cannot open the textfile directory")
            && failure.contains("matches `level=(error|ERROR)`"),
        "{failure}"
    );
    assert!(h.wait_version("node_exporter", &old()));

    // A release that passes every check, then exits after three seconds
    // (`timeout` ends it and exits 124; no process is left behind, even
    // where the nested systemd cannot kill a whole control group): systemd
    // restarts it, the settle period sees it, it is rolled back.
    let short = stand_in(&h, "/run/e2e/short", "1.9.92");
    h.publish_node_binary(
        "1.9.92",
        &script(&format!(
            "[ \"$1\" = --version ] && exec {short} --version\n\
             exec timeout 3 {short} \"$@\""
        )),
    );
    let o = h.obs(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let failure = last_health(&h);
    assert!(
        // Seen as a new main process, or as systemd's auto-restart state.
        failure.contains("settle 6 s: FAILED")
            && (failure.contains("restarted after") || failure.contains("(auto-restart) after")),
        "{failure}"
    );
    assert!(failure.contains("running 1.9.92"), "{failure}");
    assert!(
        h.wait_version("node_exporter", &old()),
        "not serving {} after the rollback:\n{}\nunit: {:?}\njournal:\n{}",
        old(),
        out(&o),
        h.ns.systemd().show("node_exporter.service"),
        h.ns.run(&[
            "journalctl",
            "-u",
            "node_exporter.service",
            "-n",
            "40",
            "--no-pager"
        ])
    );
    h.check_invariants("after the settle period");
}
