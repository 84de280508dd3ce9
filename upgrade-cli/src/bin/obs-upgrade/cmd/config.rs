//! `config`, `state`, `supervisor`, `completions` and `man`.

use anyhow::Result;
use clap::CommandFactory;

use crate::args::{Cli, ConfigCmd, Global, StateCmd, SupervisorCmd};
use crate::exit;
use crate::render::{self, Table};
use upgrade_cli::host::Host;
use upgrade_cli::ops;

const EXAMPLE: &str = include_str!("../../../../../examples/stack.yaml");

pub fn config(g: &Global, c: &ConfigCmd) -> Result<u8> {
    match c {
        ConfigCmd::Example => {
            print!("{EXAMPLE}");
            Ok(exit::OK)
        }
        ConfigCmd::Check => {
            let host = super::open(g)?;
            let report = ops::config_check(&host);
            if g.json {
                render::json("config-check", &report)?;
            } else {
                let src = report.source.as_ref().map_or_else(
                    || "the built-in catalog (no stack file)".to_owned(),
                    |p| p.display().to_string(),
                );
                println!(
                    "{src}: ok, {} components, environment {}",
                    report.components,
                    report.environment.as_deref().unwrap_or("(none)")
                );
            }
            Ok(exit::OK)
        }
        ConfigCmd::Show => {
            let host = super::open(g)?;
            let endpoints = ops::derived_endpoints(&host);
            if g.json {
                let mut value = serde_json::to_value(host.stack())?;
                if let Some(map) = value.as_object_mut() {
                    map.insert("endpoints".into(), serde_json::to_value(&endpoints)?);
                }
                render::json("config", &value)?;
            } else {
                print!("{}", yaml_serde::to_string(host.stack())?);
                println!("---");
                println!(
                    "# Where each service answers, derived from how it runs (not part of the \
                     stack file)"
                );
                let doc = std::collections::BTreeMap::from([("endpoints", &endpoints)]);
                print!("{}", yaml_serde::to_string(&doc)?);
            }
            Ok(exit::OK)
        }
    }
}

pub fn state(g: &Global, host: &Host, c: &StateCmd) -> Result<u8> {
    match c {
        StateCmd::Reset => {
            let out = ops::state_reset(host)?;
            if g.json {
                render::json("state-reset", &out)?;
            } else if out.healthy {
                println!("the state file reads cleanly; nothing was changed");
            } else {
                match &out.set_aside {
                    Some(p) => println!("set the state file aside as {}", p.display()),
                    None => println!("there was no state file"),
                }
                println!(
                    "{}",
                    if out.restored_good_copy {
                        "continued from the previous good copy"
                    } else {
                        "starting with an empty journal"
                    }
                );
            }
            Ok(exit::OK)
        }
    }
}

pub fn supervisor(g: &Global, host: &Host, c: &SupervisorCmd) -> Result<u8> {
    let (rows, verb) = match c {
        SupervisorCmd::Start { units } => (ops::supervisor_start(host, units)?, "running"),
        SupervisorCmd::Stop { units } => (ops::supervisor_stop(host, units)?, "stopped"),
        SupervisorCmd::Status => (ops::supervisor_status(host)?, ""),
    };
    if g.json {
        render::json("supervisor", &rows)?;
    } else if let SupervisorCmd::Status = c {
        let mut t = Table::new(&["SERVICE", "STATE", "PID"]);
        for r in rows {
            let state = if r.pid.is_some() {
                "running"
            } else {
                "stopped"
            };
            let pid = r.pid.map(|p| p.to_string()).unwrap_or_default();
            t.row(vec![r.unit, state.into(), pid]);
        }
        t.print();
    } else {
        for r in rows {
            match r.pid {
                Some(pid) => println!("{}: {verb} (pid {pid})", r.unit),
                None => println!("{}: {verb}", r.unit),
            }
        }
    }
    Ok(exit::OK)
}

pub fn completions(shell: clap_complete::Shell) -> u8 {
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "obs-upgrade",
        &mut std::io::stdout(),
    );
    exit::OK
}

pub fn man() -> Result<u8> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(exit::OK)
}
