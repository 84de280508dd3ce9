//! Notifiers against a real HTTP receiver on loopback and real commands; a
//! failing notifier never fails a run.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use obs_upgrade_tests::bin;
use obs_upgrade_tests::http_stub::Receiver;
use obs_upgrade_tests::sandbox;
use upgrade_core::config::{Email, Notifications, ReportLevel, Webhook, WebhookFormat};
use upgrade_core::journal::RunStatus;
use upgrade_core::ports::{Event, Notifier};
use upgrade_core::version::Version;
use upgrade_systemd::notify::Notifiers;

fn upgraded() -> Event {
    Event::ComponentUpgraded {
        run_id: "r1".into(),
        component: "node_exporter".into(),
        from: Version::new(1, 8, 2),
        to: Version::new(1, 9, 1),
    }
}

fn finished_clean() -> Event {
    Event::RunFinished {
        run_id: "r1".into(),
        status: RunStatus::Completed,
        upgraded: 0,
        reverted: 0,
        failed: 0,
        rolled_back: 0,
    }
}

fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[test]
fn webhook_json_and_slack_bodies() {
    let rx = Receiver::start(200);
    let n = Notifiers::new(
        Notifications {
            level: ReportLevel::Always,
            webhooks: vec![
                Webhook {
                    url: rx.url("/json"),
                    format: WebhookFormat::Json,
                },
                Webhook {
                    url: rx.url("/slack"),
                    format: WebhookFormat::Slack,
                },
            ],
            commands: vec![],
            email: None,
        },
        "host-a",
    );
    n.notify(&upgraded()).unwrap();
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2);
    let json: serde_json::Value = serde_json::from_str(&bodies[0].1).unwrap();
    assert_eq!(bodies[0].0, "/json");
    assert_eq!(json["source"], "obs-upgrade");
    assert_eq!(json["host"], "host-a");
    assert_eq!(json["event"]["event"], "component_upgraded");
    assert_eq!(json["event"]["component"], "node_exporter");
    assert_eq!(json["event"]["to"], "1.9.1");
    assert_eq!(
        json["summary"],
        "host-a: node_exporter upgraded 1.8.2 → 1.9.1"
    );
    let slack: serde_json::Value = serde_json::from_str(&bodies[1].1).unwrap();
    assert_eq!(
        slack,
        serde_json::json!({"text": "host-a: node_exporter upgraded 1.8.2 → 1.9.1"})
    );
    // A receiver that refuses: an error naming it, never a panic.
    rx.answer(500);
    let e = n.notify(&upgraded()).unwrap_err().to_string();
    assert!(e.contains("answered HTTP 500"), "{e}");
}

