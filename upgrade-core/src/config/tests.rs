//! The stack file end to end: parsing, positions, merge, validation.

use std::collections::BTreeMap;

use super::*;
use crate::catalog;
use crate::policy::{Allow, Track};
use crate::version::Version;

fn yaml(text: &str) -> Result<Stack, Error> {
    Stack::from_text(text, Format::Yaml, "stack.yaml", None)
}

#[test]
fn minimal_component_gets_catalog_facts() {
    let s = yaml("components:\n  prometheus:\n    track: lts\n    allow: patch\n").unwrap();
    let p = &s.components["prometheus"];
    assert_eq!(p.spec.repo, "prometheus/prometheus");
    assert_eq!(p.policy.track, Track::Lts);
    assert_eq!(p.policy.allow, Allow::Patch);
    assert_eq!(p.phase, "prometheus");
    assert_eq!(s.components.len(), 1);
}

#[test]
fn empty_file_is_the_whole_catalog() {
    let s = yaml("").unwrap();
    assert_eq!(s.components.len(), catalog::builtin().len());
    assert_eq!(Stack::builtin().components.len(), catalog::builtin().len());
}

#[test]
fn unknown_key_gives_line_column_and_path() {
    let err = yaml("components:\n  prometheus:\n    alow: minor\n").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Syntax { line: 3, .. }), "{msg}");
    assert!(msg.starts_with("stack.yaml:3:"), "{msg}");
    assert!(msg.contains("components.prometheus"), "{msg}");
    assert!(msg.contains("alow"), "{msg}");
}

#[test]
fn yaml_syntax_error_has_position() {
    let err = yaml("components:\n  prometheus: [\n").unwrap_err();
    assert!(
        matches!(err, Error::Syntax { line, .. } if line >= 2),
        "{err}"
    );
}

#[test]
fn toml_errors_have_position_and_path() {
    let err = Stack::from_text(
        "[components.prometheus]\ntrack = \"newest\"\n",
        Format::Toml,
        "stack.toml",
        None,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("stack.toml:2:"), "{msg}");
    assert!(msg.contains("components.prometheus.track"), "{msg}");
    assert!(msg.contains("`newest`"), "{msg}");
    let err = Stack::from_text("[components\n", Format::Toml, "stack.toml", None).unwrap_err();
    assert!(matches!(err, Error::Syntax { line: 1, .. }), "{err}");
}

#[test]
fn bad_values_name_their_key() {
    for (text, key) in [
        (
            "defaults:\n  min_release_age: 3y\n",
            "defaults.min_release_age",
        ),
        (
            "components:\n  prometheus:\n    track: \">>2\"\n",
            "components.prometheus.track",
        ),
        (
            "components:\n  prometheus:\n    deny: [\"nope\"]\n",
            "components.prometheus.deny",
        ),
        (
            "components:\n  prometheus:\n    allow: huge\n",
            "components.prometheus.allow",
        ),
    ] {
        let msg = yaml(text).unwrap_err().to_string();
        assert!(msg.contains(key), "{key}: {msg}");
    }
}

#[test]
fn semantic_errors_name_the_key() {
    let cases = [
        (
            "components:\n  prometheus:\n    depends_on: [alertmanagr]\n",
            "components.prometheus.depends_on[0]",
            "alertmanagr",
        ),
        (
            "components:\n  frobnicator: {}\n",
            "components.frobnicator",
            "not in the built-in catalog",
        ),
        (
            "components:\n  prometheus:\n    phase: nowhere\n",
            "components.prometheus.phase",
            "nowhere",
        ),
        (
            "environment: prod\ncomponents:\n  prometheus: {}\n",
            "environment",
            "prod",
        ),
        (
            "environments:\n  staging:\n    components:\n      loky: {allow: major}\n\
                    components:\n  loki: {}\n",
            "environments.staging.components.loky",
            "loky",
        ),
        (
            "components:\n  node_exporter:\n    depends_on: [prometheus]\n  prometheus: {}\n",
            "components.node_exporter.depends_on[0]",
            "after",
        ),
        (
            "components:\n  loki: {}\nrules:\n  requires:\n    - {component: loki, versions: \
                    '>=3', needs: lokii, needs_versions: '>=1'}\n",
            "rules.requires[0].needs",
            "lokii",
        ),
    ];
    for (text, key, word) in cases {
        let err = yaml(text).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Invalid { .. }), "{msg}");
        assert!(msg.contains(key), "{key}: {msg}");
        assert!(msg.contains(word), "{word}: {msg}");
    }
}

