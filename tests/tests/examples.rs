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
    assert_eq!(yaml.components.len(), 7);
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
