//! Snapshots of every command's human and `--json` output on a sandbox root
//! (paths, ports, pids, run ids, times and digests filtered), and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use obs_upgrade_tests::sandbox;
use obs_upgrade_tests::{bin, obs_upgrade};

struct Sb {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Sb {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let created = sandbox::create(dir.path(), &bin("sandbox-exporter")).unwrap();
        Sb {
            root: created.root,
            dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        obs_upgrade(&self.root, args)
    }

    fn publish(&self, component: &str, version: &str) {
        let exporter = std::fs::read(bin("sandbox-exporter")).unwrap();
        sandbox::publish(
            &self.dir.path().join("mirror"),
            &exporter,
            component,
            version,
        )
        .unwrap();
    }
}

impl Drop for Sb {
    fn drop(&mut self) {
        sandbox::stop_all(&self.root);
    }
}

fn settings(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("snapshots");
    s.set_prepend_module_to_snapshot(false);
    // Before the path filter: its replacement holds a `]`.
    s.add_filter(r#""command": \[[^\]]*\]"#, r#""command": [COMMAND]"#);
    s.add_filter(&regex_escape(&dir.display().to_string()), "[SANDBOX]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"\bport: \d+", "port: [PORT]");
    s.add_filter(r#""port": \d+"#, r#""port": [PORT]"#);
    s.add_filter(r"\b\d{8}T\d{6}Z-[0-9a-f]+\b", "[RUN_ID]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        "[TIME]",
    );
    s.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    s.add_filter(
        r"(_timestamp_seconds(\{[^}]*\})?|_duration_seconds) \d+\.\d+",
        "$1 [N]",
    );
    s.add_filter(r"pid \d+", "pid [PID]");
    s.add_filter(r"(running\s+)\d+", "${1}[PID]");
    s.add_filter(r#""pid": \d+"#, r#""pid": [PID]"#);
    s.add_filter(r"\d+\.\d s\b", "[SECS] s");
    s.add_filter(
        r#""(mean_duration_secs|success_rate)": [0-9.e-]+"#,
        r#""$1": [N]"#,
    );
    s.add_filter(r#""(host|user)": "[^"]*""#, r#""$1": "[$1]""#);
    s.add_filter(r#""(attempts|elapsed_ms)": \d+"#, r#""$1": [N]"#);
    s.add_filter(r"\(\d+ attempts\)", "([N] attempts)");
    s
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "exit: {}\n{}",
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout)
    )
}

/// Runs and snapshots a command, human and JSON.
fn both(sb: &Sb, name: &str, args: &[&str]) {
    let human = sb.run(args);
    insta::assert_snapshot!(name.to_owned(), text(&human));
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(args);
    let json = sb.run(&json_args);
    let out = String::from_utf8_lossy(&json.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{name} --json is not JSON ({e}): {out}"));
    assert!(
        v["schema"]
            .as_str()
            .is_some_and(|s| s.starts_with("obs-upgrade/")),
        "{name}: {v}"
    );
    insta::assert_snapshot!(format!("{name}.json"), text(&json));
}

#[test]
fn every_command_on_a_sandbox() {
    let sb = Sb::new();
    let _g = settings(sb.dir.path()).bind_to_scope();

    both(&sb, "check", &["check"]);
    let o = sb.run(&["check", "--exit-code"]);
    assert_eq!(o.status.code(), Some(100), "updates available");
    both(&sb, "plan", &["plan"]);
    both(
        &sb,
        "plan-component",
        &["plan", "--component", "nginx_exporter"],
    );
    both(&sb, "apply-dry-run", &["apply", "--dry-run"]);
    both(&sb, "status-before", &["status"]);
    both(&sb, "versions-before", &["versions"]);
    both(&sb, "stage", &["stage", "--component", "mysqld_exporter"]);
    both(&sb, "apply", &["apply"]);
    // Idempotent: the second run does nothing (its JSON is snapshotted too).
    both(&sb, "apply-again", &["apply"]);
    assert_eq!(sb.run(&["check", "--exit-code"]).status.code(), Some(0));
    both(&sb, "status", &["status"]);
    both(&sb, "versions", &["versions"]);

    sb.publish("node_exporter", "1.10.0+broken");
    let o = sb.run(&["apply", "--component", "node_exporter"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "failed and rolled back: {}",
        text(&o)
    );
    insta::assert_snapshot!("apply-rolled-back", text(&o));
    both(&sb, "history", &["history"]);
    both(
        &sb,
        "history-component",
        &["history", "--component", "nginx_exporter"],
    );
    both(&sb, "history-stats", &["history", "--stats"]);
    both(&sb, "rollback-list", &["rollback", "--list"]);
    let o = sb.run(&["rollback", "--component", "node_exporter", "--previous"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    insta::assert_snapshot!("rollback-previous", text(&o));
    let o = sb.run(&[
        "--json",
        "rollback",
        "--component",
        "mysqld_exporter",
        "--to",
        "0.17.0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    insta::assert_snapshot!("rollback-to.json", text(&o));
    both(&sb, "prune-dry-run", &["prune", "--dry-run", "--keep", "1"]);
    both(&sb, "resume-nothing", &["versions"]);
    let o = sb.run(&["resume"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("there is no interrupted run to resume"));
    both(&sb, "config-check", &["config", "check"]);
    both(&sb, "config-show", &["config", "show"]);
    let o = sb.run(&["supervisor", "status"]);
    insta::assert_snapshot!("supervisor-status", text(&o));
    both(&sb, "timer-status", &["timer", "status"]);
    // The manual rollbacks above hold what they moved: nothing is pending.
    let o = sb.run(&["metrics"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("metrics", text(&o));
}

#[test]
fn failed_releases_are_remembered_and_manual_rollbacks_hold() {
    let sb = Sb::new();
    sb.publish("node_exporter", "1.10.0+broken");
    // node_exporter's line of the supervisor's table (its pid).
    let pid = || {
        let out = text(&sb.run(&["supervisor", "status"]));
        let line = out.lines().find(|l| l.starts_with("node_exporter"));
        line.unwrap_or_default().to_owned()
    };
    // A release that fails verification is switched to once, rolled back,
    // and never planned again: the second run does not touch the service.
    let o = sb.run(&["apply", "--yes", "--component", "node_exporter"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("rolled back"), "{}", text(&o));
    let before = pid();
    let o = sb.run(&["check"]);
    let out = text(&o);
    assert!(
        out.contains("1.10.0+broken failed verification here"),
        "{out}"
    );
    assert!(
        out.contains("→ 1.9.1"),
        "a good older release is still planned: {out}"
    );
    let o = sb.run(&["apply", "--yes", "--component", "node_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("1.8.2 → 1.9.1"), "{}", text(&o));
    assert_ne!(pid(), before, "1.9.1 was applied");
    let o = sb.run(&["--json", "quarantine", "list"]);
    assert!(text(&o).contains("\"1.10.0+broken\""), "{}", text(&o));
    // A manual rollback holds: an unattended run does not undo it.
    let o = sb.run(&["rollback", "--component", "node_exporter", "--previous"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let held = pid();
    let o = sb.run(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(pid(), held, "the held component was not restarted");
    let o = sb.run(&["plan"]);
    assert!(
        text(&o).contains("held at 1.8.2: manual rollback"),
        "{}",
        text(&o)
    );
    assert!(text(&sb.run(&["status"])).contains("held: node_exporter at 1.8.2"));
    // An interactive apply says what it leaves alone, and leaves it.
    let o = sb.run(&["apply", "--yes", "--component", "node_exporter"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not moved, held: node_exporter: held at 1.8.2"),
        "{err}"
    );
    assert_eq!(pid(), held, "still not restarted");
    // Released, it is planned again — to 1.9.1, never the failed release.
    let o = sb.run(&["hold", "release", "node_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = sb.run(&["plan", "--component", "node_exporter"]);
    assert!(text(&o).contains("1.8.2 → 1.9.1"), "{}", text(&o));
    // Cleared, the failed release may be planned again.
    let o = sb.run(&["quarantine", "clear", "node_exporter"]);
    assert!(
        text(&o).contains("1.10.0+broken may be planned again"),
        "{}",
        text(&o)
    );
    let o = sb.run(&["plan", "--component", "node_exporter"]);
    assert!(text(&o).contains("1.10.0+broken"), "{}", text(&o));
    // A hold by hand, on an unknown component: a usage error.
    assert_eq!(sb.run(&["hold", "add", "nope"]).status.code(), Some(2));
    let o = sb.run(&["hold", "add", "nginx_exporter", "--reason", "waiting"]);
    assert!(
        text(&o).contains("nginx_exporter is held at 1.3.0: waiting"),
        "{}",
        text(&o)
    );
}

#[test]
fn listing_failures_are_never_up_to_date() {
    let sb = Sb::new();
    // The mirror of one component is gone: its releases cannot be listed.
    std::fs::remove_dir_all(sb.dir.path().join("mirror/nginx_exporter")).unwrap();
    for cmd in [
        &["check"][..],
        &["check", "--exit-code"],
        &["plan"],
        &["stage"],
    ] {
        let o = sb.run(cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", text(&o));
    }
    let o = sb.run(&["apply", "--yes", "--component", "nginx_exporter"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!text(&o).contains("Nothing to do"), "{}", text(&o));
}

#[test]
fn config_errors_usage_and_the_lock() {
    let sb = Sb::new();
    let _g = settings(sb.dir.path()).bind_to_scope();
    // A bad stack file: exit 2, file, line and key.
    let bad = sb.dir.path().join("bad.yaml");
    std::fs::write(&bad, "components:\n  node_exporter:\n    alow: minor\n").unwrap();
    let o = sb.run(&["--config", bad.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!("config-error", String::from_utf8_lossy(&o.stderr));
    // An unknown component or phase is a usage error (exit 2) on every command.
    for cmd in [
        &["plan", "--component", "nope"][..],
        &["apply", "--yes", "--component", "nope"],
        &["stage", "--component", "nope"],
        &["plan", "--phase", "nope"],
    ] {
        let o = sb.run(cmd);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("unknown "), "{cmd:?}: {err}");
    }
    let o = sb.run(&["apply", "--bogus"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
    // Another run holds the lock: exit 3, naming the holder.
    let lock = upgrade_state::RunLock::new(sb.root.join("var/lib/obs-upgrade/lock"));
    let _held = lock
        .try_acquire(&upgrade_state::HolderInfo::current())
        .unwrap();
    let o = sb.run(&["apply"]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("pid {}", std::process::id())) && err.contains("--wait-lock"),
        "{err}"
    );
    // A dry run is a Go/No-Go: the held lock would stop the run (exit 1).
    let o = sb.run(&["apply", "--dry-run"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("No-Go: another run holds the lock"),
        "{}",
        text(&o)
    );
    let o = sb.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(&format!("lock: held by pid {}", std::process::id()))
    );
    // Help, completions and the man page.
    for args in [
        &["--help"][..],
        &["apply", "--help"],
        &["completions", "bash"],
        &["man"],
        &["config", "example"],
    ] {
        let o = sb.run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("obs-upgrade")
                || args == ["config", "example"],
            "{args:?}"
        );
    }
    insta::assert_snapshot!("help", String::from_utf8_lossy(&sb.run(&["--help"]).stdout));
}

#[test]
fn a_relative_root_is_refused_and_a_damaged_state_file_says_state_reset() {
    let sb = Sb::new();
    // A relative root would give dangling binary links: refused, exit 2.
    let o = Command::new(bin("obs-upgrade"))
        .current_dir(sb.dir.path())
        .args(["--root", "root", "apply", "--yes"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is relative; give an absolute path"), "{err}");
    // A damaged state file: `state reset` (exit 2), never `resume` (exit 4).
    let state = sb.root.join("var/lib/obs-upgrade/state.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(&state, "{ not json").unwrap();
    for cmd in [&["apply", "--yes"][..], &["resume"][..]] {
        let o = sb.run(cmd);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("state reset"), "{cmd:?}: {err}");
        assert!(!err.contains("obs-upgrade resume`"), "{cmd:?}: {err}");
    }
    // `state reset` sets the damaged file aside once; a second reset finds a
    // clean journal and refuses (exit 2, saying why) rather than force an
    // older copy back; `--force` sets it aside anyway.
    let o = sb.run(&["state", "reset"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("set the state file aside"),
        "{}",
        text(&o)
    );
    let o = sb.run(&["apply", "--yes", "--component", "mysqld_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let before = std::fs::read(&state).ok();
    assert!(before.is_some(), "the run wrote a state file");
    let o = sb.run(&["--json", "state", "reset"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema"], "obs-upgrade/error/v1", "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("reads cleanly") && m.contains("--force")),
        "{v}"
    );
    assert_eq!(std::fs::read(&state).ok(), before);
    let o = sb.run(&["state", "reset", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("(forced)"), "{}", text(&o));
    assert!(!state.exists(), "a forced reset sets the file aside");
    // An unknown supervisor service is a usage error naming the known ones.
    let o = sb.run(&["supervisor", "start", "nope.service"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no service `nope.service`"), "{err}");
}

#[test]
fn each_cause_is_printed_once() {
    let sb = Sb::new();
    // `var` is a file, so the state directory cannot be created: the
    // I/O cause must appear once, not once per layer of the error chain.
    std::fs::remove_dir_all(sb.root.join("var")).ok();
    std::fs::write(sb.root.join("var"), "").unwrap();
    for cmd in [&["apply", "--yes"][..], &["stage"][..], &["status"][..]] {
        let o = sb.run(cmd);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{cmd:?}: {err}");
        assert_eq!(err.matches("Not a directory").count(), 1, "{cmd:?}: {err}");
    }
}

#[test]
fn retention_runs_by_itself_after_a_successful_run() {
    let sb = Sb::new();
    append_stack(&sb, "retention:\n  versions: 2\n");
    let versions = || {
        let o = sb.run(&["--json", "versions"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let node = v["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "node_exporter")
            .unwrap()
            .clone();
        node["versions"].clone()
    };
    let apply = |what: &str| {
        let o = sb.run(&["apply", "--yes", "--component", "node_exporter"]);
        assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
    };
    apply("1.8.2 → 1.9.1");
    assert_eq!(versions(), serde_json::json!(["1.8.2", "1.9.1"]));
    // A version held by hand is protected even when old.
    sb.publish("node_exporter", "1.9.2");
    apply("1.9.1 → 1.9.2");
    sb.publish("node_exporter", "1.9.3");
    apply("1.9.2 → 1.9.3");
    // Three upgrades, two versions kept: the newest (current and last good).
    assert_eq!(versions(), serde_json::json!(["1.9.2", "1.9.3"]));
    // A held version is never pruned: hold 1.9.3, then upgrade past it
    // (interactively, ignoring the hold) until it is no longer among the newest.
    let o = sb.run(&["hold", "add", "node_exporter"]);
    assert!(text(&o).contains("held at 1.9.3"), "{}", text(&o));
    sb.publish("node_exporter", "1.9.4");
    sb.publish("node_exporter", "1.9.5");
    let o = sb.run(&[
        "apply",
        "--yes",
        "--ignore-holds",
        "--component",
        "node_exporter",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    sb.publish("node_exporter", "1.9.6");
    let o = sb.run(&[
        "apply",
        "--yes",
        "--ignore-holds",
        "--component",
        "node_exporter",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(versions(), serde_json::json!(["1.9.3", "1.9.5", "1.9.6"]));
}

#[test]
fn an_unattended_run_finishes_an_interrupted_one_first() {
    let sb = Sb::new();
    sb.publish("node_exporter", "1.10.0+broken");
    // SIGKILL while the broken release is being verified (it answers 500
    // until the health deadline, 5 s in the sandbox).
    let mut child = Command::new(bin("obs-upgrade"))
        .arg("--root")
        .arg(&sb.root)
        .args(["apply", "--yes", "--component", "node_exporter"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_verify(&sb);
    child.kill().unwrap();
    child.wait().unwrap();
    // An interactive apply refuses (exit 4) and says how to go on.
    let o = sb.run(&["apply", "--yes"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    // An unattended one finishes it (the rollback), then carries on: never 4.
    let o = sb.run(&["apply", "--unattended"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}{err}", text(&o));
    assert!(err.contains("finished the interrupted run"), "{err}");
    let o = sb.run(&["--json", "check"]);
    assert!(
        text(&o).contains("\"installed\": \"1.8.2\""),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("1.10.0+broken failed verification here"),
        "{}",
        text(&o)
    );
    let o = sb.run(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Waits (up to 30 s) until the journal shows a component being verified.
fn wait_for_verify(sb: &Sb) {
    let store = upgrade_state::StateStore::open(&sb.root.join("var/lib/obs-upgrade")).unwrap();
    let verifying = upgrade_core::journal::ComponentStatus::InProgress {
        step: upgrade_core::journal::TxStep::Verify,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !store
        .load()
        .ok()
        .flatten()
        .is_some_and(|r| r.components.values().any(|c| c.status == verifying))
    {
        assert!(std::time::Instant::now() < deadline, "verify never began");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Appends YAML to the sandbox's stack file.
fn append_stack(sb: &Sb, yaml: &str) {
    let stack = sb.root.join("etc/obs-upgrade/stack.yaml");
    let mut text = std::fs::read_to_string(&stack).unwrap();
    text.push_str(yaml);
    std::fs::write(&stack, text).unwrap();
}

#[test]
fn sigterm_during_verify_rolls_back_and_starts_nothing_new() {
    let sb = Sb::new();
    // A failure does not stop this phase: only the signal can.
    append_stack(
        &sb,
        "phases:\n  - {name: exporters, on_failure: continue}\n",
    );
    sb.publish("mysqld_exporter", "0.17.3+broken");
    let child = Command::new(bin("obs-upgrade"))
        .arg("--root")
        .arg(&sb.root)
        .args(["apply", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_verify(&sb);
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let all = format!("{}{}", text(&out), String::from_utf8_lossy(&out.stderr));
    // The broken release failed its verification and was rolled back: exit 1.
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("the run was stopped (a signal)"), "{all}");
    let o = sb.run(&["--json", "check"]);
    let check = text(&o);
    assert!(
        check.contains("\"installed\": \"0.17.0\""),
        "the old version is live: {check}"
    );
    assert!(
        check.contains("\"installed\": \"1.3.0\""),
        "nginx was not started: {check}"
    );
    // Nothing is left to resume: the next unattended run ends cleanly.
    let status = text(&sb.run(&["status"]));
    assert!(!status.contains("interrupted"), "{status}");
    let o = sb.run(&["apply", "--unattended"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn check_notify_sends_each_new_set_of_updates_once() {
    let sb = Sb::new();
    let events = sb.dir.path().join("events");
    let hook = format!("cat >> {0}; echo >> {0}", events.display());
    append_stack(
        &sb,
        &[
            "notifications:\n  level: on-change\n  commands:\n    - [sh, -c, '",
            &hook,
            "']\n",
        ]
        .concat(),
    );
    let sent = || {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .matches("updates_available")
            .count()
    };
    assert_eq!(sb.run(&["check", "--notify"]).status.code(), Some(0));
    assert_eq!(sent(), 1);
    assert_eq!(sb.run(&["check", "--notify"]).status.code(), Some(0));
    assert_eq!(sent(), 1, "the same updates are not sent again");
    sb.publish("node_exporter", "1.9.2");
    assert_eq!(sb.run(&["check", "--notify"]).status.code(), Some(0));
    assert_eq!(sent(), 2, "a new set is sent");
}

/// The mode bits of a path (without following a last link).
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn modes_are_set_explicitly_whatever_the_umask() {
    for umask in ["077", "000"] {
        let sb = Sb::new();
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
            .arg(bin("obs-upgrade"))
            .arg("--root")
            .arg(&sb.root)
            .args(["apply", "--yes", "--component", "node_exporter"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "umask {umask}: {}", text(&o));
        let r = |rel: &str| sb.root.join(rel);
        for (rel, want) in [
            ("opt/obs-upgrade", 0o755),
            ("opt/obs-upgrade/node_exporter", 0o755),
            ("opt/obs-upgrade/node_exporter/1.9.1", 0o755),
            ("opt/obs-upgrade/node_exporter/1.9.1/node_exporter", 0o755),
            ("var/lib/obs-upgrade", 0o700),
            ("var/lib/obs-upgrade/state.json", 0o600),
            ("var/lib/obs-upgrade/history.jsonl", 0o600),
            ("var/cache/obs-upgrade/downloads", 0o700),
            ("var/lib/prometheus/node-exporter/obs_upgrade.prom", 0o644),
        ] {
            assert_eq!(
                mode(&r(rel)),
                want,
                "umask {umask}: {rel} is {:o}",
                mode(&r(rel))
            );
        }
        // The service, which reads the store, still serves the new version.
        let o = sb.run(&["--json", "check"]);
        assert!(
            text(&o).contains("\"installed\": \"1.9.1\""),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn a_journal_missing_a_field_is_refused_as_damaged_not_a_panic() {
    let sb = Sb::new();
    let o = sb.run(&["apply", "--yes", "--component", "node_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let path = sb.root.join("var/lib/obs-upgrade/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let comps = state["run"]["components"].as_object_mut().unwrap();
    let first = comps.values_mut().next().unwrap();
    first.as_object_mut().unwrap().remove("phase");
    state["run"]["status"] = "UPGRADING".into();
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    for cmd in [&["status"][..], &["resume"], &["apply", "--unattended"]] {
        let o = sb.run(cmd);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(
            err.contains("missing field `phase`") && err.contains("state reset"),
            "{err}"
        );
    }
}
