//! Values the shells complete from the stack file: component and phase
//! names, read from the stack that the words typed so far name (`--root`,
//! `--config`, or their variables); nothing when it does not load.

use std::ffi::OsString;
use std::path::PathBuf;

use clap_complete::CompletionCandidate;

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
