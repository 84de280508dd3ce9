//! A small orchestrator of your own: one phase at a time, a soak pause
//! after each, and a gate of your own between phases (here: stop at the
//! first phase that failed or rolled back, and never go on while a run is
//! unfinished). Each phase is an ordinary `apply` of the library, so the
//! lock, the journal, downloads-first and automatic rollback all still hold.
//!
//! ```text
//! cargo run -p obs-upgrade-examples --example orchestrator -- ROOT [SOAK_SECONDS]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use upgrade_cli::Error;
use upgrade_cli::host::{Host, HostOptions};
use upgrade_cli::ops::{self, ApplyOptions, ApplyOutcome, PlanOptions, Quiet};
use upgrade_core::engine::Scope;

/// Runs every phase that has steps; `Ok(false)` when the gate stopped it.
fn roll_out(host: &Host, soak: Duration) -> Result<bool, Error> {
    let plan = ops::plan(host, &PlanOptions { scope: Scope::All })?;
    let phases: Vec<String> = plan.plan.phases.iter().map(|p| p.name.clone()).collect();
    println!("phases with work: {}", phases.join(", "));
    for name in phases {
        let apply = ApplyOptions {
            scope: Scope::Phase { name: name.clone() },
            approve_all: true,
            ..ApplyOptions::default()
        };
        let ApplyOutcome::Ran { report, .. } = ops::apply(host, &apply, &Quiet)? else {
            return Ok(false);
        };
        let (up, bad) = (report.upgraded(), report.failed() + report.rolled_back());
        println!("phase {name}: {up} upgraded, {bad} failed or rolled back");
        // The gate: a failed phase, or a run left unfinished, stops the roll-out.
        if bad > 0 || ops::status(host)?.needs_resume() {
            println!("stopping after phase {name}; see `obs-upgrade status`");
            return Ok(false);
        }
        std::thread::sleep(soak);
    }
    Ok(true)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first() else {
        eprintln!("usage: orchestrator ROOT [SOAK_SECONDS]");
        return ExitCode::from(2);
    };
    let soak = Duration::from_secs(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0));
    let opts = HostOptions {
        root: PathBuf::from(root),
        ..HostOptions::default()
    };
    match Host::open(opts).and_then(|host| roll_out(&host, soak)) {
        Ok(true) => {
            println!("every phase done");
            ExitCode::SUCCESS
        }
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
