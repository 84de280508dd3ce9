//! Where a service answers, read from how it is started: Debian's real
//! `node_exporter` behind TLS and basic auth through exporter-toolkit's
//! `--web.config.file`, on 127.0.0.2 and a port named only by its command
//! line, upgraded to another real release and verified through that
//! endpoint. The stack file gives only what cannot be derived: the password
//! and the CA.

use obs_upgrade_tests::tls::PrivateCa;
use obs_upgrade_tests::world::{Sandbox, free_port};
use upgrade_core::engine::{self, Options};
use upgrade_core::journal::{ComponentStatus, RunStatus};
use upgrade_core::ports::{HealthProbe, ServiceControl};
use upgrade_core::version::Version;
use upgrade_systemd::health::CatalogHealth;

/// bcrypt of `probe-secret` (cost 10), as exporter-toolkit expects.
const HASH: &str = "$2b$10$cu1VlJzzi9z0zB95ucYtruYYS0gdWRkB4.Sq7HyUR/7MgwiC.MBt6";

#[test]
fn tls_and_basic_auth_from_the_web_config_on_an_address_from_the_command_line() {
    let sb = Sandbox::new();
    let Some((old, _)) = sb.serve_debian_node_exporters(
        "tls_and_basic_auth_from_the_web_config_on_an_address_from_the_command_line",
    ) else {
        return;
    };
    let etc = sb.root.path().join("etc/node_exporter");
    std::fs::create_dir_all(&etc).unwrap();
    let ca = PrivateCa::new();
    std::fs::write(etc.join("tls.crt"), &ca.cert_pem).unwrap();
    std::fs::write(etc.join("tls.key"), &ca.key_pem).unwrap();
    let ca_file = ca.write_ca(&etc.join("ca.pem"));
    let web = etc.join("web.yml");
    std::fs::write(
        &web,
        format!(
            concat!(
                "tls_server_config:\n  cert_file: {crt}\n  key_file: {key}\n",
                "basic_auth_users:\n  prom: {hash}\n",
            ),
            crt = etc.join("tls.crt").display(),
            key = etc.join("tls.key").display(),
            hash = HASH,
        ),
    )
    .unwrap();
    let pass = etc.join("probe.pass");
    std::fs::write(&pass, "probe-secret\n").unwrap();
    sb.install_plain("node_exporter", &old);
    let port = free_port();
    sb.run_service(
        "node_exporter.service",
        "node_exporter",
        &[
            format!("--web.listen-address=127.0.0.2:{port}"),
            format!("--web.config.file={}", web.display()),
            "--no-collector.systemd".into(),
        ],
    );
    let health = CatalogHealth::new(sb.supervisor.clone(), "127.0.0.1")
        .with_deadline(std::time::Duration::from_secs(15));
    let v150 = Version::parse("1.5.0").unwrap();

    // No credentials: the requirement is named with the key to set, before
    // anything changes.
    let bare = sb.stack("components:\n  node_exporter: {api_url: '{api}', allow: minor}\n");
    let e = health
        .check(&bare.components["node_exporter"], &v150)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("requires basic auth") && e.contains("endpoint.basic_auth"),
        "{e}"
    );
    let ep = health
        .endpoint(
            &bare.components["node_exporter"],
            &ServiceControl::status(sb.supervisor.as_ref(), "node_exporter.service").unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(ep.base(), format!("https://127.0.0.2:{port}"));
    assert!(
        ep.provenance.iter().any(
            |p| p.contains("--web.listen-address in the command line of pid")
                && p.contains("node_exporter.service")
        ),
        "{ep:?}"
    );

    // A wrong password is refused by the exporter itself.
    let wrong = etc.join("wrong.pass");
    std::fs::write(&wrong, "nope\n").unwrap();
    let with = |password: &std::path::Path| {
        sb.stack(&format!(
            concat!(
                "components:\n  node_exporter:\n    api_url: '{{api}}'\n    allow: minor\n",
                "    endpoint:\n      ca_file: {ca}\n",
                "      basic_auth: {{username: prom, password_file: {pass}}}\n",
            ),
            ca = ca_file.display(),
            pass = password.display(),
        ))
    };
    let quick = CatalogHealth::new(sb.supervisor.clone(), "127.0.0.1")
        .with_deadline(std::time::Duration::from_secs(1));
    let r = quick
        .check(&with(&wrong).components["node_exporter"], &v150)
        .unwrap();
    assert!(!r.healthy, "{r:?}");
    assert!(r.detail.iter().any(|d| d.contains("HTTP 401")), "{r:?}");

    // The right one: healthy at 1.5.0 over TLS, then upgraded and verified there.
    let stack = with(&pass);
    let r = health
        .check(&stack.components["node_exporter"], &v150)
        .unwrap();
    assert!(r.healthy, "{r:?}");
    let releases = sb.releases(&stack);
    let plan = sb.plan(&stack, &releases);
    let report = sb
        .with_ports(|p| {
            engine::apply(
                &stack,
                &plan,
                &releases,
                p,
                &Options::new("run-endpoint-1"),
                &sb.lock(),
                engine::Approver::Ask(&mut |_| true),
            )
        })
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed, "{report:?}");
    assert_eq!(report.steps[0].status, ComponentStatus::Completed);
    let r = health
        .check(
            &stack.components["node_exporter"],
            &Version::parse("1.9.0").unwrap(),
        )
        .unwrap();
    assert!(r.healthy, "{r:?}");
    assert!(
        r.detail
            .iter()
            .any(|d| d.contains(&format!("https://127.0.0.2:{port}/metrics: ok"))),
        "{r:?}"
    );
    assert!(
        r.detail.iter().any(|d| d.contains("running 1.9.0")),
        "{r:?}"
    );
    let _ = sb.supervisor.stop_service("node_exporter.service");
}
