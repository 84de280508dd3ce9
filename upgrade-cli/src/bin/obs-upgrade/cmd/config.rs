//! `config`, `state`, `supervisor`, `completions` and `man`.

use anyhow::Result;
use clap::CommandFactory;

use crate::args::{Cli, ConfigCmd, Global, StateCmd, SupervisorCmd};
use crate::exit;
use crate::render::{self, Table};
use upgrade_cli::host::Host;

const EXAMPLE: &str = include_str!("../../../../../examples/stack.yaml");

pub fn config(g: &Global, c: &ConfigCmd) -> Result<u8> {
    match c {
        ConfigCmd::Example => {
            print!("{EXAMPLE}");
            Ok(exit::OK)
        }
        ConfigCmd::Check => {
            let host = super::open(g)?;
            let stack = host.stack();
            if g.json {
                render::json(
                    "config-check",
                    &serde_json::json!({ "ok": true, "components": stack.components.len(), "environment": stack.environment }),
                )?;
            } else {
                let src = stack.source.as_ref().map_or_else(
                    || "the built-in catalog (no stack file)".to_owned(),
                    |p| p.display().to_string(),
                );
                println!(
                    "{src}: ok, {} components, environment {}",
                    stack.components.len(),
                    stack.environment.as_deref().unwrap_or("(none)")
                );
            }
            Ok(exit::OK)
        }
        ConfigCmd::Show => {
            let host = super::open(g)?;
            if g.json {
                render::json("config", host.stack())?;
            } else {
                print!("{}", yaml_serde::to_string(host.stack())?);
            }
            Ok(exit::OK)
        }
    }
}

pub fn state(_g: &Global, host: &Host, c: &StateCmd) -> Result<u8> {
    match c {
        StateCmd::Reset => {
            let _lock = host.lock()?;
            let store = upgrade_state::StateStore::open(&host.paths().state_dir)?;
            let out = store.reset_damaged()?;
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
            Ok(exit::OK)
        }
    }
}

pub fn supervisor(_g: &Global, host: &Host, c: &SupervisorCmd) -> Result<u8> {
    let sup = host.supervisor();
    let all: Vec<String> = host
        .stack()
        .components
        .values()
        .map(|c| c.spec.unit.clone())
        .filter(|u| sup.spec(u).is_ok())
        .collect();
    let pick = |units: &Vec<String>| {
        if units.is_empty() {
            all.clone()
        } else {
            units.clone()
        }
    };
    match c {
        SupervisorCmd::Start { units } => {
            for u in pick(units) {
                let pid = sup.start_service(&u)?;
                println!("{u}: running (pid {pid})");
            }
        }
        SupervisorCmd::Stop { units } => {
            for u in pick(units) {
                sup.stop_service(&u)?;
                println!("{u}: stopped");
            }
        }
        SupervisorCmd::Status => {
            let mut t = Table::new(&["SERVICE", "STATE", "PID"]);
            for u in &all {
                let pid = sup.running_pid(u);
                t.row(vec![
                    u.clone(),
                    if pid.is_some() {
                        "running".into()
                    } else {
                        "stopped".into()
                    },
                    pid.map(|p| p.to_string()).unwrap_or_default(),
                ]);
            }
            t.print();
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
