//! Version detection on Debian's packaged upstream builds.

use obs_upgrade_tests::fixtures;
use upgrade_systemd::detect::installed_version;

#[test]
fn real_binaries_report_their_versions() {
    let cases = [
        ("prometheus-node-exporter", "prometheus-node-exporter"),
        ("prometheus", "prometheus"),
        ("prometheus", "promtool"),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
        ("prometheus-alertmanager", "amtool"),
        ("prometheus-nginx-exporter", "prometheus-nginx-exporter"),
        ("prometheus-mysqld-exporter", "prometheus-mysqld-exporter"),
    ];
    let mut checked = 0;
    for suite in ["bookworm", "trixie"] {
        for (package, bin) in cases {
            // Trixie ships promtool in a package of its own.
            if suite == "trixie" && bin == "promtool" {
                continue;
            }
            let Some(path) =
                fixtures::require(suite, package, bin, "real_binaries_report_their_versions")
            else {
                return;
            };
            let want = fixtures::upstream_version(suite, package).unwrap();
            let got = installed_version(&path, &["--version".into()], "version")
                .unwrap_or_else(|e| panic!("{suite}/{bin}: {e}"));
            assert!(
                got.same_release(&want),
                "{suite}/{bin}: detected {got}, package says {want}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 13);
}

#[test]
fn a_binary_without_a_version_is_a_clear_error() {
    let e = installed_version(
        std::path::Path::new("/bin/true"),
        &["--version".into()],
        "version",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("printed no version"), "{e}");
    let e = installed_version(
        std::path::Path::new("/nonexistent/node_exporter"),
        &["--version".into()],
        "version",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cannot run /nonexistent/node_exporter --version"),
        "{e}"
    );
}
