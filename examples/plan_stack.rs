//! Plans a stack file against a scenario of installed and available versions
//! and prints the plan phase by phase.
//!
//! ```text
//! cargo run -p obs-upgrade-examples --example plan_stack -- \
//!     examples/stack.yaml examples/scenario.yaml [environment]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use upgrade_core::planner::{PlanInput, Release, plan};
use upgrade_core::version::Version;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    now: Timestamp,
    installed: BTreeMap<String, Version>,
    available: BTreeMap<String, BTreeMap<String, i64>>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(stack_path), Some(scenario_path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: plan_stack STACK_FILE SCENARIO_FILE [ENVIRONMENT]");
        return ExitCode::from(2);
    };
    let stack =
        match upgrade_cli::host::load_stack(Path::new(stack_path), args.get(2).map(String::as_str))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    let scenario: Scenario = match std::fs::read_to_string(scenario_path)
        .map_err(|e| e.to_string())
        .and_then(|t| yaml_serde::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {scenario_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut available = BTreeMap::new();
    for (name, versions) in &scenario.available {
        let mut releases = Vec::new();
        for (v, age_days) in versions {
            let version = match Version::parse(v) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {scenario_path}: available.{name}: {e}");
                    return ExitCode::from(2);
                }
            };
            releases.push(Release::new(
                version,
                Some(scenario.now - SignedDuration::from_hours(24 * age_days)),
            ));
        }
        available.insert(name.clone(), releases);
    }
    let p = plan(PlanInput {
        stack: &stack,
        installed: &scenario.installed,
        available: &available,
        now: scenario.now,
        holds: &upgrade_core::holds::Holds::default(),
        advisories: &std::collections::BTreeMap::new(),
    });

    println!(
        "environment: {}",
        stack.environment.as_deref().unwrap_or("(none)")
    );
    for phase in &p.phases {
        println!(
            "\nphase {} (on failure: {:?}{})",
            phase.name,
            phase.on_failure,
            if phase.atomic { ", atomic" } else { "" }
        );
        for s in &phase.steps {
            println!(
                "  {:<18} {} → {:<10} {:<6} risk {:<6} {}",
                s.component,
                s.from,
                s.to,
                s.change.to_string(),
                s.risk.to_string(),
                if s.needs_approval {
                    "needs approval"
                } else {
                    "auto"
                }
            );
            for r in s.risk_reasons.iter().skip(1).chain(&s.notes) {
                println!("  {:<18}   · {r}", "");
            }
        }
    }
    if !p.skipped.is_empty() {
        println!("\nskipped:");
        for s in &p.skipped {
            println!("  {:<18} {:?}", s.component, s.reason);
        }
    }
    if !p.blocked.is_empty() {
        println!("\nblocked:");
        for b in &p.blocked {
            println!("  {:<18} at {}: {:?}", b.component, b.installed, b.reason);
        }
    }
    for w in &p.warnings {
        println!("\nwarning: {}", w.message);
    }
    ExitCode::SUCCESS
}
