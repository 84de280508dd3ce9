//! `stage`, `apply` and `resume`: arguments → options → one library call → render.

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, ApplyOptions, ApplyOutcome, StageOptions};
use upgrade_core::engine::Mode;

use super::scope;
use crate::args::{Global, ModeArg, Selection};
use crate::exit;
use crate::render::{self, Table};
use crate::signals;
use crate::terminal::Terminal;

#[allow(clippy::struct_excessive_bools)] // one per flag
pub struct ApplyArgs {
    pub dry_run: bool,
    pub mode: ModeArg,
    pub yes: bool,
    pub unattended: bool,
    pub allow_unhealthy: bool,
    pub ignore_holds: bool,
}

pub fn stage(g: &Global, host: &Host, sel: &Selection) -> Result<u8> {
    let ui = Terminal::new(g, false, &host.options().stop);
    let report = ops::stage(host, &StageOptions { scope: scope(sel) }, &ui)?;
    for (name, e) in &report.errors {
        eprintln!("error: {name}: {e}");
    }
    if g.json {
        render::json("stage", &report)?;
    } else if report.staged.is_empty() {
        outln!("Nothing to stage.");
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
        t.print()?;
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
        ignore_holds: a.ignore_holds,
    };
    let stop = &host.options().stop;
    let ui = Terminal::new(g, a.unattended, stop);
    if mode != Mode::DryRun {
        signals::stop_on_signals(stop);
    }
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
                outln!("Outside every maintenance window: nothing was changed; {next}.");
            }
            Ok(exit::OK)
        }
        ApplyOutcome::Ran {
            report,
            errors,
            pruned,
            resumed,
            held,
        } => {
            for h in &held {
                eprintln!("not moved, held: {h}");
            }
            if let Some(r) = &resumed {
                let (up, back) = (r.upgraded(), r.rolled_back());
                eprintln!(
                    "finished the interrupted run {} first: {up} upgraded, {back} rolled back",
                    r.run_id
                );
            }
            for (name, e) in &errors {
                eprintln!("error: {name}: {e}");
            }
            for (name, vs) in pruned.iter().flat_map(|p| &p.removed) {
                let list: Vec<String> = vs.iter().map(ToString::to_string).collect();
                log::info!("retention removed {name} {}", list.join(", "));
            }
            let code = render::run_report(g, &report, errors.len())?;
            Ok(signals::exit_code(stop, code))
        }
    }
}

pub fn resume(g: &Global, host: &Host) -> Result<u8> {
    let stop = &host.options().stop;
    signals::stop_on_signals(stop);
    let report = ops::resume(host, &Terminal::new(g, true, stop))?;
    let code = render::run_report(g, &report, 0)?;
    Ok(signals::exit_code(stop, code))
}
