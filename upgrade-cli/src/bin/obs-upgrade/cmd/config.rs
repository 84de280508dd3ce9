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
            if g.json {
                render::json("config-example", &serde_json::json!({ "yaml": EXAMPLE }))?;
            } else {
                out!("{EXAMPLE}");
            }
            Ok(exit::OK)
        }
        ConfigCmd::Check => {
            let host = super::open(g)?;
            let report = ops::config_check(&host)?;
            if g.json {
                render::json("config-check", &report)?;
            } else {
                let src = report.source.as_ref().map_or_else(
                    || "the built-in catalog (no stack file)".to_owned(),
                    |p| p.display().to_string(),
                );
                outln!(
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
                out!("{}", yaml_serde::to_string(host.stack())?);
                outln!("---");
                outln!(
                    "# Where each service answers, derived from how it runs (not part of the \
                     stack file)"
                );
                let doc = std::collections::BTreeMap::from([("endpoints", &endpoints)]);
                out!("{}", yaml_serde::to_string(&doc)?);
            }
            Ok(exit::OK)
        }
    }
}

pub fn state(g: &Global, host: &Host, c: &StateCmd) -> Result<u8> {
    match c {
        StateCmd::Reset { force } => {
            let out = ops::state_reset(host, *force)?;
            if g.json {
                render::json("state-reset", &out)?;
            } else if out.healthy {
                match &out.set_aside {
                    Some(p) => outln!(
                        "set the state file aside as {} (forced); the journal starts empty",
                        p.display()
                    ),
                    None => outln!("there was no state file; nothing was changed"),
                }
            } else {
                match &out.set_aside {
                    Some(p) => outln!("set the state file aside as {}", p.display()),
                    None => outln!("there was no state file"),
                }
                outln!(
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
        render::json("supervisor", &serde_json::json!({ "services": rows }))?;
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
        t.print()?;
    } else {
        for r in rows {
            match r.pid {
                Some(pid) => outln!("{}: {verb} (pid {pid})", r.unit),
                None => outln!("{}: {verb}", r.unit),
            }
        }
    }
    Ok(exit::OK)
}

pub fn completions(shell: clap_complete::Shell) -> Result<u8> {
    crate::out::bytes(&crate::complete::registration(shell)?)?;
    Ok(exit::OK)
}

/// The command tree the manual pages describe (help subcommands left out).
fn man_tree() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every page: `obs-upgrade`, `obs-upgrade-apply`, `obs-upgrade-hold-add`, ….
fn man_pages(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, out);
    }
}

pub fn man(g: &Global, command: &[String], dir: Option<&std::path::Path>) -> Result<u8> {
    let tree = man_tree();
    if let Some(dir) = dir {
        let mut pages = Vec::new();
        man_pages(&tree, &mut pages);
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let mut written = Vec::new();
        for page in pages {
            let man = clap_mangen::Man::new(page);
            let path = man.generate_to(dir).map_err(|e| {
                anyhow::anyhow!("cannot write a manual page in {}: {e}", dir.display())
            })?;
            written.push(path);
        }
        if g.json {
            render::json("man", &serde_json::json!({ "written": written }))?;
        } else {
            for p in &written {
                outln!("wrote {}", p.display());
            }
        }
        return Ok(exit::OK);
    }
    let mut cmd = &tree;
    for (i, word) in command.iter().enumerate() {
        cmd = cmd.find_subcommand(word).ok_or_else(|| {
            let known: Vec<&str> = cmd.get_subcommands().map(clap::Command::get_name).collect();
            upgrade_cli::Error::Usage(format!(
                "no manual page for `{}`{}; commands: {}",
                command[..=i].join(" "),
                upgrade_core::suggest::hint(word, known.iter().copied()),
                known.join(", ")
            ))
        })?;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    crate::out::bytes(&page)?;
    Ok(exit::OK)
}
