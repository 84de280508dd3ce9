//! `stage`, `apply` and `resume`: arguments → options → one library call → render.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, ApplyOptions, ApplyOutcome, StageOptions, Ui};
use upgrade_core::engine::Mode;
use upgrade_core::journal::{StepEvent, TxStep};
use upgrade_core::planner::Step;
use upgrade_core::version::Version;

use super::scope;
use crate::args::{Global, ModeArg, Selection};
use crate::exit;
use crate::render::{self, Table};

#[allow(clippy::struct_excessive_bools)] // one per flag
pub struct ApplyArgs {
    pub dry_run: bool,
    pub mode: ModeArg,
    pub yes: bool,
    pub unattended: bool,
    pub allow_unhealthy: bool,
}

/// Progress bars and a spinner on a terminal, plain lines otherwise; prompts
/// when someone can answer.
pub struct Terminal {
    interactive: bool,
    quiet: bool,
    can_prompt: bool,
    bar: Mutex<Option<ProgressBar>>,
    spinner: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    pub fn new(g: &Global, unattended: bool) -> Self {
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
        let mut line = String::new();
        let mut read = || {
            eprint!("{question}");
            let _ = std::io::stderr().flush();
            let _ = std::io::stdin().lock().read_line(&mut line);
        };
        match &*spinner {
            Some(s) => s.suspend(read),
            None => read(),
        }
        matches!(line.trim(), "y" | "Y" | "yes")
    }

    fn done(&self) {
        if let Some(s) = self.spinner.lock().expect("spinner").take() {
            s.finish_and_clear();
        }
    }
}

pub fn stage(g: &Global, host: &Host, sel: &Selection) -> Result<u8> {
    let ui = Terminal::new(g, false);
    let report = ops::stage(host, &StageOptions { scope: scope(sel) }, &ui)?;
    for (name, e) in &report.errors {
        eprintln!("error: {name}: {e}");
    }
    if g.json {
        render::json("stage", &report)?;
    } else if report.staged.is_empty() {
        println!("Nothing to stage.");
    } else {
        let mut t = Table::new(&["COMPONENT", "VERSION", "RESULT"]);
        for r in &report.staged {
            let result = if r.ok {
                r.detail.clone()
            } else {
                format!("FAILED: {}", r.detail)
            };
            t.row(vec![r.component.clone(), r.version.clone(), result]);
        }
        t.print();
    }
    Ok(if report.failures() > 0 {
        exit::FAILED
    } else {
        exit::OK
    })
}

pub fn apply(g: &Global, host: &Host, sel: &Selection, a: &ApplyArgs) -> Result<u8> {
    let mode = match (a.dry_run, a.mode) {
        (true, _) => Mode::DryRun,
        (false, ModeArg::Safe) => Mode::Safe,
        (false, ModeArg::Standard) => Mode::Standard,
        (false, ModeArg::Fast) => Mode::Fast,
    };
    let opts = ApplyOptions {
        scope: scope(sel),
        mode,
        approve_all: a.yes,
        unattended: a.unattended,
        allow_unhealthy: a.allow_unhealthy,
    };
    let ui = Terminal::new(g, a.unattended);
    match ops::apply(host, &opts, &ui)? {
        ApplyOutcome::OutsideWindow { next_window } => {
            if g.json {
                let v = serde_json::json!({
                    "status": "OUTSIDE_WINDOW", "steps": [], "next_window": next_window
                });
                render::json("run", &v)?;
            } else {
                let next = next_window.map_or_else(
                    || "no window opens in the next 400 days".to_owned(),
                    |t| format!("the next one opens at {t}"),
                );
                println!("Outside every maintenance window: nothing was changed; {next}.");
            }
            Ok(exit::OK)
        }
        ApplyOutcome::Ran { report, errors } => {
            for (name, e) in &errors {
                eprintln!("error: {name}: {e}");
            }
            let code = render::run_report(g, &report)?;
            Ok(if errors.is_empty() {
                code
            } else {
                exit::FAILED
            })
        }
    }
}

pub fn resume(g: &Global, host: &Host) -> Result<u8> {
    let report = ops::resume(host, &Terminal::new(g, true))?;
    render::run_report(g, &report)
}