#[test]
fn command_hook_and_sendmail() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hook.out");
    let hook = script(
        dir.path(),
        "hook",
        &format!(
            "env | grep ^OBS_UPGRADE_ | sort > {0}; echo --- >> {0}; cat >> {0}",
            out.display()
        ),
    );
    let mail_out = dir.path().join("mail.out");
    let sendmail = script(
        dir.path(),
        "sendmail",
        &format!("echo \"args: $*\" > {0}; cat >> {0}", mail_out.display()),
    );
    let n = Notifiers::new(
        Notifications {
            level: ReportLevel::OnChange,
            webhooks: vec![],
            commands: vec![vec![hook]],
            email: Some(Email {
                to: vec!["ops@example.test".into()],
                from: "obs@example.test".into(),
                sendmail,
            }),
        },
        "host-b",
    );
    n.notify(&upgraded()).unwrap();
    let hook_text = std::fs::read_to_string(&out).unwrap();
    assert!(
        hook_text.contains("OBS_UPGRADE_EVENT=component_upgraded\n"),
        "{hook_text}"
    );
    assert!(hook_text.contains("OBS_UPGRADE_COMPONENT=node_exporter\n"));
    assert!(
        hook_text.contains("OBS_UPGRADE_FROM=1.8.2\n")
            && hook_text.contains("OBS_UPGRADE_TO=1.9.1\n")
    );
    assert!(hook_text.contains("OBS_UPGRADE_HOST=host-b\n"));
    let stdin: serde_json::Value =
        serde_json::from_str(hook_text.split("---\n").nth(1).unwrap()).unwrap();
    assert_eq!(stdin["event"], "component_upgraded");
    let mail = std::fs::read_to_string(&mail_out).unwrap();
    assert!(mail.starts_with("args: -t -i\n"), "{mail}");
    assert!(mail.contains("To: ops@example.test\nFrom: obs@example.test\nSubject: [obs-upgrade] host-b: node_exporter upgraded 1.8.2 → 1.9.1\n"), "{mail}");

    // on-change: a run that changed nothing is not reported.
    std::fs::remove_file(&out).unwrap();
    n.notify(&finished_clean()).unwrap();
    assert!(!out.exists(), "filtered out by the report level");

    // A failing hook is an error with its stderr.
    let bad = script(dir.path(), "bad", "echo 'no route to chat' >&2; exit 3");
    let n = Notifiers::new(
        Notifications {
            level: ReportLevel::Always,
            webhooks: vec![],
            commands: vec![vec![bad]],
            email: None,
        },
        "h",
    );
    let e = n.notify(&upgraded()).unwrap_err().to_string();
    assert!(e.contains("exited 3: no route to chat"), "{e}");
}

#[test]
fn report_levels() {
    use upgrade_systemd::notify::passes;
    let failed = Event::ComponentFailed {
        run_id: "r".into(),
        component: "c".into(),
        from: Version::new(1, 0, 0),
        to: Version::new(1, 1, 0),
        error: "x".into(),
    };
    let started = Event::RunStarted {
        run_id: "r".into(),
        mode: "standard".into(),
        steps: vec![],
    };
    let updates = Event::UpdatesAvailable {
        updates: vec!["c 1 → 2".into()],
    };
    assert!(passes(ReportLevel::Always, &started));
    assert!(!passes(ReportLevel::OnChange, &started));
    assert!(passes(ReportLevel::OnChange, &updates));
    assert!(passes(ReportLevel::OnChange, &upgraded()));
    assert!(!passes(ReportLevel::OnError, &upgraded()));
    assert!(passes(ReportLevel::OnError, &failed));
}

#[test]
fn a_failing_webhook_never_fails_a_run_and_is_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let created = sandbox::create(dir.path(), &bin("sandbox-exporter")).unwrap();
    let rx = Receiver::start(503);
    let stack = created.root.join("etc/obs-upgrade/stack.yaml");
    let mut text = std::fs::read_to_string(&stack).unwrap();
    text = format!(
        "{text}notifications:\n  level: always\n  webhooks:\n    - url: '{}'\n",
        rx.url("/services/T0/B0/SeCrEtPaTh?token=SeCrEtQuErY")
    );
    std::fs::write(&stack, text).unwrap();
    let o = Command::new(bin("obs-upgrade"))
        .arg("--root")
        .arg(&created.root)
        .args(["apply", "--component", "node_exporter"])
        .output()
        .unwrap();
    sandbox::stop_all(&created.root);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!rx.bodies().is_empty(), "the receiver was called");
    let history =
        std::fs::read_to_string(created.root.join("var/lib/obs-upgrade/history.jsonl")).unwrap();
    assert!(
        history.contains("\"record\":\"notification_failed\"") && history.contains("HTTP 503"),
        "{history}"
    );
    assert!(history.contains("\"outcome\":\"upgraded\""));
    // The webhook's secret path and query are shown nowhere, only its host.
    let stderr = String::from_utf8_lossy(&o.stderr);
    for shown in [&*history, &*stderr] {
        assert!(!shown.contains("SeCrEt"), "{shown}");
    }
    assert!(history.contains("webhook http://127.0.0.1:"), "{history}");
}
