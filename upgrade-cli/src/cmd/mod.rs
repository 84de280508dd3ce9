//! One module per command group; each turns arguments into a library call.

mod apply;
mod check;
mod config;
mod rollback;
mod status;
mod unattended;

use anyhow::Result;
use upgrade_core::planner::{BlockReason, SkipReason};

use crate::args::{Cli, Command};
use crate::ctx::Ctx;

/// Runs the command; the exit code on success.
pub fn dispatch(cli: &Cli) -> Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Completions { shell } => Ok(config::completions(*shell)),
        Command::Man => config::man(),
        Command::Config(c) => config::config(g, c),
        Command::Supervisor(c) => config::supervisor(&Ctx::load(g)?, c),
        Command::State(c) => config::state(&Ctx::load(g)?, c),
        Command::Check { exit_code, notify } => check::check(&Ctx::load(g)?, *exit_code, *notify),
        Command::Metrics { write, path } => {
            unattended::metrics(&Ctx::load(g)?, *write, path.as_deref())
        }
        Command::Timer(t) => unattended::timer(&Ctx::load(g)?, t),
        Command::Plan(sel) => check::plan(&Ctx::load(g)?, sel),
        Command::Stage(sel) => apply::stage(&Ctx::load(g)?, sel),
        Command::Apply {
            selection,
            dry_run,
            mode,
            yes,
            unattended,
            allow_unhealthy,
        } => apply::apply(
            &Ctx::load(g)?,
            selection,
            &apply::ApplyArgs {
                dry_run: *dry_run,
                mode: *mode,
                yes: *yes,
                unattended: *unattended,
                allow_unhealthy: *allow_unhealthy,
            },
        ),
        Command::Resume => apply::resume(&Ctx::load(g)?),
        Command::Status => status::status(&Ctx::load(g)?),
        Command::History {
            component,
            limit,
            stats,
        } => status::history(&Ctx::load(g)?, component.as_deref(), *limit, *stats),
        Command::Versions => status::versions(&Ctx::load(g)?),
        Command::Rollback {
            component,
            to,
            run,
            previous,
            list,
        } => rollback::rollback(
            &Ctx::load(g)?,
            component.as_deref(),
            to.as_deref(),
            run.as_deref(),
            *previous,
            *list,
        ),
        Command::Prune {
            keep,
            backup_days,
            dry_run,
        } => rollback::prune(&Ctx::load(g)?, *keep, *backup_days, *dry_run),
    }
}

/// A skip reason in words.
pub fn skip_text(r: &SkipReason) -> String {
    match r {
        SkipReason::NotInstalled => "not installed".into(),
        SkipReason::UpToDate { installed } => format!("up to date ({installed})"),
        SkipReason::PolicyNone { available } => {
            format!("policy `allow: none` ({available} available)")
        }
        SkipReason::Pinned { version } => format!("pinned at {version}"),
    }
}

/// A block reason in words.
pub fn block_text(r: &BlockReason) -> String {
    match r {
        BlockReason::Incompatible { wanted, rule } => format!("{wanted} is incompatible: {rule}"),
        BlockReason::Denied { version } => format!("{version} is denied by policy"),
        BlockReason::TooNew {
            version,
            eligible_at,
        } => match eligible_at {
            Some(at) => format!(
                "{version} is younger than min_release_age (eligible at {})",
                at.round(jiff::Unit::Minute).unwrap_or(*at)
            ),
            None => format!("{version} has no publish date to check min_release_age against"),
        },
        BlockReason::NoMatch { track } => format!("no release matches `{track}`"),
        BlockReason::SteppingStoneMissing { via, crossing } => {
            format!("crossing {crossing} needs a stepping stone in {via}, and none is published")
        }
    }
}
