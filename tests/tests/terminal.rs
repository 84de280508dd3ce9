//! The CLI as people and scripts meet it: prompts on a real terminal (a
//! tmux pane), pipes that close early, coloured tables, completions driven
//! in bash, zsh and fish, manual pages rendered by `man`, `--help`, and the
//! JSON error object of every failure.
#![allow(clippy::print_stderr)] // skipped tests say so on stderr

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use obs_upgrade_tests::nsd::in_ci;
use obs_upgrade_tests::tmux::{self, Pane};
use obs_upgrade_tests::{bin, obs_upgrade, sandbox};

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
        let mirror = self.dir.path().join("mirror");
        sandbox::publish(&mirror, &exporter, component, version).unwrap();
    }

    fn root(&self) -> &str {
        self.root.to_str().unwrap()
    }
}

impl Drop for Sb {
    fn drop(&mut self) {
        sandbox::stop_all(&self.root);
    }
}

/// Whether the tools a test drives are here; in CI a missing one fails the
/// test, elsewhere it says it was skipped.
fn tools_present(test: &str, tools: &[&str]) -> bool {
    let mut missing: Vec<String> = tmux::unavailable().into_iter().collect();
    missing.extend(
        tools
            .iter()
            .filter(|t| !tmux::has(t))
            .map(|t| format!("{t} is not installed")),
    );
    if missing.is_empty() {
        return true;
    }
    let why = missing.join("; ");
    assert!(!in_ci(), "{test}: {why} (scripts/setup installs it)");
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// A `PATH` with this workspace's `obs-upgrade` first.
fn path_with_obs_upgrade() -> String {
    let dir = bin("obs-upgrade").parent().unwrap().to_owned();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Whether a line holds a spinner frame (indicatif draws braille dots).
fn has_spinner_glyph(line: &str) -> bool {
    line.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c))
}

/// Waits for a question on the screen, then checks that it stays whole
/// for a while (a running spinner would redraw over it) with no spinner
/// frame on its line.
fn wait_question(pane: &Pane, question: &str) {
    let (ok, screen) = pane.wait_for(30, |s| s.lines().any(|l| l.contains(question)));
    assert!(
        ok,
        "the question `{question}` never became visible:\n{screen}"
    );
    std::thread::sleep(std::time::Duration::from_millis(700));
    let screen = pane.screen();
    let line = screen
        .lines()
        .rev()
        .find(|l| l.contains(question))
        .unwrap_or_else(|| panic!("`{question}` was drawn over:\n{screen}"));
    assert!(
        !has_spinner_glyph(line),
        "a spinner frame on the question's line: {line:?}\n{screen}"
    );
    assert!(line.trim_end().ends_with("[y/N]"), "{line:?}\n{screen}");
}

#[test]
fn prompts_are_fully_visible_and_y_n_and_ctrl_c_do_what_they_say() {
    let test = "prompts_are_fully_visible_and_y_n_and_ctrl_c_do_what_they_say";
    if !tools_present(test, &[]) {
        return;
    }
    let sb = Sb::new();
    // A major release is beyond the sandbox policy's `allow: minor`.
    sb.publish("node_exporter", "2.0.0");
    let cmd = format!(
        "{} --root {} apply --mode safe; echo \"exit=$?\"; sleep 600",
        bin("obs-upgrade").display(),
        sb.root()
    );
    let pane = Pane::start(&cmd, sb.dir.path(), &[]);
    // The approval prompt comes first (before anything runs), with the
    // step's real change kind and risk.
    wait_question(
        &pane,
        "node_exporter 1.8.2 → 2.0.0: major change, high risk (beyond the policy's `allow`). \
         Apply? [y/N]",
    );
    pane.keys(&["y", "Enter"]);
    // Then safe mode asks before each component.
    wait_question(
        &pane,
        "mysqld_exporter 0.17.0 → 0.17.2: patch change, low risk. Apply? [y/N]",
    );
    pane.keys(&["y", "Enter"]);
    // Asked while the spinner of the run is alive.
    wait_question(
        &pane,
        "nginx_exporter 1.3.0 → 1.4.1: minor change, medium risk. Apply? [y/N]",
    );
    pane.keys(&["n", "Enter"]);
    wait_question(
        &pane,
        "node_exporter 1.8.2 → 2.0.0: major change, high risk (beyond the policy's `allow`). \
         Apply? [y/N]",
    );
    // Ctrl-C answers the open question: the run stops at once (exit 5).
    pane.keys(&["C-c"]);
    let (ok, screen) = pane.wait_for(30, |s| s.contains("exit="));
    assert!(ok, "Ctrl-C did not end the prompt:\n{screen}");
    assert!(screen.contains("exit=5"), "{screen}");
    let row = |name: &str| {
        screen
            .lines()
            .find(|l| l.starts_with(name) && l.contains(" → ") && !l.contains("Apply?"))
            .unwrap_or_else(|| panic!("no row for {name}:\n{screen}"))
            .to_owned()
    };
    assert!(row("mysqld_exporter").contains("upgraded"), "{screen}");
    assert!(
        row("nginx_exporter").contains("declined at the prompt"),
        "{screen}"
    );
    assert!(
        row("node_exporter").contains("the run was stopped"),
        "{screen}"
    );
    // What the screen says is what the host has.
    let versions = String::from_utf8_lossy(&sb.run(&["versions"]).stdout).into_owned();
    let current = |name: &str| {
        versions
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("-")
            .to_owned()
    };
    assert_eq!(current("mysqld_exporter"), "0.17.2", "{versions}");
    assert_ne!(current("nginx_exporter"), "1.4.1", "{versions}");
    assert_ne!(current("node_exporter"), "2.0.0", "{versions}");
}

