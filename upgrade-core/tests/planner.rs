//! Planner behaviour: table cases from the issue and properties.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use upgrade_core::config::{Format, Stack};
use upgrade_core::planner::{BlockReason, Plan, PlanInput, Release, Risk, SkipReason, plan};
use upgrade_core::policy::Track;
use upgrade_core::rules::req_matches;
use upgrade_core::version::{ChangeKind, Version};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn now() -> Timestamp {
    "2026-11-21T12:00:00Z".parse().unwrap()
}

fn days_ago(d: i64) -> Timestamp {
    now() - SignedDuration::from_hours(24 * d)
}

fn stack(yaml: &str) -> Stack {
    Stack::from_text(yaml, Format::Yaml, "stack.yaml", None).unwrap()
}

fn releases(list: &[(&str, i64)]) -> Vec<Release> {
    list.iter()
        .map(|(s, age)| Release::new(v(s), Some(days_ago(*age))))
        .collect()
}

fn run(stack: &Stack, installed: &[(&str, &str)], available: &[(&str, Vec<Release>)]) -> Plan {
    let installed: BTreeMap<String, Version> = installed
        .iter()
        .map(|(n, s)| ((*n).to_owned(), v(s)))
        .collect();
    let available: BTreeMap<String, Vec<Release>> = available
        .iter()
        .map(|(n, r)| ((*n).to_owned(), r.clone()))
        .collect();
    plan(PlanInput {
        stack,
        installed: &installed,
        available: &available,
        now: now(),
        holds: &upgrade_core::holds::Holds::default(),
        advisories: &std::collections::BTreeMap::new(),
    })
}

fn prometheus_releases() -> Vec<Release> {
    releases(&[
        ("2.42.0", 900),
        ("2.53.3", 300),
        ("2.54.1", 280),
        ("2.55.0", 270),
        ("2.55.1", 260),
        ("3.0.0-rc.1", 255),
        ("3.0.0", 250),
        ("3.5.0", 120),
        ("3.7.3", 30),
    ])
}

#[test]
fn prometheus_2_to_3_goes_through_2_55_and_is_high_risk() {
    let s = stack("components:\n  prometheus: {allow: major}\n  alertmanager: {}\n");
    let p = run(
        &s,
        &[("prometheus", "2.42.0"), ("alertmanager", "0.28.1")],
        &[
            ("prometheus", prometheus_releases()),
            ("alertmanager", releases(&[("0.28.1", 100)])),
        ],
    );
    let steps: Vec<_> = p.steps().filter(|s| s.component == "prometheus").collect();
    assert_eq!(steps.len(), 2, "{steps:#?}");
    assert_eq!(
        (steps[0].from.to_string(), steps[0].to.to_string()),
        ("2.42.0".into(), "2.55.1".into())
    );
    assert!(steps[0].stepping_stone);
    assert_eq!(
        (steps[1].from.to_string(), steps[1].to.to_string()),
        ("2.55.1".into(), "3.7.3".into())
    );
    assert!(!steps[1].stepping_stone);
    assert_eq!(steps[1].change, ChangeKind::Major);
    for s in &steps {
        assert_eq!(s.risk, Risk::High, "{s:#?}");
    }
    assert!(
        steps[1]
            .risk_reasons
            .iter()
            .any(|r| r.contains("breaking change")),
        "{:?}",
        steps[1].risk_reasons
    );
}

#[test]
fn loki_crossing_3_0_is_a_breaking_change() {
    let s = stack("components:\n  loki: {allow: major}\n");
    let p = run(
        &s,
        &[("loki", "2.9.8")],
        &[("loki", releases(&[("2.9.10", 200), ("3.0.0", 100)]))],
    );
    let step = p
        .steps()
        .find(|s| s.component == "loki")
        .expect("a loki step");
    assert_eq!(step.to.to_string(), "3.0.0");
    assert_eq!(step.risk, Risk::High, "{step:#?}");
    assert!(
        step.risk_reasons
            .iter()
            .any(|r| r.contains("breaking change") && r.contains("structured metadata")),
        "{:?}",
        step.risk_reasons
    );
    // Within 2.9 nothing is said about 3.0.
    let p = run(
        &s,
        &[("loki", "2.9.8")],
        &[("loki", releases(&[("2.9.10", 200)]))],
    );
    let step = p
        .steps()
        .find(|s| s.component == "loki")
        .expect("a loki step");
    assert!(
        !step.risk_reasons.iter().any(|r| r.contains("breaking")),
        "{step:#?}"
    );
}

