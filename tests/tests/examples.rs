//! The example stack files load, say the same thing, and resolve per environment.

use std::path::Path;

use upgrade_core::policy::{Allow, Track};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[test]
fn yaml_and_toml_examples_load_and_agree() {
    let yaml = upgrade_cli::host::load_stack(&example("stack.yaml"), None).unwrap();
    let toml = upgrade_cli::host::load_stack(&example("stack.toml"), None).unwrap();
    assert_eq!(yaml.components, toml.components);
    assert_eq!(yaml.phases, toml.phases);
    assert_eq!(yaml.rules, toml.rules);
    assert_eq!(yaml.maintenance, toml.maintenance);
    assert_eq!(yaml.notifications, toml.notifications);
    assert_eq!(yaml.metrics, toml.metrics);
    assert_eq!(yaml.maintenance.schedule.windows.len(), 2);
    assert_eq!(yaml.notifications.webhooks.len(), 2);
    assert_eq!(yaml.environment.as_deref(), Some("production"));
    assert_eq!(yaml.components.len(), 9);
    let endpoint = yaml.components["node_exporter"].spec.endpoint.as_ref();
    assert_eq!(
        endpoint
            .and_then(|e| e.basic_auth.as_ref())
            .map(|b| b.username.as_str()),
        Some("prometheus")
    );
    assert_eq!(yaml.components["prometheus"].policy.track, Track::Lts);
    assert_eq!(yaml.components["blackbox_exporter"].spec.port, Some(9115));
}

#[test]
fn staging_environment_overrides() {
    let s = upgrade_cli::host::load_stack(&example("stack.yaml"), Some("staging")).unwrap();
    assert_eq!(s.components["prometheus"].policy.track, Track::Latest);
    assert_eq!(s.components["node_exporter"].policy.allow, Allow::Major);
    assert_eq!(s.components["mysqld_exporter"].policy.allow, Allow::Patch);
    let err = upgrade_cli::host::load_stack(&example("stack.yaml"), Some("qa")).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown environment `qa`; defined: production, staging"),
        "{err}"
    );
}

/// An example program built by `cargo build --examples` (scripts/test does).
fn example_bin(name: &str) -> std::path::PathBuf {
    let p = obs_upgrade_tests::bin("examples").join(name);
    assert!(
        p.exists(),
        "{} is not built; run `cargo build --workspace --examples`",
        p.display()
    );
    p
}

struct Sandbox {
    _dir: tempfile::TempDir,
    created: obs_upgrade_tests::sandbox::Created,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let exporter = obs_upgrade_tests::bin("sandbox-exporter");
        let created = obs_upgrade_tests::sandbox::create(dir.path(), &exporter).unwrap();
        Sandbox { _dir: dir, created }
    }

    fn example(&self, name: &str, args: &[&str]) -> (Option<i32>, String) {
        let o = std::process::Command::new(example_bin(name))
            .arg(&self.created.root)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code(), text)
    }

    fn installed(&self) -> String {
        let o = std::process::Command::new(obs_upgrade_tests::bin("obs-upgrade"))
            .arg("--root")
            .arg(&self.created.root)
            .args(["--json", "check"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        obs_upgrade_tests::sandbox::stop_all(&self.created.root);
    }
}

#[test]
fn the_embedding_examples_run_against_the_sandbox() {
    let sb = Sandbox::new();
    // A custom release source: an artifact directory, checked and staged.
    let mirror = sb.created.mirror.to_str().unwrap().to_owned();
    let (code, out) = sb.example("custom_source", &[&mirror]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("node_exporter: installed 1.8.2, target 1.9.1 (update)"),
        "{out}"
    );
    assert!(
        out.contains("staged node_exporter 1.9.1: verified by the checksum file sha256sums.txt"),
        "{out}"
    );
    // A custom probe that a service fails before anything is touched: refused.
    let (code, out) = sb.example("custom_probe", &["mysqld_exporter", "no_such_metric"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("missing metrics: [\"no_such_metric\"]"),
        "{out}"
    );
    assert!(
        sb.installed().contains("\"installed\": \"0.17.0\""),
        "{}",
        sb.installed()
    );
    // The same probe with a metric the exporter keeps: upgraded.
    let (code, out) = sb.example("custom_probe", &["node_exporter", "sandbox_up"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("node_exporter → 1.9.1: Completed"), "{out}");
    // The orchestrator finishes the other phases' work, one phase at a time.
    let (code, out) = sb.example("orchestrator", &["0"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("phase exporters: 2 upgraded, 0 failed"),
        "{out}"
    );
    assert!(out.contains("every phase done"), "{out}");
    let after = sb.installed();
    for v in ["1.9.1", "0.17.2", "1.4.1"] {
        assert!(
            after.contains(&format!("\"installed\": \"{v}\"")),
            "{after}"
        );
    }
    // Run again: nothing left to do, and it says so.
    let (code, out) = sb.example("orchestrator", &["0"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("every phase done"), "{out}");
    assert!(
        !out.contains("phase exporters:"),
        "nothing to apply again: {out}"
    );
}
