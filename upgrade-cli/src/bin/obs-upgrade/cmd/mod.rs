//! One module per command group: arguments → options → one library call → render.

mod apply;
mod check;
mod config;
mod fleet;
mod memory;
mod rollback;
mod status;
mod unattended;

use anyhow::Result;
use upgrade_cli::host::{Host, HostOptions, ServiceManager as Manager};
use upgrade_core::engine::Scope;

use crate::args::{Cli, Command, Global, MirrorCmd, Selection, ServiceManager};

/// The host options the global flags describe.
pub fn host_options(g: &Global) -> HostOptions {
    HostOptions {
        root: g.root.clone(),
        config: g.config.clone(),
        environment: g.environment.clone(),
        offline: g.offline,
        service_manager: match g.service_manager {
            ServiceManager::Auto => Manager::Auto,
            ServiceManager::Systemd => Manager::Systemd,
            ServiceManager::Supervisor => Manager::Supervisor,
        },
        wait_lock: g.wait_lock.map(std::time::Duration::from_secs),
        github_api: g.github_api.clone(),
        unit_dir: g.unit_dir.clone(),
        mirror: g.mirror.clone(),
        pins: g.pins.clone(),
        list_concurrency: g
            .list_concurrency
            .map_or(HostOptions::default().list_concurrency, usize::from),
        ..HostOptions::default()
    }
}

/// Opens the host the global flags name.
pub fn open(g: &Global) -> Result<Host> {
    Ok(Host::open(host_options(g))?)
}

/// The scope a selection names.
pub fn scope(sel: &Selection) -> Scope {
    match (&sel.component, &sel.phase) {
        (Some(c), _) => Scope::Component { name: c.clone() },
        (None, Some(p)) => Scope::Phase { name: p.clone() },
        (None, None) => Scope::All,
    }
}

/// Runs the command; the exit code on success.
pub fn dispatch(cli: &Cli) -> Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Completions { shell } => config::completions(*shell),
        Command::Man { command, dir } => config::man(g, command, dir.as_deref()),
        Command::Config(c) => config::config(g, c),
        Command::Supervisor(c) => config::supervisor(g, &open(g)?, c),
        Command::State(c) => config::state(g, &open(g)?, c),
        Command::Hold(c) => memory::hold(g, &open(g)?, c),
        Command::Unmanage { component } => memory::unmanage(g, &open(g)?, component),
        Command::Quarantine(c) => memory::quarantine(g, &open(g)?, c),
        Command::Check { exit_code, notify } => check::check(g, &open(g)?, *exit_code, *notify),
        Command::Metrics { write, path } => {
            unattended::metrics(g, &open(g)?, *write, path.as_deref())
        }
        Command::Timer(t) => unattended::timer(g, &open(g)?, t),
        Command::Pin {
            output,
            from,
            set,
            mirror_url,
            platform,
        } => fleet::pin(
            g,
            &open(g)?,
            &fleet::PinArgs {
                output: output.clone(),
                from: from.clone(),
                set: set.clone(),
                mirror_url: mirror_url.clone(),
                platform: platform.clone(),
            },
        ),
        Command::Mirror(MirrorCmd::Fill { dir, pins, from }) => {
            fleet::mirror_fill(g, &open(g)?, dir, pins, from.as_deref())
        }
        Command::Plan { selection, notes } => check::plan(g, &open(g)?, selection, *notes),
        Command::Stage(sel) => apply::stage(g, &open(g)?, sel),
        Command::Apply {
            selection,
            dry_run,
            mode,
            yes,
            unattended,
            allow_unhealthy,
            ignore_holds,
        } => apply::apply(
            g,
            &open(g)?,
            selection,
            &apply::ApplyArgs {
                dry_run: *dry_run,
                mode: *mode,
                yes: *yes,
                unattended: *unattended,
                allow_unhealthy: *allow_unhealthy,
                ignore_holds: *ignore_holds,
            },
        ),
        Command::Resume => apply::resume(g, &open(g)?),
        Command::Status => status::status(g, &open(g)?),
        Command::History {
            component,
            limit,
            stats,
        } => status::history(g, &open(g)?, component.as_deref(), *limit, *stats),
        Command::Versions => status::versions(g, &open(g)?),
        Command::Rollback {
            component,
            to,
            run,
            previous,
            list,
        } => rollback::rollback(
            g,
            &open(g)?,
            &rollback::RollbackArgs {
                component: component.clone(),
                to: to.clone(),
                run: run.clone(),
                previous: *previous,
                list: *list,
            },
        ),
        Command::Prune {
            keep,
            backup_days,
            dry_run,
        } => rollback::prune(g, &open(g)?, *keep, *backup_days, *dry_run),
    }
}
