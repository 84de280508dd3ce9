//! A terminal for tests: a tmux server of its own (`tmux -L <socket>`) with
//! one pane running a shell or a command, keys typed into it, and what the
//! screen shows read back (`capture-pane`), as a person at a terminal sees it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why tmux cannot be used here, or `None`.
pub fn unavailable() -> Option<String> {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| "tmux is not installed (scripts/setup installs it)".to_owned())
}

/// Whether `tool` runs (`tool --version`).
pub fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One pane of a private tmux server; the server is killed on drop.
#[derive(Debug)]
pub struct Pane {
    socket: String,
}

impl Pane {
    /// Starts `command` (run by `sh -c`) in a 200×50 pane, in `dir`, with
    /// `env` added to a minimal environment (`PATH`, `HOME`, `TERM`).
    pub fn start(command: &str, dir: &Path, env: &[(&str, &str)]) -> Pane {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let socket = format!("obs-test-{}-{n}", std::process::id());
        let pane = Pane { socket };
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &pane.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "200", "-y", "50", "-c"])
            .arg(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8");
        // The server is this pane's alone: its environment is the pane's.
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.arg(command);
        let st = cmd.status().expect("run tmux");
        assert!(st.success(), "tmux new-session failed for {command}");
        pane
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types text literally (no key names).
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "0", "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `Tab`, `C-c`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// What the screen shows now, blank lines at the end dropped.
    pub fn screen(&self) -> String {
        let s = self.tmux(&["capture-pane", "-p", "-t", "0", "-S", "-200"]);
        s.trim_end().to_owned()
    }

    /// Waits up to `secs` for the screen to satisfy `ok`; the last screen
    /// either way, and whether it did.
    pub fn wait_for(&self, secs: u64, ok: impl Fn(&str) -> bool) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if ok(&s) {
                return (true, s);
            }
            if Instant::now() > deadline {
                return (false, s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}