#[test]
fn cycle_is_named() {
    let text = "components:\n  loki:\n    depends_on: [promtail]\n  promtail:\n    \
            depends_on: [alloy]\n  alloy:\n    depends_on: [loki]\n";
    let msg = yaml(text).unwrap_err().to_string();
    assert!(
        msg.contains("dependency cycle: alloy → loki → promtail → alloy"),
        "{msg}"
    );
}

#[test]
fn environments_override_in_order() {
    let text = "
defaults: {allow: patch, min_release_age: 3d}
environment: production
environments:
  production: {}
  staging:
    defaults: {allow: major, min_release_age: '0'}
    components:
      prometheus: {track: latest}
components:
  prometheus: {track: lts, allow: minor}
  node_exporter: {}
";
    let prod = yaml(text).unwrap();
    assert_eq!(prod.environment.as_deref(), Some("production"));
    assert_eq!(prod.components["prometheus"].policy.track, Track::Lts);
    assert_eq!(prod.components["prometheus"].policy.allow, Allow::Minor);
    assert_eq!(prod.components["node_exporter"].policy.allow, Allow::Patch);
    assert_eq!(
        prod.components["node_exporter"]
            .policy
            .min_release_age
            .0
            .as_secs(),
        3 * 86_400
    );
    let staging = Stack::from_text(text, Format::Yaml, "s.yaml", Some("staging")).unwrap();
    assert_eq!(staging.components["prometheus"].policy.track, Track::Latest);
    // The component's own `allow` beats the environment's defaults.
    assert_eq!(staging.components["prometheus"].policy.allow, Allow::Minor);
    assert_eq!(
        staging.components["node_exporter"].policy.allow,
        Allow::Major
    );
    assert_eq!(
        staging.components["node_exporter"]
            .policy
            .min_release_age
            .0
            .as_secs(),
        0
    );
}

#[test]
fn custom_component_described_completely() {
    let text = "
components:
  blackbox_exporter:
    repo: prometheus/blackbox_exporter
    asset: '{artifact}-{version}.{os}-{arch}.tar.gz'
    archive: tar.gz
    top_dir: '{artifact}-{version}.{os}-{arch}'
    binaries:
      - name: blackbox_exporter
        path: '{artifact}-{version}.{os}-{arch}/blackbox_exporter'
    checksums: sha256sums.txt
    port: 9115
";
    let s = yaml(text).unwrap();
    let b = &s.components["blackbox_exporter"];
    assert_eq!(b.spec.artifact, "blackbox_exporter");
    assert_eq!(b.spec.unit, "blackbox_exporter.service");
    assert_eq!(b.phase, "exporters");
}

#[test]
fn every_catalog_fact_can_be_overridden_under_its_own_name() {
    // Prometheus's facts written as node_exporter's overrides: every key of a
    // spec is a key of the stack file (unknown keys are refused), and the
    // resolved spec is exactly the one written.
    let prom = catalog::builtin()["prometheus"].clone();
    let mut file = BTreeMap::new();
    file.insert("node_exporter", &prom);
    let text = yaml_serde::to_string(&BTreeMap::from([("components", file)])).unwrap();
    let s = yaml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(s.components["node_exporter"].spec, prom);
    assert_eq!(s.components["node_exporter"].phase, "prometheus");
}

#[test]
fn names_that_could_leave_their_directory_are_refused() {
    let custom = |name: &str, binary: &str, unit: &str| {
        format!(
            "components:\n  '{name}':\n    repo: a/b\n    asset: x.tar.gz\n    \
             archive: tar.gz\n    binaries: [{{name: '{binary}', path: '{binary}'}}]\n    \
             unit: '{unit}'\n"
        )
    };
    let e = yaml(&custom("../evil", "evil", "evil.service"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`../evil` is not a valid name"), "{e}");
    let e = yaml(&custom("evil", "../../bin/sh", "evil.service"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("components.evil.binaries[0].name"), "{e}");
    let e = yaml(&custom("evil", "evil", "../x.service"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("components.evil.unit"), "{e}");
    assert!(yaml(&custom("evil", "evil", "evil.service")).is_ok());
    let e = Version::parse(&"1".repeat(10_000)).unwrap_err().to_string();
    assert!(
        e.len() < 400,
        "a hostile version is not echoed whole: {}",
        e.len()
    );
}
