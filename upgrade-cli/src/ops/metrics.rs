//! `metrics`: the self-metrics for the node exporter's textfile collector.

use std::collections::BTreeMap;
use std::path::Path;

use upgrade_core::journal::RunRecord;
use upgrade_core::planner::Release;
use upgrade_state::metrics::{self, ComponentNow, Input};
use upgrade_systemd::timers::UNITS;

use crate::Error;
use crate::host::{Host, Resolution};

fn input(host: &Host, res: &Resolution) -> Result<Input, Error> {
    let plan = host.plan(res)?;
    let components = host
        .stack()
        .components
        .keys()
        .map(|name| {
            let installed = res.installed.get(name);
            let newer: Vec<&Release> = res
                .available
                .get(name)
                .map(|rs| {
                    rs.iter()
                        .filter(|r| {
                            installed.is_some_and(|i| r.version.cmp_precedence(i).is_gt())
                                && !r.prerelease
                        })
                        .collect()
                })
                .unwrap_or_default();
            ComponentNow {
                name: name.clone(),
                installed: installed.map(ToString::to_string),
                versions_behind: newer.len() as u64,
                update_pending: plan.steps().any(|s| &s.component == name),
                outdated_since: newer.iter().filter_map(|r| r.published_at).min(),
            }
        })
        .collect();
    let last_check = std::fs::read_to_string(host.last_check_file())
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let unattended = host.unit_dir().join(UNITS[3]).exists();
    let holds = host.holds()?;
    let unfinished = host.last_run().filter(RunRecord::is_unfinished);
    let lock_free = matches!(
        host.paths().run_lock().probe(),
        Ok(upgrade_state::LockState::Free)
    );
    let advisories = plan
        .advisories
        .iter()
        .map(|f| metrics::AdvisoryNow {
            component: f.component.clone(),
            advisory: f.id.clone(),
            severity: f.severity.to_string(),
            fixed_in: f.fixed_in.as_ref().map(ToString::to_string),
        })
        .collect();
    Ok(Input {
        advisories,
        unfinished_since: unfinished.as_ref().map(|r| r.started_at),
        interrupted: unfinished.is_some() && lock_free,
        components,
        last_check,
        unattended,
        held: holds
            .held_versions()
            .map(|(c, v)| (c.to_owned(), v.to_string()))
            .collect(),
        failed_here: holds
            .bad
            .iter()
            .flat_map(|(c, l)| l.iter().map(|b| (c.clone(), b.version.to_string())))
            .collect(),
    })
}

fn render(host: &Host, res: &Resolution) -> Result<String, Error> {
    let history = upgrade_state::History::open(&host.paths().state_dir)?
        .read_all()?
        .records;
    Ok(metrics::render(&input(host, res)?, &history))
}

/// The self-metrics text (Prometheus exposition format).
pub fn metrics(host: &Host) -> Result<String, Error> {
    render(host, &host.resolve())
}

/// Writes the self-metrics to `path` (default: the stack's `metrics.textfile`),
/// atomically; returns the path written.
pub fn write_metrics(host: &Host, path: Option<&Path>) -> Result<std::path::PathBuf, Error> {
    let text = metrics(host)?;
    let path = path.map_or_else(|| host.metrics_path(), Path::to_owned);
    metrics::write(&path, &text)?;
    Ok(path)
}

/// After a run: installed versions again (they changed), releases and
/// advisories as listed before. A failure is logged, never fails the run.
pub(super) fn write_after_run(host: &Host, before: &Resolution) {
    let path = host.metrics_path();
    let (installed, _) = host.detect();
    let res = Resolution {
        installed,
        errors: BTreeMap::new(),
        ..before.clone()
    };
    match render(host, &res).and_then(|t| Ok(metrics::write(&path, &t)?)) {
        Ok(()) => log::info!("wrote {}", path.display()),
        Err(e) => log::warn!("cannot write the metrics file {}: {e}", path.display()),
    }
}
