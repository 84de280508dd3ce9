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
/// Permission denied: run as root (sysexits' `EX_NOPERM`).
pub const PERMISSION: u8 = 77;
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

/// The I/O error an operation's error wraps (its variants are transparent,
/// so the chain does not show it).
fn io_of(e: &upgrade_cli::Error) -> Option<&upgrade_state::fsutil::IoError> {
    use upgrade_cli::Error as E;
    match e {
        E::Io(io)
        | E::State(upgrade_state::state::Error::Io(io))
        | E::Lock(upgrade_state::lock::Error::Io(io))
        | E::Holds(upgrade_state::holds::Error::Io(io))
        | E::History(upgrade_state::history::Error::Io(io)) => Some(io),
        _ => None,
    }
}

/// Whether a permission problem is anywhere in the chain.
fn permission_denied(e: &anyhow::Error) -> bool {
    let denied = |k: std::io::ErrorKind| k == std::io::ErrorKind::PermissionDenied;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| denied(io.kind()))
            || c.downcast_ref::<upgrade_state::fsutil::IoError>()
                .is_some_and(|io| denied(io.cause.kind()))
            || c.downcast_ref::<upgrade_cli::Error>()
                .and_then(io_of)
                .is_some_and(|io| denied(io.cause.kind()))
    })
}

fn code_for(e: &anyhow::Error) -> u8 {
    if permission_denied(e) {
        return PERMISSION;
    }
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

/// The crates of this workspace: their records are the tool's own.
const OWN: [&str; 6] = [
    "obs_upgrade",
    "upgrade_cli",
    "upgrade_core",
    "upgrade_fetch",
    "upgrade_state",
    "upgrade_systemd",
];

/// The log filter for `-q`/`-v`/`-vv`: the tool's own records at the chosen
/// level, other crates' only warnings (`RUST_LOG` replaces all of it).
fn log_filter(verbose: u8, quiet: bool) -> String {
    let own = match (quiet, verbose) {
        (true, _) => return "error".to_owned(),
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    std::iter::once("warn".to_owned())
        .chain(OWN.iter().map(|c| format!("{c}={own}")))
        .collect::<Vec<_>>()
        .join(",")
}

fn init_logging(verbose: u8, quiet: bool, color: bool) {
    use std::io::Write as _;
    let env = env_logger::Env::default().default_filter_or(log_filter(verbose, quiet));
    let logger = env_logger::Builder::from_env(env)
        .write_style(if color {
            env_logger::WriteStyle::Always
        } else {
            env_logger::WriteStyle::Never
        })
        .format(|buf, record| {
            let style = buf.default_level_style(record.level());
            let level = record.level().as_str().to_ascii_lowercase();
            let target = record.target();
            if OWN.iter().any(|c| target.starts_with(c)) {
                writeln!(buf, "{style}{level}{style:#}: {}", record.args())
            } else {
                writeln!(buf, "{style}{level}{style:#} [{target}]: {}", record.args())
            }
        })
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

/// The one colour decision, for tables on stdout and log lines on stderr:
/// `always` and `never` hold for both; `auto` colours a stream that is a
/// terminal, unless `NO_COLOR` is set (or `TERM` is `dumb`).
#[derive(Debug, Clone, Copy)]
pub struct Colors {
    pub stdout: bool,
    pub stderr: bool,
}

impl Colors {
    pub fn decide(choice: ColorChoice) -> Self {
        use std::io::IsTerminal as _;
        match choice {
            ColorChoice::Always => Colors {
                stdout: true,
                stderr: true,
            },
            ColorChoice::Never => Colors {
                stdout: false,
                stderr: false,
            },
            ColorChoice::Auto => {
                let wanted = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
                Colors {
                    stdout: wanted && std::io::stdout().is_terminal(),
                    stderr: wanted && std::io::stderr().is_terminal(),
                }
            }
        }
    }
}

/// Whether to colour stdout.
pub fn color_enabled(choice: ColorChoice) -> bool {
    Colors::decide(choice).stdout
}

/// The word for an exit code in the JSON error object (`config` for a
/// stack file error, which exits 2 like a usage error).
fn kind(code: u8) -> &'static str {
    match code {
        USAGE => "usage",
        LOCKED => "locked",
        INTERRUPTED => "interrupted",
        STOPPED => "stopped",
        PERMISSION => "permission",
        _ => "failed",
    }
}

/// The documented error object (`obs-upgrade/error/v1`), printed on stdout
/// under `--json` for every failure.
#[derive(Debug, serde::Serialize)]
struct ErrorObject {
    schema: &'static str,
    ok: bool,
    exit_code: u8,
    kind: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl ErrorObject {
    fn new(code: u8, message: String) -> Self {
        ErrorObject {
            schema: "obs-upgrade/error/v1",
            ok: false,
            exit_code: code,
            kind: kind(code),
            message,
            causes: Vec::new(),
            file: None,
            line: None,
            column: None,
            key: None,
        }
    }

    fn of(e: &anyhow::Error, code: u8, message: String) -> Self {
        use upgrade_core::config::Error as Config;
        let mut o = ErrorObject::new(code, message);
        o.causes = e.chain().skip(1).map(ToString::to_string).collect();
        o.causes.dedup();
        let config = e.chain().find_map(|c| {
            c.downcast_ref::<Config>()
                .or_else(|| match c.downcast_ref::<upgrade_cli::Error>() {
                    Some(upgrade_cli::Error::Config(inner)) => Some(inner),
                    _ => None,
                })
        });
        if let Some(c) = config {
            o.kind = "config";
            match c {
                Config::Syntax {
                    file,
                    line,
                    column,
                    key,
                    ..
                } => {
                    o.file = Some(file.clone());
                    o.line = (*line > 0).then_some(*line);
                    o.column = (*column > 0).then_some(*column);
                    o.key = Some(key.trim_end_matches(": ").to_owned()).filter(|k| !k.is_empty());
                }
                Config::Invalid { file, key, .. } => {
                    o.file = Some(file.clone());
                    o.key = Some(key.clone());
                }
                Config::Read { path, .. } | Config::UnknownFormat { path } => {
                    o.file = Some(path.display().to_string());
                }
                _ => {}
            }
        }
        o
    }

    fn print(&self) {
        if let Ok(text) = serde_json::to_string_pretty(self) {
            let _ = crate::out::text(&format!("{text}\n"));
        }
    }
}

/// Whether `--json` was asked for (looked up before parsing, so that a
/// usage error can answer in JSON too).
fn json_requested() -> bool {
    std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

pub fn run() -> ExitCode {
    crate::complete::answer_if_asked();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && json_requested() => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            let message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
            let mut o = ErrorObject::new(USAGE, message);
            o.causes = text
                .lines()
                .skip(1)
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            o.print();
            return ExitCode::from(USAGE);
        }
        Err(e) => e.exit(),
    };
    let colors = Colors::decide(cli.global.color);
    init_logging(cli.global.verbose, cli.global.quiet, colors.stderr);
    match crate::cmd::dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = code_for(&e);
            if code == OK || e.downcast_ref::<Exit>().is_some() {
                return ExitCode::from(code);
            }
            let mut message = format!("{e:#}");
            if code == PERMISSION {
                message.push_str("; run as root (or with sudo)");
            }
            if cli.global.json {
                ErrorObject::of(&e, code, message).print();
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(code)
        }
    }
}