#[test]
fn stepping_stone_missing_blocks() {
    let s = stack("components:\n  prometheus: {allow: major}\n");
    let p = run(
        &s,
        &[("prometheus", "2.42.0")],
        &[("prometheus", releases(&[("2.53.3", 300), ("3.5.0", 100)]))],
    );
    assert!(p.is_empty());
    assert!(
        matches!(
            &p.blocked[0].reason,
            BlockReason::SteppingStoneMissing { via, .. } if via == "~2.55"
        ),
        "{:?}",
        p.blocked
    );
}

#[test]
fn prometheus_3_needs_a_recent_alertmanager() {
    let s = stack("components:\n  prometheus: {allow: major}\n  alertmanager: {allow: patch}\n");
    let p = run(
        &s,
        &[("prometheus", "2.55.1"), ("alertmanager", "0.15.3")],
        &[
            ("prometheus", prometheus_releases()),
            (
                "alertmanager",
                releases(&[("0.15.3", 2000), ("0.28.1", 100)]),
            ),
        ],
    );
    // Alertmanager's policy allows only patches; 0.28 is planned but needs approval, so the
    // resulting set holds 0.28.1 and Prometheus 3 may go ahead.
    assert!(
        p.steps()
            .any(|s| s.component == "prometheus" && s.to == v("3.7.3"))
    );
    let am = p.steps().find(|s| s.component == "alertmanager").unwrap();
    assert!(am.needs_approval);

    // With Alertmanager pinned where it is, Prometheus 3 is blocked and says why.
    let s = stack("components:\n  prometheus: {allow: major}\n  alertmanager: {track: 0.15.3}\n");
    let p = run(
        &s,
        &[("prometheus", "2.55.1"), ("alertmanager", "0.15.3")],
        &[
            ("prometheus", prometheus_releases()),
            (
                "alertmanager",
                releases(&[("0.15.3", 2000), ("0.28.1", 100)]),
            ),
        ],
    );
    assert!(p.steps().all(|s| s.component != "prometheus"), "{p:#?}");
    let b = p
        .blocked
        .iter()
        .find(|b| b.component == "prometheus")
        .unwrap();
    match &b.reason {
        BlockReason::Incompatible { wanted, rule } => {
            assert_eq!(wanted, &v("3.7.3"));
            assert!(rule.contains("alertmanager >=0.16.0"), "{rule}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nginx_exporter_major_bump_needs_approval_under_allow_minor() {
    let s = stack("components:\n  nginx_exporter: {allow: minor}\n");
    let p = run(
        &s,
        &[("nginx_exporter", "0.11.0")],
        &[(
            "nginx_exporter",
            releases(&[("0.11.0", 900), ("1.4.1", 200)]),
        )],
    );
    let step = p.steps().next().unwrap();
    assert_eq!(step.to, v("1.4.1"));
    assert_eq!(step.change, ChangeKind::Major);
    assert!(step.needs_approval);
    assert_eq!(step.risk, Risk::High);
}

#[test]
fn zero_x_minor_bump_is_major() {
    let s = stack("components:\n  alertmanager: {allow: minor}\n");
    let p = run(
        &s,
        &[("alertmanager", "0.25.0")],
        &[("alertmanager", releases(&[("0.28.1", 100)]))],
    );
    let step = p.steps().next().unwrap();
    assert_eq!(step.change, ChangeKind::Major);
    assert!(step.needs_approval);
}

#[test]
fn denied_version_is_skipped_with_its_reason() {
    let s = stack("components:\n  node_exporter: {deny: ['1.9.1']}\n");
    let p = run(
        &s,
        &[("node_exporter", "1.5.0")],
        &[("node_exporter", releases(&[("1.9.0", 100), ("1.9.1", 50)]))],
    );
    let step = p.steps().next().unwrap();
    assert_eq!(step.to, v("1.9.0"));
    assert!(
        step.notes.iter().any(|n| n.contains("1.9.1 is denied")),
        "{:?}",
        step.notes
    );

    let s = stack("components:\n  node_exporter: {deny: ['>=1.9']}\n");
    let p = run(
        &s,
        &[("node_exporter", "1.5.0")],
        &[("node_exporter", releases(&[("1.9.0", 100), ("1.9.1", 50)]))],
    );
    assert!(p.is_empty());
    assert!(
        matches!(&p.blocked[0].reason, BlockReason::Denied { version } if *version == v("1.9.1")),
        "{:?}",
        p.blocked
    );
}

#[test]
fn young_release_is_held_back() {
    let s = stack("components:\n  node_exporter: {min_release_age: 3d}\n");
    let p = run(
        &s,
        &[("node_exporter", "1.5.0")],
        &[("node_exporter", releases(&[("1.9.0", 100), ("1.9.1", 1)]))],
    );
    let step = p.steps().next().unwrap();
    assert_eq!(step.to, v("1.9.0"));
    assert!(
        step.notes
            .iter()
            .any(|n| n.contains("1.9.1 is younger than min_release_age 3d")),
        "{:?}",
        step.notes
    );

    let p = run(
        &s,
        &[("node_exporter", "1.9.0")],
        &[("node_exporter", releases(&[("1.9.0", 100), ("1.9.1", 1)]))],
    );
    match &p.blocked[0].reason {
        BlockReason::TooNew {
            version,
            eligible_at,
        } => {
            assert_eq!(version, &v("1.9.1"));
            assert_eq!(*eligible_at, Some(now() + SignedDuration::from_hours(48)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn promtail_carries_its_end_of_life_warning() {
    let s = stack("components:\n  promtail: {}\n  loki: {}\n");
    let p = run(
        &s,
        &[("promtail", "3.6.11"), ("loki", "3.5.0")],
        &[
            ("promtail", releases(&[("3.6.11", 300)])),
            ("loki", releases(&[("3.5.0", 100)])),
        ],
    );
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].component, "promtail");
    assert!(
        p.warnings[0].message.contains("end of life on 2026-03-02"),
        "{}",
        p.warnings[0].message
    );
    assert!(p.warnings[0].message.contains("migrate to alloy"));
    // An update of an end-of-life component is at least medium risk.
    let p = run(
        &s,
        &[("promtail", "3.6.10")],
        &[("promtail", releases(&[("3.6.11", 300)]))],
    );
    let step = p.steps().next().unwrap();
    assert_eq!(step.risk, Risk::Medium);
}

#[test]
fn cycle_is_a_config_error_naming_it() {
    let err = Stack::from_text(
        concat!(
            "components:\n  prometheus: {depends_on: [alertmanager]}\n",
            "  alertmanager: {depends_on: [prometheus], phase: prometheus}\n",
        ),
        Format::Yaml,
        "stack.yaml",
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("dependency cycle: alertmanager → prometheus → alertmanager"),
        "{err}"
    );
}

#[test]
fn skips_say_why() {
    let s = stack(concat!(
        "components:\n  node_exporter: {}\n  mysqld_exporter: {allow: none}\n",
        "  alertmanager: {track: 0.28.1}\n  loki: {}\n",
    ));
    let p = run(
        &s,
        &[
            ("node_exporter", "1.9.1"),
            ("mysqld_exporter", "0.14.0"),
            ("alertmanager", "0.28.1"),
        ],
        &[
            ("node_exporter", releases(&[("1.9.1", 100)])),
            ("mysqld_exporter", releases(&[("0.17.2", 100)])),
            ("alertmanager", releases(&[("0.28.1", 100), ("0.29.0", 10)])),
        ],
    );
    assert!(p.is_empty());
    let reasons: BTreeMap<_, _> = p
        .skipped
        .iter()
        .map(|s| (s.component.as_str(), &s.reason))
        .collect();
    assert_eq!(
        reasons["node_exporter"],
        &SkipReason::UpToDate {
            installed: v("1.9.1")
        }
    );
    assert_eq!(
        reasons["mysqld_exporter"],
        &SkipReason::PolicyNone {
            available: v("0.17.2")
        }
    );
    assert_eq!(
        reasons["alertmanager"],
        &SkipReason::Pinned {
            version: v("0.28.1")
        }
    );
    assert_eq!(reasons["loki"], &SkipReason::NotInstalled);
}

#[test]
fn lts_stays_on_lts_lines() {
    let s = stack("components:\n  prometheus: {track: lts, allow: patch}\n");
    let p = run(
        &s,
        &[("prometheus", "2.53.1")],
        &[("prometheus", prometheus_releases())],
    );
    // 3.5.0 is the highest LTS release, a major change: it is planned and needs approval.
    let last = p.steps().last().unwrap();
    assert_eq!(last.to, v("3.5.0"));
    assert!(last.needs_approval);
    let s = stack("components:\n  prometheus: {track: '~2.53', allow: patch}\n");
    let p = run(
        &s,
        &[("prometheus", "2.53.1")],
        &[("prometheus", prometheus_releases())],
    );
    let only: Vec<_> = p.steps().collect();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].to, v("2.53.3"));
    assert!(!only[0].needs_approval);
    assert_eq!(only[0].risk, Risk::Low);
}

#[test]
fn pin_below_installed_is_a_downgrade_that_needs_approval() {
    let s = stack("components:\n  node_exporter: {track: 1.5.0, allow: major}\n");
    let p = run(
        &s,
        &[("node_exporter", "1.9.0")],
        &[("node_exporter", releases(&[("1.5.0", 900), ("1.9.0", 100)]))],
    );
    let step = p.steps().next().unwrap();
    assert!(step.downgrade);
    assert!(step.needs_approval);
    assert_eq!(step.risk, Risk::High);
}

#[test]
fn prereleases_only_when_asked() {
    let r = releases(&[("1.9.1", 100), ("2.0.0-rc.1", 5)]);
    let p = run(
        &stack("components:\n  node_exporter: {allow: major}\n"),
        &[("node_exporter", "1.9.1")],
        &[("node_exporter", r.clone())],
    );
    assert!(p.is_empty());
    let p = run(
        &stack("components:\n  node_exporter: {allow: major, prereleases: true}\n"),
        &[("node_exporter", "1.9.1")],
        &[("node_exporter", r)],
    );
    let step = p.steps().next().unwrap();
    assert_eq!(step.to, v("2.0.0-rc.1"));
}

#[test]
fn phases_and_dependencies_order_the_steps() {
    let s = stack(concat!(
        "components:\n  prometheus: {allow: major}\n  alertmanager: {allow: major}\n",
        "  node_exporter: {}\n  mysqld_exporter: {depends_on: [node_exporter]}\n",
    ));
    let p = run(
        &s,
        &[
            ("prometheus", "2.55.1"),
            ("alertmanager", "0.25.0"),
            ("node_exporter", "1.5.0"),
            ("mysqld_exporter", "0.14.0"),
        ],
        &[
            ("prometheus", prometheus_releases()),
            ("alertmanager", releases(&[("0.28.1", 100)])),
            ("node_exporter", releases(&[("1.9.1", 100)])),
            ("mysqld_exporter", releases(&[("0.17.2", 100)])),
        ],
    );
    let order: Vec<(&str, &str)> = p
        .phases
        .iter()
        .flat_map(|ph| {
            ph.steps
                .iter()
                .map(move |s| (ph.name.as_str(), s.component.as_str()))
        })
        .collect();
    assert_eq!(
        order,
        [
            ("exporters", "node_exporter"),
            ("exporters", "mysqld_exporter"),
            ("alerting", "alertmanager"),
            ("prometheus", "prometheus")
        ]
    );
    // Same input, same output.
    let again = run(
        &s,
        &[
            ("prometheus", "2.55.1"),
            ("alertmanager", "0.25.0"),
            ("node_exporter", "1.5.0"),
            ("mysqld_exporter", "0.14.0"),
        ],
        &[
            ("prometheus", prometheus_releases()),
            ("alertmanager", releases(&[("0.28.1", 100)])),
            ("node_exporter", releases(&[("1.9.1", 100)])),
            ("mysqld_exporter", releases(&[("0.17.2", 100)])),
        ],
    );
    assert_eq!(p, again);
}

// ---- properties ----

/// One of the components the property's stack knows.
fn arb_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["prometheus", "alertmanager", "node_exporter"])
}

fn arb_version() -> impl Strategy<Value = Version> {
    (
        0u64..4,
        0u64..6,
        0u64..6,
        prop::option::of(0u64..3),
        prop::option::of(prop::sample::select(vec!["ds", "b1"])),
    )
        .prop_map(|(a, b, c, pre, build)| {
            let mut s = format!("{a}.{b}.{c}");
            if let Some(p) = pre {
                s = format!("{s}-rc.{p}");
            }
            if let Some(b) = build {
                s.push('+');
                s.push_str(b);
            }
            v(&s)
        })
}

proptest! {
    #[test]
    fn version_order_is_total(a in arb_version(), b in arb_version(), c in arb_version()) {
        use std::cmp::Ordering::*;
        // Antisymmetric and consistent with equality.
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == Equal, a == b);
        // Transitive.
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
        // Precedence refines into the total order.
        if a.cmp_precedence(&b) == Less {
            prop_assert!(a < b);
        }
    }

    #[test]
    fn planner_invariants(
        installed in prop::collection::btree_map(arb_name(), arb_version(), 1..4),
        avail in prop::collection::vec((arb_name(), arb_version(), 0i64..30), 0..25),
        deny in prop::collection::vec(arb_version(), 0..3),
        pin in prop::option::of(arb_version()),
        allow in prop::sample::select(vec!["none", "patch", "minor", "major"]),
        prereleases in any::<bool>(),
    ) {
        let deny_list: Vec<String> =
            deny.iter().map(|d| format!("'{}'", d.without_build())).collect();
        let track = pin
            .as_ref()
            .map(|p| format!(", track: '{}'", p.without_build()))
            .unwrap_or_default();
        let yaml = format!(
            concat!(
                "defaults: {{allow: {allow}, min_release_age: 3d, prereleases: {prereleases}, ",
                "deny: [{deny}]}}\ncomponents:\n  prometheus: {{}}\n  alertmanager: {{}}\n",
                "  node_exporter: {{phase: exporters{track}}}\n"
            ),
            allow = allow,
            prereleases = prereleases,
            deny = deny_list.join(", "),
            track = track
        );
        let s = Stack::from_text(&yaml, Format::Yaml, "p.yaml", None).unwrap();
        let installed: BTreeMap<String, Version> =
            installed.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut available: BTreeMap<String, Vec<Release>> = BTreeMap::new();
        for (n, ver, age) in avail {
            available.entry(n.to_owned()).or_default().push(Release::new(ver, Some(days_ago(age))));
        }
        let p = plan(PlanInput {
            stack: &s,
            installed: &installed,
            available: &available,
            now: now(),
            holds: &upgrade_core::holds::Holds::default(),
            advisories: &BTreeMap::new(),
        });

        for step in p.steps() {
            // Never a denied version.
            let policy = &s.components[&step.component].policy;
            prop_assert!(
                !policy.deny.iter().any(|d| d.matches(&step.to)),
                "denied {} planned",
                step.to
            );
            // Never a downgrade unless a pin below the installed version asks for it.
            if step.to.cmp_precedence(&step.from).is_lt() {
                prop_assert!(
                    matches!(&policy.track, Track::Pinned(p) if p.same_release(&step.to)),
                    "downgrade to {}",
                    step.to
                );
                prop_assert!(step.needs_approval);
            }
            // Only known releases.
            prop_assert!(available[&step.component].iter().any(|r| r.version == step.to));
        }

        // Never a resulting set that breaks a `requires` rule the installed set kept.
        let holds = |set: &BTreeMap<String, Version>| s.rules.requires.iter().all(|r| {
            match (set.get(&r.component), set.get(&r.needs)) {
                (Some(x), Some(y)) => {
                    !req_matches(&r.versions, x) || req_matches(&r.needs_versions, y)
                }
                _ => true,
            }
        });
        if holds(&installed) {
            prop_assert!(holds(&p.resulting_versions(&installed)), "{:#?}", p);
        }
    }
}
