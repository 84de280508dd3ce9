//! Shell completions, computed by the binary itself.
//!
//! `obs-upgrade completions <shell>` prints a short registration script;
//! the shell then calls `OBS_UPGRADE_COMPLETE=<shell> obs-upgrade -- <words>`
//! on each Tab and this module answers (`clap_complete`'s engine: subcommands, options, enum
//! values, and component and phase names read from the stack file named by
//! the words typed so far: `--root`, `--config`, or their variables).

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::env::{CompleteEnv, Shells};

use crate::args::Cli;

/// The variable that turns a run into a completion request (not clap's
/// generic `COMPLETE`, which another program may have set).
const VAR: &str = "OBS_UPGRADE_COMPLETE";

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
