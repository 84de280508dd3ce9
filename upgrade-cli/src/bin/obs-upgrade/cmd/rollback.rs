//! `rollback` and `prune`: arguments → options → one library call → render.

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, PruneOptions, RollbackTarget};
use upgrade_core::version::Version;

use crate::args::Global;
use crate::exit;
use crate::render::{self, Table};
use crate::signals;
use crate::terminal::Terminal;

pub struct RollbackArgs {
    pub component: Option<String>,
    pub to: Option<String>,
    pub run: Option<String>,
    pub previous: bool,
    pub list: bool,
}

pub fn rollback(g: &Global, host: &Host, a: &RollbackArgs) -> Result<u8> {
    if a.list {
        let list = ops::rollback_list(host)?;
        if g.json {
            render::json("rollback-list", &list)?;
        } else {
            render::versions(&list.components)?;
            if !list.runs.is_empty() {
                outln!();
                let mut t = Table::new(&["RUN", "FINISHED", "UPGRADED"]);
                for r in &list.runs {
                    t.row(vec![
                        r.run_id.clone(),
                        r.finished_at.clone(),
                        r.upgraded.join(", "),
                    ]);
                }
                t.print()?;
            }
        }
        return Ok(exit::OK);
    }
    let target = match (&a.component, &a.to, &a.run, a.previous) {
        (Some(c), Some(v), None, _) => RollbackTarget::ComponentTo {
            component: c.clone(),
            version: Version::parse(v)
                .map_err(|e| upgrade_cli::Error::Usage(format!("--to {v}: {e}")))?,
        },
        (Some(c), None, None, true) => RollbackTarget::ComponentPrevious {
            component: c.clone(),
        },
        (None, None, Some(id), _) => RollbackTarget::Run { run_id: id.clone() },
        (None, None, None, true) => RollbackTarget::LastRun,
        _ => {
            return Err(upgrade_cli::Error::Usage(
                "say what to roll back: --component X --previous | --component X --to VERSION \
                 | --run RUN_ID | --previous | --list"
                    .into(),
            )
            .into());
        }
    };
    let stop = &host.options().stop;
    signals::stop_on_signals(stop);
    let report = ops::rollback(host, &target, &Terminal::new(g, true, stop))?;
    let code = render::run_report(g, &report, 0)?;
    Ok(signals::exit_code(stop, code))
}

pub fn prune(
    g: &Global,
    host: &Host,
    keep: Option<usize>,
    backup_days: Option<u64>,
    dry_run: bool,
) -> Result<u8> {
    let opts = PruneOptions {
        keep,
        backup_days,
        dry_run,
    };
    let report = ops::prune(host, &opts)?;
    if g.json {
        render::json("prune", &report)?;
        return Ok(exit::OK);
    }
    let backups = &report.backups_removed;
    if report.removed.is_empty() {
        outln!(
            "Nothing to prune (keeping {} versions per component, the current and the last \
                known-good).",
            report.keep
        );
    }
    for (name, vs) in &report.removed {
        outln!(
            "{} {name} {}",
            if dry_run { "would remove" } else { "removed" },
            vs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for b in backups {
        outln!("removed backup {}", b.display());
    }
    Ok(exit::OK)
}
