//! `metrics` and `timer`.

use std::path::Path;

use anyhow::{Context as _, Result};
use upgrade_cli::host::Host;
use upgrade_cli::ops;
use upgrade_systemd::systemctl::Systemd;
use upgrade_systemd::timers::{self, HostPaths, UNITS};

use crate::args::{Global, TimerCmd};
use crate::exit;
use crate::render::{self, Table};

pub fn metrics(g: &Global, host: &Host, write: bool, path: Option<&Path>) -> Result<u8> {
    if !write {
        print!("{}", ops::metrics(host)?);
        return Ok(exit::OK);
    }
    let path = ops::write_metrics(host, path)?;
    if g.json {
        render::json("metrics", &serde_json::json!({ "written": path }))?;
    } else if !g.quiet {
        println!("wrote {}", path.display());
    }
    Ok(exit::OK)
}

pub fn timer(g: &Global, host: &Host, t: &TimerCmd) -> Result<u8> {
    let dir = host.unit_dir();
    let systemd = host
        .uses_systemd()
        .then(|| Systemd::new(&g.root).with_unit_dir(&dir));
    match t {
        TimerCmd::Install { binary, no_enable } => {
            let binary = match binary {
                Some(b) => b.clone(),
                None => std::env::current_exe()
                    .context("cannot tell where this obs-upgrade is; pass --binary")?,
            };
            let mut args = Vec::new();
            if g.root != Path::new("/") {
                args.extend(["--root".to_owned(), g.root.display().to_string()]);
            }
            if let Some(c) = &g.config {
                args.extend(["--config".to_owned(), c.display().to_string()]);
            }
            let l = host.layout();
            let mut writable = vec![
                l.store_dir(),
                l.state_dir(),
                l.cache_dir(),
                l.bin_dir(),
                l.unit_dir(),
            ];
            if let Some(d) = host.metrics_path().parent() {
                writable.push(d.to_owned());
            }
            let units = timers::render(host.stack(), &binary, &args, &HostPaths { writable })
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
            let schedule = &host.stack().maintenance.schedule;
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
            if g.json {
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