/// Runs `obs-upgrade` with its stdout a pipe whose reader is already gone.
fn into_closed_pipe(root: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(bin("obs-upgrade"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn every_command_piped_into_head_exits_0_with_nothing_on_stderr() {
    let sb = Sb::new();
    // A run, so that history and status have lines.
    let o = sb.run(&["apply", "--yes", "--component", "mysqld_exporter"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let commands: &[&[&str]] = &[
        &["check"],
        &["plan"],
        &["apply", "--dry-run"],
        &["status"],
        &["history"],
        &["history", "--stats"],
        &["versions"],
        &["rollback", "--list"],
        &["prune", "--dry-run"],
        &["hold", "list"],
        &["quarantine", "list"],
        &["config", "check"],
        &["config", "show"],
        &["config", "example"],
        &["supervisor", "status"],
        &["metrics"],
        &["timer", "status"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
        &["man"],
        &["man", "apply"],
        &["--help"],
        &["apply", "--help"],
        &["--version"],
    ];
    for args in commands {
        for json in [false, true] {
            let mut all: Vec<&str> = if json { vec!["--json"] } else { vec![] };
            all.extend_from_slice(args);
            // Text by nature: no JSON form.
            let text_only = matches!(args[0], "completions" | "man" | "--help" | "--version")
                || args.contains(&"--help");
            if json && text_only {
                continue;
            }
            // The reader is gone before the first write: always a broken pipe.
            let o = into_closed_pipe(&sb.root, &all);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{all:?} into a closed pipe: {err}"
            );
            assert!(err.is_empty(), "{all:?} into a closed pipe printed: {err}");
            // As people write it: `obs-upgrade … | head -1`.
            let line = format!(
                "set -o pipefail; '{}' --root '{}' {} | head -1 >/dev/null",
                bin("obs-upgrade").display(),
                sb.root(),
                all.join(" ")
            );
            let o = Command::new("bash")
                .args(["-c", &line])
                .env("NO_COLOR", "1")
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "{all:?} | head -1: {err}");
            assert!(err.is_empty(), "{all:?} | head -1 printed: {err}");
        }
    }
}

/// Text without its escape sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The column where each header word starts.
fn header_columns(header: &str) -> Vec<usize> {
    let chars: Vec<char> = header.chars().collect();
    (0..chars.len())
        .filter(|&i| chars[i] != ' ' && (i == 0 || (i >= 2 && chars[i - 2..i] == [' ', ' '])))
        .collect()
}

#[test]
fn coloured_tables_align_and_colour_never_reaches_log_lines() {
    let sb = Sb::new();
    sb.publish("node_exporter", "2.0.0");
    for cmd in ["plan", "check"] {
        let coloured = sb.run(&["--color", "always", cmd]);
        let coloured = String::from_utf8_lossy(&coloured.stdout).into_owned();
        assert!(coloured.contains("\x1b["), "{cmd}: no colour:\n{coloured}");
        let plain =
            String::from_utf8_lossy(&sb.run(&["--color", "never", cmd]).stdout).into_owned();
        assert!(
            !plain.contains('\x1b'),
            "{cmd}: colour under never:\n{plain}"
        );
        let stripped = strip_ansi(&coloured);
        assert_eq!(stripped, plain, "{cmd}: colours changed the layout");
        // Every cell starts under its header (counted in characters).
        let mut lines = stripped.lines();
        let header = lines.next().unwrap();
        let cols = header_columns(header);
        assert!(cols.len() >= 5, "{header}");
        for row in lines.take_while(|l| !l.is_empty() && !l.starts_with("warning")) {
            let chars: Vec<char> = row.chars().collect();
            for &c in &cols[1..] {
                if c < chars.len() {
                    assert!(
                        chars[c - 1] == ' ' && chars[c - 2] == ' ',
                        "{cmd}: a cell runs into column {c}:\n{header}\n{row}"
                    );
                }
            }
        }
    }
    // Log lines follow the same decision.
    let o = sb.run(&["-v", "--color", "never", "apply", "--dry-run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains('\x1b'), "{err}");
    let o = sb.run(&[
        "-v",
        "--color",
        "always",
        "apply",
        "--component",
        "mysqld_exporter",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\x1b["), "no colour in the log lines: {err}");
    // Events in words, not in Rust's debug form.
    let plain = strip_ansi(&err);
    assert!(
        plain.contains("info: mysqld_exporter upgraded 0.17.0 → 0.17.2"),
        "{plain}"
    );
    assert!(!plain.contains("Version("), "{plain}");
}

/// Completes `line` + Tab in `shell` and returns the screen once `done` holds.
fn complete_in(shell: &str, sb: &Sb, typed: &str, tabs: usize, done: &dyn Fn(&str) -> bool) {
    let (program, setup) = match shell {
        "bash" => (
            "bash --norc --noprofile",
            "source <(obs-upgrade completions bash)",
        ),
        "zsh" => (
            "zsh -f",
            "autoload -Uz compinit && compinit -u && source <(obs-upgrade completions zsh)",
        ),
        _ => ("fish --no-config", "obs-upgrade completions fish | source"),
    };
    let path = path_with_obs_upgrade();
    let pane = Pane::start(program, sb.dir.path(), &[("PATH", &path)]);
    // A marker after the setup says the shell has read it.
    pane.type_text(&format!("{setup}; echo ready-$((1+1))"));
    if shell == "fish" {
        pane.keys(&["C-u"]);
        pane.type_text(&format!("{setup}; echo ready-(math 1+1)"));
    }
    pane.keys(&["Enter"]);
    let (ok, screen) = pane.wait_for(20, |s| s.lines().any(|l| l.trim() == "ready-2"));
    assert!(ok, "{shell} did not load the completions:\n{screen}");
    pane.type_text(typed);
    for _ in 0..tabs {
        pane.keys(&["Tab"]);
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    let (ok, screen) = pane.wait_for(20, done);
    assert!(ok, "{shell}: `{typed}` + Tab did not complete:\n{screen}");
}

#[test]
fn bash_zsh_and_fish_complete_options_and_component_names() {
    let test = "bash_zsh_and_fish_complete_options_and_component_names";
    if !tools_present(test, &["bash", "zsh", "fish"]) {
        return;
    }
    let sb = Sb::new();
    for shell in ["bash", "zsh", "fish"] {
        complete_in(shell, &sb, "obs-upgrade apply --dr", 1, &|s| {
            s.lines()
                .any(|l| l.trim_end().ends_with("obs-upgrade apply --dry-run"))
        });
        // Component names come from the stack file the words name.
        let typed = format!("obs-upgrade --root {} rollback --component ", sb.root());
        complete_in(shell, &sb, &typed, 2, &|s| {
            ["mysqld_exporter", "nginx_exporter", "node_exporter"]
                .iter()
                .all(|n| {
                    s.lines()
                        .skip(1)
                        .any(|l| l.contains(n) && !l.contains("--root"))
                })
        });
    }
}

#[test]
fn every_failure_under_json_prints_the_error_object() {
    let sb = Sb::new();
    let dir = sb.dir.path();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "defaults:\n  trak: minor\n").unwrap();
    let bad = bad.to_str().unwrap();
    let missing = dir.join("missing.yaml");
    let missing = missing.to_str().unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["--config", bad, "check"], 2),
        (&["--config", bad, "config", "check"], 2),
        (&["--config", missing, "plan"], 2),
        (&["plan", "--component", "node_exportr"], 2),
        (&["apply", "--phase", "nope"], 2),
        (&["aply"], 2),
        (&["apply", "--bogus"], 2),
        (&["rollback"], 2),
        (
            &["rollback", "--component", "node_exporter", "--to", "9.9.9"],
            1,
        ),
        (
            &["rollback", "--component", "node_exporter", "--to", "x.y"],
            2,
        ),
        (
            &["quarantine", "clear", "node_exporter", "not-a-version"],
            2,
        ),
        (&["resume"], 1),
        (&["state", "reset"], 2),
        (&["man", "aply"], 2),
        (&["unmanage", "nope"], 2),
        (&["supervisor", "start", "nope.service"], 2),
    ];
    for (args, code) in cases {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let o = sb.run(&all);
        let out = String::from_utf8_lossy(&o.stdout);
        let v: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{all:?}: stdout is not one JSON object ({e}):\n{out}"));
        assert_eq!(o.status.code(), Some(*code), "{all:?}: {v}");
        assert_eq!(v["schema"], "obs-upgrade/error/v1", "{all:?}: {v}");
        assert_eq!(v["ok"], false, "{all:?}: {v}");
        assert_eq!(v["exit_code"], *code, "{all:?}: {v}");
        assert!(v["kind"].is_string(), "{all:?}: {v}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{all:?}: {v}");
        assert!(
            message.starts_with(|c: char| !c.is_ascii_uppercase()),
            "messages are lowercase: {all:?}: {v}"
        );
    }
    // A stack file error says where: file, line, key.
    let o = sb.run(&["--json", "--config", bad, "config", "check"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "config", "{v}");
    assert_eq!(v["file"], bad, "{v}");
    assert_eq!(v["line"], 2, "{v}");
    assert_eq!(v["key"], "defaults.trak", "{v}");
    // Another run holds the lock: exit 3, kind `locked`.
    let lock = upgrade_state::RunLock::new(sb.root.join("var/lib/obs-upgrade/lock"));
    let held = lock
        .try_acquire(&upgrade_state::HolderInfo::current())
        .unwrap();
    let o = sb.run(&["--json", "apply"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(3), "{v}");
    assert_eq!(v["kind"], "locked", "{v}");
    drop(held);
    // A root that does not exist is an error, not "nothing installed".
    let o = obs_upgrade(Path::new("/nonexistent-root"), &["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(2), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("is not a directory"),
        "{v}"
    );
}

#[test]
fn a_permission_problem_says_run_as_root_and_exits_77() {
    if !obs_upgrade_tests::nsd::is_root() {
        assert!(
            !in_ci(),
            "this test switches to an unprivileged user: CI runs as root"
        );
        eprintln!("SKIPPED a_permission_problem_says_run_as_root_and_exits_77: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var/lib/obs-upgrade");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("state.json"), "{}").unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut dirs = vec![dir.path().to_owned()];
    dirs.extend(bin("obs-upgrade").ancestors().skip(1).map(Path::to_owned));
    for d in &dirs {
        let mode = std::fs::metadata(d).unwrap().permissions().mode();
        if mode & 0o001 == 0 {
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o001));
        }
    }
    for json in [false, true] {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("obs-upgrade"))
            .arg("--root")
            .arg(dir.path());
        if json {
            cmd.arg("--json");
        }
        let o = cmd.arg("status").env("NO_COLOR", "1").output().unwrap();
        assert_eq!(o.status.code(), Some(77), "{o:?}");
        let text = if json {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["kind"], "permission", "{v}");
            v["message"].as_str().unwrap().to_owned()
        } else {
            String::from_utf8_lossy(&o.stderr).into_owned()
        };
        assert!(
            text.contains("Permission denied") && text.contains("run as root"),
            "{text}"
        );
    }
}

#[test]
fn config_errors_suggest_and_keep_their_key_path_and_line() {
    let sb = Sb::new();
    let dir = sb.dir.path();
    let check = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let o = sb.run(&["--config", p.to_str().unwrap(), "config", "check"]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let err = check("key.yaml", "defaults:\n  trak: minor\n");
    assert!(err.contains("key.yaml:2:3: defaults.trak"), "{err}");
    assert!(err.contains("did you mean `track`?"), "{err}");
    let err = check("key.toml", "[defaults]\ntrak = \"minor\"\n");
    assert!(err.contains("did you mean `track`?"), "{err}");
    let env = "environments:\n  prod:\n    components:\n      node_exportr: {allow: patch}\n";
    let err = check("component.yaml", env);
    assert!(err.contains("did you mean `node_exporter`?"), "{err}");
    let window = concat!(
        "maintenance:\n",
        "  auto_approve: low\n",
        "  windows:\n",
        "    - days: [mon, tue]\n",
        "      start: \"02:00\"\n",
        "      end: \"04:00\"\n",
        "      time_zone: Mars/Olympus\n",
    );
    let err = check("window.yaml", window);
    assert!(
        err.contains("window.yaml:7:7: maintenance.windows[0].time_zone: unknown time zone"),
        "{err}"
    );
    let err = check(
        "day.yaml",
        "maintenance:\n  windows:\n    - {days: [monkey], start: \"02:00\", end: \"04:00\"}\n",
    );
    assert!(
        err.contains("maintenance.windows[0].days[0]") && err.contains("`monkey` is not a day"),
        "{err}"
    );
    // Day names are exact: three letters or the full name, any case.
    let ok = dir.join("days.yaml");
    let days = "maintenance:\n  windows:\n    - {days: [Mon, tuesday], start: \"02:00\", \
                end: \"04:00\"}\n";
    std::fs::write(&ok, days).unwrap();
    let o = sb.run(&["--config", ok.to_str().unwrap(), "config", "check"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // Unknown components and commands on the command line.
    let o = sb.run(&["plan", "--component", "node_exportr"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("did you mean `node_exporter`?"), "{err}");
    let o = sb.run(&["aply"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("'apply'"), "{err}");
}

/// Every command's path (`["hold", "add"]`), from the manual pages written.
fn command_paths(pages: &Path) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = std::fs::read_dir(pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".1").map(str::to_owned))
        .map(|n| {
            n.strip_prefix("obs-upgrade")
                .unwrap()
                .split('-')
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn man_pages_render_for_every_command_and_every_help_has_examples() {
    let test = "man_pages_render_for_every_command_and_every_help_has_examples";
    if !tools_present(test, &["man"]) {
        return;
    }
    let sb = Sb::new();
    let pages = sb.dir.path().join("man1");
    let o = sb.run(&["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let paths = command_paths(&pages);
    // Every command listed by --help has its page.
    let help = String::from_utf8_lossy(&sb.run(&["--help"]).stdout).into_owned();
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(listed.len() > 15, "{help}");
    for c in &listed {
        assert!(
            paths.iter().any(|p| p.len() == 1 && p[0] == *c),
            "no page for {c}"
        );
    }
    for path in &paths {
        let name = if path.is_empty() {
            "obs-upgrade".to_owned()
        } else {
            format!("obs-upgrade-{}", path.join("-"))
        };
        let file = pages.join(format!("{name}.1"));
        let o = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "man -l {name}.1: {err}");
        assert!(
            page.contains("NAME") && page.contains(&name),
            "{name}:\n{page}"
        );
        // The pages it points to exist.
        for word in page.split_whitespace() {
            if let Some(other) = word.strip_suffix("(1)")
                && other.starts_with("obs-upgrade")
            {
                let other = other.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
                assert!(
                    pages.join(format!("{other}.1")).exists(),
                    "{name} points to {other}(1), which was not written"
                );
            }
        }
        // The same page is printed by `man <command>`.
        let mut args = vec!["man"];
        args.extend(path.iter().map(String::as_str));
        let printed = sb.run(&args);
        assert_eq!(printed.stdout, std::fs::read(&file).unwrap(), "{args:?}");
        // Every --help shows examples.
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = String::from_utf8_lossy(&sb.run(&args).stdout).into_owned();
        assert!(
            help.contains("Example") || path.is_empty(),
            "`{}` has no examples:\n{help}",
            args.join(" ")
        );
    }
    // A command's own options come before the global ones, under their heading.
    let help = String::from_utf8_lossy(&sb.run(&["apply", "--help"]).stdout).into_owned();
    let own = help.find("--dry-run").unwrap();
    let global = help
        .find("Global options:")
        .expect("a global options heading");
    let examples = help.find("Examples:").expect("examples");
    let globals = &help[global..examples];
    assert!(own < global && globals.contains("--root"), "{help}");
    assert!(!globals.contains("--dry-run"), "{help}");
    // --version names the commit and its date.
    let v = String::from_utf8_lossy(&sb.run(&["--version"]).stdout).into_owned();
    let re = regex::Regex::new(r"^obs-upgrade \d+\.\d+\.\d+ \(commit \S+, \S+\)$").unwrap();
    assert!(re.is_match(v.trim()), "{v}");
    // Another program's `COMPLETE` does not turn a run into a completion request.
    let o = Command::new(bin("obs-upgrade"))
        .arg("--version")
        .env("COMPLETE", "bash")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), v);
}
