//! Running a command and mapping errors to the documented exit codes.

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, ColorChoice};

/// Exit codes (see `obs-upgrade --help`).
pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const LOCKED: u8 = 3;
pub const INTERRUPTED: u8 = 4;
pub const STOPPED: u8 = 5;
pub const UPDATES: u8 = 100;

/// An exit with a code and nothing more to print.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// The exit code of an operation's error (its variants wrap their causes
/// transparently, so the chain below it does not show them).
fn op_code(e: &upgrade_cli::Error) -> u8 {
    use upgrade_core::engine::Error as Engine;
    match e {
        upgrade_cli::Error::Usage(_)
        | upgrade_cli::Error::Config(_)
        | upgrade_cli::Error::State(_)
        | upgrade_cli::Error::Engine(Engine::Damaged(_) | Engine::Scope(_)) => USAGE,
        upgrade_cli::Error::Lock(l) if !matches!(l, upgrade_state::lock::Error::Io(_)) => LOCKED,
        upgrade_cli::Error::Engine(Engine::InProgress { .. } | Engine::Journal(_)) => INTERRUPTED,
        _ => FAILED,
    }
}

fn code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(op) = cause.downcast_ref::<upgrade_cli::Error>() {
            return op_code(op);
        }
        if let Some(Exit(c)) = cause.downcast_ref::<Exit>() {
            return *c;
        }
        if cause
            .downcast_ref::<upgrade_state::lock::Error>()
            .is_some_and(|l| !matches!(l, upgrade_state::lock::Error::Io(_)))
        {
            return LOCKED;
        }
        if cause
            .downcast_ref::<upgrade_core::config::Error>()
            .is_some()
        {
            return USAGE;
        }
        if let Some(engine) = cause.downcast_ref::<upgrade_core::engine::Error>() {
            return match engine {
                upgrade_core::engine::Error::InProgress { .. }
                | upgrade_core::engine::Error::Journal(_) => INTERRUPTED,
                upgrade_core::engine::Error::Scope(_) | upgrade_core::engine::Error::Damaged(_) => {
                    USAGE
                }
                _ => FAILED,
            };
        }
        if cause
            .downcast_ref::<upgrade_state::state::Error>()
            .is_some()
        {
            return USAGE;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return OK;
        }
    }
    FAILED
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let env = env_logger::Env::default().default_filter_or(level);
    let logger = env_logger::Builder::from_env(env)
        .format_timestamp(None)
        .format_target(false)
        .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(NoWire(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// The logger, minus the HTTP library's wire dumps: at trace level it logs
/// every byte sent, the `Authorization` header included. No `RUST_LOG`
/// setting brings them back.
struct NoWire(env_logger::Logger);

impl NoWire {
    fn is_wire(meta: &log::Metadata<'_>) -> bool {
        meta.level() == log::Level::Trace
            && ["ureq", "rustls"]
                .iter()
                .any(|c| meta.target().starts_with(c))
    }
}

impl log::Log for NoWire {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        !Self::is_wire(meta) && self.0.enabled(meta)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !Self::is_wire(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Whether to color output.
pub fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
        }
    }
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.quiet);
    match crate::cmd::dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = code_for(&e);
            if code != OK && e.downcast_ref::<Exit>().is_none() {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}
