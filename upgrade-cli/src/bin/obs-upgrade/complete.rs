//! Shell completions, computed by the binary itself.
//!
//! `obs-upgrade completions <shell>` prints a short registration script; the
//! shell then calls `COMPLETE=<shell> obs-upgrade -- <words>` on each Tab and
//! this module answers (`clap_complete`'s engine: subcommands, options, enum
//! values, and component and phase names read from the stack file named by
//! the words typed so far: `--root`, `--config`, or their variables).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::CompletionCandidate;
use clap_complete::env::{CompleteEnv, Shells};

use crate::args::Cli;

/// The variable that turns a run into a completion request.
const VAR: &str = "COMPLETE";

/// Answers a completion request and exits, when this run is one.
pub fn answer_if_asked() {
    CompleteEnv::with_factory(Cli::command).var(VAR).complete();
}

/// The registration script for `shell` (bash, zsh, fish, elvish, powershell).
pub fn registration(shell: clap_complete::Shell) -> anyhow::Result<Vec<u8>> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| anyhow::anyhow!("no completions for {name}"))?;
    // As invoked when that is a bare name (found on PATH), else absolute.
    let invoked = PathBuf::from(std::env::args_os().next().unwrap_or_default());
    let program = if invoked.components().count() > 1 {
        std::env::current_exe().unwrap_or(invoked)
    } else {
        invoked
    };
    let mut buf = Vec::new();
    completer.write_registration(
        VAR,
        "obs-upgrade",
        "obs-upgrade",
        &program.to_string_lossy(),
        &mut buf,
    )?;
    Ok(buf)
}

/// The value of `--flag X` or `--flag=X` among the words being completed.
fn flag_value(words: &[OsString], flag: &str) -> Option<PathBuf> {
    let eq = format!("{flag}=");
    words.iter().enumerate().find_map(|(i, w)| {
        let w = w.to_str()?;
        if w == flag {
            words.get(i + 1).map(PathBuf::from)
        } else {
            w.strip_prefix(&eq).map(PathBuf::from)
        }
    })
}

/// The stack the words typed so far name (quietly nothing when it does not load).
fn stack() -> Option<upgrade_core::config::Stack> {
    let words: Vec<OsString> = std::env::args_os().collect();
    let env_path = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    let root = flag_value(&words, "--root")
        .or_else(|| env_path("OBS_UPGRADE_ROOT"))
        .unwrap_or_else(|| PathBuf::from("/"));
    let config = flag_value(&words, "--config").or_else(|| env_path("OBS_UPGRADE_CONFIG"));
    let opts = upgrade_cli::host::HostOptions {
        root,
        config,
        ..upgrade_cli::host::HostOptions::default()
    };
    upgrade_cli::host::Host::open(opts)
        .ok()
        .map(|h| h.stack().clone())
}

/// Component names, from the stack file (or the built-in catalog).
pub fn components() -> Vec<CompletionCandidate> {
    stack()
        .map(|s| {
            s.components
                .keys()
                .map(|k| CompletionCandidate::new(k.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// Phase names, from the stack file.
pub fn phases() -> Vec<CompletionCandidate> {
    stack()
        .map(|s| {
            s.phases
                .iter()
                .map(|p| CompletionCandidate::new(p.name.as_str()))
                .collect()
        })
        .unwrap_or_default()
}
