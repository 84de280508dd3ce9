//! `metrics` and `timer`.

use std::path::Path;

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops;
use upgrade_systemd::timers::UNITS;

use crate::args::{Global, TimerCmd};
use crate::exit;
use crate::render::{self, Table};

pub fn metrics(g: &Global, host: &Host, write: bool, path: Option<&Path>) -> Result<u8> {
    if !write {
        let text = ops::metrics(host)?;
        if g.json {
            render::json("metrics-text", &serde_json::json!({ "text": text }))?;
        } else {
            out!("{text}");
        }
        return Ok(exit::OK);
    }
    let path = ops::write_metrics(host, path)?;
    if g.json {
        render::json("metrics", &serde_json::json!({ "written": path }))?;
    } else if !g.quiet {
        outln!("wrote {}", path.display());
    }
    Ok(exit::OK)
}

pub fn timer(g: &Global, host: &Host, t: &TimerCmd) -> Result<u8> {
    match t {
        TimerCmd::Install { binary, no_enable } => {
            let opts = ops::TimerInstallOptions {
                binary: binary.clone(),
                no_enable: *no_enable,
            };
            let report = ops::timer_install(host, &opts)?;
            if g.json {
                render::json("timer-install", &report)?;
            } else {
                for p in &report.written {
                    outln!("wrote {}", p.display());
                }
                if !report.enabled.is_empty() {
                    outln!("enabled {}", report.enabled.join(" and "));
                } else if !report.systemd {
                    outln!(
                        "systemd is not managing this root; enable the timers there with: \
                         systemctl enable --now {} {}",
                        UNITS[1],
                        UNITS[3]
                    );
                }
            }
        }
        TimerCmd::Remove => {
            let report = ops::timer_remove(host)?;
            if g.json {
                render::json("timer-remove", &report)?;
            } else {
                for p in &report.removed {
                    outln!("removed {}", p.display());
                }
            }
        }
        TimerCmd::Status => {
            let status = ops::timer_status(host);
            if g.json {
                render::json("timer-status", &status)?;
                return Ok(exit::OK);
            }
            let mut t = Table::new(&["UNIT", "INSTALLED", "ENABLED"]);
            for u in &status.units {
                let installed = if u.installed { "yes" } else { "no" };
                t.row(vec![u.unit.clone(), installed.into(), u.enabled.clone()]);
            }
            t.print()?;
            match (
                status.windows_defined,
                status.window_open,
                status.next_window,
            ) {
                (false, ..) => outln!("no maintenance windows are defined"),
                (true, true, _) => outln!("a maintenance window is open now"),
                (true, false, Some(n)) => outln!("the next maintenance window opens at {n}"),
                (true, false, None) => {
                    outln!("no maintenance window opens in the next 400 days");
                }
            }
        }
    }
    Ok(exit::OK)
}
