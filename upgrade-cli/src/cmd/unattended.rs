//! `metrics` and `timer`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use upgrade_core::planner::Release;
use upgrade_core::ports::Inspector;
use upgrade_state::metrics::{self, ComponentNow, Input};
use upgrade_systemd::systemctl::Systemd;
use upgrade_systemd::timers::{self, HostPaths, UNITS};

use crate::args::TimerCmd;
use crate::ctx::{Ctx, Resolution};
use crate::exit;
use crate::render::{self, Table};

fn input(ctx: &Ctx, res: &Resolution) -> Input {
    let plan = ctx.plan(res);
    let components = ctx
        .stack
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
    let last_check = std::fs::read_to_string(ctx.last_check_file())
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let unattended = ctx.unit_dir().join(UNITS[3]).exists();
    Input {
        components,
        last_check,
        unattended,
    }
}

fn render_text(ctx: &Ctx, res: &Resolution) -> Result<String> {
    let history = upgrade_state::History::open(&ctx.paths().state_dir)?
        .read_all()?
        .records;
    Ok(metrics::render(&input(ctx, res), &history))
}

pub fn metrics(ctx: &Ctx, write: bool, path: Option<&Path>) -> Result<u8> {
    let res = ctx.resolve();
    let text = render_text(ctx, &res)?;
    if !write {
        print!("{text}");
        return Ok(exit::OK);
    }
    let path = path.map_or_else(|| ctx.metrics_path(), Path::to_owned);
    metrics::write(&path, &text)?;
    if ctx.global.json {
        render::json("metrics", &serde_json::json!({ "written": path }))?;
    } else if !ctx.global.quiet {
        println!("wrote {}", path.display());
    }
    Ok(exit::OK)
}

/// After a run: installed versions again (they changed), releases as listed before.
pub fn write_metrics_after_run(ctx: &Ctx, available: &BTreeMap<String, Vec<Release>>) {
    let inspector = ctx.inspector();
    let installed = ctx
        .stack
        .components
        .values()
        .filter_map(|c| {
            inspector
                .installed(c)
                .ok()
                .flatten()
                .map(|i| (c.name.clone(), i.version))
        })
        .collect();
    let res = Resolution {
        installed,
        available: available.clone(),
        errors: BTreeMap::new(),
    };
    let path = ctx.metrics_path();
    match render_text(ctx, &res)
        .map_err(|e| e.to_string())
        .and_then(|t| metrics::write(&path, &t).map_err(|e| e.to_string()))
    {
        Ok(()) => log::info!("wrote {}", path.display()),
        Err(e) => log::warn!("cannot write the metrics file {}: {e}", path.display()),
    }
}

pub fn timer(ctx: &Ctx, t: &TimerCmd) -> Result<u8> {
    let dir = ctx.unit_dir();
    let systemd = ctx
        .uses_systemd()
        .then(|| Systemd::new(&ctx.global.root).with_unit_dir(&dir));
    match t {
        TimerCmd::Install { binary, no_enable } => {
            let binary = match binary {
                Some(b) => b.clone(),
                None => std::env::current_exe()
                    .context("cannot tell where this obs-upgrade is; pass --binary")?,
            };
            let mut args = Vec::new();
            if ctx.global.root != Path::new("/") {
                args.extend(["--root".to_owned(), ctx.global.root.display().to_string()]);
            }
            if let Some(c) = &ctx.global.config {
                args.extend(["--config".to_owned(), c.display().to_string()]);
            }
            let l = &ctx.layout;
            let mut writable = vec![
                l.store_dir(),
                l.state_dir(),
                l.cache_dir(),
                l.bin_dir(),
                l.unit_dir(),
            ];
            if let Some(d) = ctx.metrics_path().parent() {
                writable.push(d.to_owned());
            }
            let units = timers::render(&ctx.stack, &binary, &args, &HostPaths { writable })
                .map_err(anyhow::Error::msg)?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for (name, text) in &units {
                let path = dir.join(name);
                let tmp = dir.join(format!(".{name}.tmp"));
                std::fs::write(&tmp, text)
                    .with_context(|| format!("cannot write {}", tmp.display()))?;
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            if let Some(sd) = &systemd {
                sd.daemon_reload()?;
                if !no_enable {
                    sd.systemctl(
                        "enable",
                        "obs-upgrade timers",
                        &["enable", "--now", UNITS[1], UNITS[3]],
                    )?;
                    println!("enabled {} and {}", UNITS[1], UNITS[3]);
                }
            } else {
                println!(
                    "systemd is not managing this root; enable the timers there with: systemctl enable --now {} {}",
                    UNITS[1], UNITS[3]
                );
            }
            Ok(exit::OK)
        }
        TimerCmd::Remove => {
            if let Some(sd) = &systemd {
                let _ = sd.systemctl(
                    "disable",
                    "obs-upgrade timers",
                    &["disable", "--now", UNITS[1], UNITS[3]],
                );
            }
            for name in UNITS {
                let path = dir.join(name);
                if path.exists() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                    println!("removed {}", path.display());
                }
            }
            if let Some(sd) = &systemd {
                sd.daemon_reload()?;
            }
            Ok(exit::OK)
        }
        TimerCmd::Status => {
            let schedule = &ctx.stack.maintenance.schedule;
            let now = jiff::Timestamp::now();
            let rows: Vec<(String, bool, String)> = UNITS
                .iter()
                .map(|u| {
                    let enabled = systemd
                        .as_ref()
                        .and_then(|sd| sd.systemctl("is-enabled", u, &["is-enabled", u]).ok())
                        .map_or_else(|| "-".to_owned(), |s| s.trim().to_owned());
                    ((*u).to_owned(), dir.join(u).exists(), enabled)
                })
                .collect();
            if ctx.global.json {
                let units: Vec<_> = rows
                    .iter()
                    .map(|(u, i, e)| serde_json::json!({"unit": u, "installed": i, "enabled": e}))
                    .collect();
                render::json(
                    "timer-status",
                    &serde_json::json!({ "units": units, "window_open": schedule.is_open(now), "next_window": schedule.next_opening(now) }),
                )?;
            } else {
                let mut t = Table::new(&["UNIT", "INSTALLED", "ENABLED"]);
                for (u, i, e) in rows {
                    t.row(vec![u, if i { "yes".into() } else { "no".into() }, e]);
                }
                t.print();
                match (
                    schedule.windows.is_empty(),
                    schedule.is_open(now),
                    schedule.next_opening(now),
                ) {
                    (true, ..) => println!("no maintenance windows are defined"),
                    (false, true, _) => println!("a maintenance window is open now"),
                    (false, false, Some(n)) => println!("the next maintenance window opens at {n}"),
                    (false, false, None) => {
                        println!("no maintenance window opens in the next 400 days");
                    }
                }
            }
            Ok(exit::OK)
        }
    }
}
