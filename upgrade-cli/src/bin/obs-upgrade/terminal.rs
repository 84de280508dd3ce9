//! The terminal side of [`upgrade_cli::ops::Ui`]: progress bars and a
//! spinner on a terminal, plain lines otherwise, and the approval prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use upgrade_cli::ops::Ui;
use upgrade_core::engine::StopFlag;
use upgrade_core::journal::{StepEvent, TxStep};
use upgrade_core::planner::Step;
use upgrade_core::version::Version;

use crate::args::Global;

/// Progress bars and a spinner on a terminal, plain lines otherwise; prompts
/// when someone can answer.
pub struct Terminal {
    interactive: bool,
    quiet: bool,
    can_prompt: bool,
    bar: Mutex<Option<ProgressBar>>,
    spinner: Mutex<Option<ProgressBar>>,
    stop: StopFlag,
}

/// Lines typed on stdin, read by one thread for the whole process: a prompt
/// waits for a line or a stop request (Ctrl-C), whichever comes first — a
/// plain `read_line` would keep waiting after the signal.
fn typed_lines() -> &'static Mutex<Receiver<String>> {
    static LINES: OnceLock<Mutex<Receiver<String>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            loop {
                let mut line = String::new();
                match stdin.lock().read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Mutex::new(rx)
    })
}

impl Terminal {
    /// `stop` is the run's stop flag: a signal while a question is open
    /// answers it "no" at once, and the run stops.
    pub fn new(g: &Global, unattended: bool, stop: &StopFlag) -> Self {
        let interactive = !g.json && !g.quiet && std::io::stderr().is_terminal();
        Terminal {
            interactive,
            quiet: g.quiet || g.json,
            can_prompt: !unattended
                && !g.json
                && std::io::stdin().is_terminal()
                && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            spinner: Mutex::new(None),
            stop: stop.clone(),
        }
    }
}

impl Ui for Terminal {
    fn staging(&self, component: &str, version: &Version) {
        if !self.interactive {
            if !self.quiet {
                eprintln!("staging {component} {version}");
            }
            return;
        }
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{msg:32} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_message(format!("{component} {version}"));
        *self.bar.lock().expect("bar") = Some(b);
    }

    fn bytes(&self, done: u64, total: Option<u64>) {
        if let Some(b) = &*self.bar.lock().expect("bar") {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        }
    }

    fn staged(&self) {
        if let Some(b) = self.bar.lock().expect("bar").take() {
            b.finish_and_clear();
        }
    }

    fn journal(&self, key: &str, step: TxStep, ev: &StepEvent) {
        let mut spinner = self.spinner.lock().expect("spinner");
        if self.interactive && spinner.is_none() {
            let s = ProgressBar::new_spinner();
            s.enable_steady_tick(Duration::from_millis(120));
            *spinner = Some(s);
        }
        match (&*spinner, ev) {
            (Some(s), StepEvent::Began) => s.set_message(format!("{key}: {step}…")),
            (Some(s), StepEvent::Failed { error }) => {
                s.println(format!("{key}: {step} failed: {error}"));
            }
            (None, StepEvent::Done { result }) if !self.quiet => {
                eprintln!("{key}: {step}: {result}");
            }
            (None, StepEvent::Failed { error }) if !self.quiet => {
                eprintln!("{key}: {step} FAILED: {error}");
            }
            _ => {}
        }
    }

    fn can_ask(&self) -> bool {
        self.can_prompt
    }

    fn ask(&self, step: &Step) -> bool {
        let spinner = self.spinner.lock().expect("spinner");
        let question = format!(
            "{} {} → {}: {} change, {} risk{}. Apply? [y/N] ",
            step.component,
            step.from,
            step.to,
            step.change,
            step.risk,
            if step.needs_approval {
                " (beyond the policy's `allow`)"
            } else {
                ""
            }
        );
        let read = || {
            eprint!("{question}");
            let _ = std::io::stderr().flush();
            let lines = typed_lines().lock().expect("stdin");
            loop {
                if self.stop.is_requested() {
                    eprintln!();
                    return None;
                }
                match lines.recv_timeout(Duration::from_millis(50)) {
                    Ok(line) => return Some(line),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        eprintln!();
                        return None;
                    }
                }
            }
        };
        // The spinner is cleared and held while the question is open.
        let line = match &*spinner {
            Some(s) => s.suspend(read),
            None => read(),
        };
        line.is_some_and(|l| matches!(l.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
    }

    fn done(&self) {
        if let Some(s) = self.spinner.lock().expect("spinner").take() {
            s.finish_and_clear();
        }
    }
}
