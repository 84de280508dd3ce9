//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;

use crate::candidates;

/// Keeps a self-hosted observability stack (Prometheus, Alertmanager, the
/// exporters, Loki, Promtail/Alloy) up to date, safely: plan, download and
/// verify, back up, switch atomically, restart, health-check, roll back by
/// itself.
#[derive(Debug, Parser)]
#[command(
    name = "obs-upgrade",
    version = VERSION,
    propagate_version = true,
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// `0.1.0 (commit 1a2b3c4d5e6f, 2026-11-21)`: the commit it was built from and its date.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OBS_UPGRADE_COMMIT"),
    ", ",
    env!("OBS_UPGRADE_COMMIT_DATE"),
    ")"
);

pub const EXIT_CODES: &str = concat!(
    "Exit codes:\n",
    "  0    done, or nothing to do\n",
    "  1    failed (and rolled back where it had switched)\n",
    "  2    usage or configuration error\n",
    "  3    another run holds the lock\n",
    "  4    interrupted: run `obs-upgrade resume`\n",
    "  5    stopped by a signal (the component in flight finished or rolled back)\n",
    "  77   permission denied: run as root\n",
    "  100  updates available (`check --exit-code`)",
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceManager {
    /// systemd on the real root, else the supervisor.
    Auto,
    Systemd,
    Supervisor,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// The stack file (default: `<root>/etc/obs-upgrade/stack.yaml` or `.toml`;
    /// none: the built-in catalog)
    #[arg(long, global = true, env = "OBS_UPGRADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Operate on this root instead of / (every path is under it)
    #[arg(long, global = true, default_value = "/", env = "OBS_UPGRADE_ROOT")]
    pub root: PathBuf,
    /// The environment whose overrides apply (production, staging, …)
    #[arg(long, global = true, env = "OBS_UPGRADE_ENVIRONMENT")]
    pub environment: Option<String>,
    /// Use only cached API answers and mirrors; no network
    #[arg(long, global = true)]
    pub offline: bool,
    /// Machine-readable output (see docs/cli.md for the schema)
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v info, -vv debug); `RUST_LOG` wins when set
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Colors: auto (a terminal and no `NO_COLOR`), always, never
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// How services are run
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ServiceManager::Auto,
        env = "OBS_UPGRADE_SERVICE_MANAGER"
    )]
    pub service_manager: ServiceManager,
    /// Wait up to this many seconds for another run's lock instead of failing
    #[arg(long, global = true, value_name = "SECONDS")]
    pub wait_lock: Option<u64>,
    /// GitHub API base URL (GitHub Enterprise, a local mirror speaking the API)
    #[arg(
        long,
        global = true,
        env = "OBS_UPGRADE_GITHUB_API",
        hide_short_help = true
    )]
    pub github_api: Option<String>,
    /// Where unit files are read, backed up and written (default `<root>/etc/systemd/system`)
    #[arg(long, global = true, env = "OBS_UPGRADE_UNIT_DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Mirror for components with `source: mirror`, and where a pinned host
    /// downloads from: a directory or an http(s):// URL
    #[arg(long, global = true, env = "OBS_UPGRADE_MIRROR")]
    pub mirror: Option<PathBuf>,
    /// Apply this pin file: exact versions and digests, no release API
    /// request (default: `<root>/etc/obs-upgrade/pins.json` when present)
    #[arg(long, global = true, env = "OBS_UPGRADE_PINS", value_name = "FILE")]
    pub pins: Option<PathBuf>,
    /// Release listings in flight at once (API requests; default 16)
    #[arg(
        long,
        global = true,
        env = "OBS_UPGRADE_LIST_CONCURRENCY",
        value_parser = clap::value_parser!(u16).range(1..=64),
        hide_short_help = true
    )]
    pub list_concurrency: Option<u16>,
}

#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Only this component
    #[arg(long, conflicts_with = "phase", add = ArgValueCandidates::new(candidates::components))]
    pub component: Option<String>,
    /// Only this phase
    #[arg(long, add = ArgValueCandidates::new(candidates::phases))]
    pub phase: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Safe,
    Standard,
    Fast,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Installed and available versions of every component
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade check\n",
            "  obs-upgrade check --exit-code   # 100 when updates are available\n",
            "  obs-upgrade check --json",
        )
    )]
    Check {
        /// Exit 100 when updates are available
        #[arg(long)]
        exit_code: bool,
        /// Send an "updates available" notification when there are updates
        #[arg(long)]
        notify: bool,
    },
    /// The plan: phases, steps, risk, approval, and why others are skipped or blocked
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade plan\n",
            "  obs-upgrade plan --component prometheus\n",
            "  obs-upgrade plan --notes          # the release notes of every release crossed\n",
            "  obs-upgrade --environment staging plan",
        )
    )]
    Plan {
        #[command(flatten)]
        selection: Selection,
        /// Show (and with --json, include) the release notes of every
        /// release between the installed and the target version
        #[arg(long)]
        notes: bool,
    },
    /// Download and verify planned releases now; switch nothing
    #[command(after_help = "Examples:\n  obs-upgrade stage\n  obs-upgrade stage --phase exporters")]
    Stage(Selection),
    /// Carry out the plan
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade apply --dry-run\n",
            "  obs-upgrade apply --component node_exporter\n",
            "  obs-upgrade apply --yes              # approve steps beyond the policy's `allow`\n",
            "  obs-upgrade apply --unattended       # never prompt; only steps policy allows",
        )
    )]
    Apply {
        #[command(flatten)]
        selection: Selection,
        /// Plan and preflight only; nothing changes
        #[arg(long)]
        dry_run: bool,
        /// safe: ask before each component; standard: go on; fast: no pauses
        #[arg(long, value_enum, default_value_t = ModeArg::Standard)]
        mode: ModeArg,
        /// Approve steps that need approval without asking
        #[arg(long, short = 'y')]
        yes: bool,
        /// Never prompt; apply only steps the policy allows
        #[arg(long, conflicts_with = "yes")]
        unattended: bool,
        /// Upgrade a component even when it is unhealthy before the run
        #[arg(long)]
        allow_unhealthy: bool,
        /// Move held components too (never with --unattended)
        #[arg(long, conflicts_with = "unattended")]
        ignore_holds: bool,
    },
    /// Finish an interrupted run
    #[command(after_help = "Example:\n  obs-upgrade resume")]
    Resume,
    /// The current or last run, each component, and the lock holder
    #[command(after_help = "Examples:\n  obs-upgrade status\n  obs-upgrade status --json")]
    Status,
    /// Go back to an earlier version
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade rollback --list\n",
            "  obs-upgrade rollback --component node_exporter --previous\n",
            "  obs-upgrade rollback --component prometheus --to 2.55.1\n",
            "  obs-upgrade rollback --run 20261121T030000Z-1a2b\n",
            "  obs-upgrade rollback --previous          # undo the last run",
        )
    )]
    Rollback {
        /// The component to move
        #[arg(long, add = ArgValueCandidates::new(candidates::components))]
        component: Option<String>,
        /// The version to go to (must be in the store)
        #[arg(long, requires = "component", conflicts_with_all = ["run", "previous"])]
        to: Option<String>,
        /// Undo everything a past run upgraded
        #[arg(long, conflicts_with_all = ["component", "previous"])]
        run: Option<String>,
        /// The version before the current one (with --component), or undo the last run
        #[arg(long)]
        previous: bool,
        /// List the versions and runs one can go back to
        #[arg(long)]
        list: bool,
    },
    /// Past runs and component outcomes
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade history --limit 20\n",
            "  obs-upgrade history --component prometheus\n",
            "  obs-upgrade history --stats",
        )
    )]
    History {
        /// Only this component's records
        #[arg(long, add = ArgValueCandidates::new(candidates::components))]
        component: Option<String>,
        /// The newest N records
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Success rate, mean durations, rollbacks per component
        #[arg(long)]
        stats: bool,
    },
    /// The store: versions, current, last known-good
    #[command(after_help = "Example:\n  obs-upgrade versions")]
    Versions,
    /// Remove old versions and backups (never the current or last known-good)
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade prune --dry-run\n",
            "  obs-upgrade prune --keep 2 --backup-days 14",
        )
    )]
    Prune {
        /// Versions kept per component, besides current and last known-good
        /// (default: the stack's `retention.versions`, 3)
        #[arg(long)]
        keep: Option<usize>,
        /// Backups kept this many days (default: `retention.backup_days`, 30)
        #[arg(long)]
        backup_days: Option<u64>,
        #[arg(long)]
        dry_run: bool,
    },
    /// The stack file: check it, show it resolved, or print an example
    #[command(
        subcommand,
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade config check\n",
            "  obs-upgrade config show --json\n",
            "  obs-upgrade config example > /etc/obs-upgrade/stack.yaml",
        )
    )]
    Config(ConfigCmd),
    /// The journal: reset a damaged state file
    #[command(subcommand, after_help = "Example:\n  obs-upgrade state reset")]
    State(StateCmd),
    /// Keep a component at its version until released (manual rollbacks hold by themselves)
    #[command(
        subcommand,
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade hold add prometheus --reason \"waiting for the 3.x migration\"\n",
            "  obs-upgrade hold list\n",
            "  obs-upgrade hold release node_exporter",
        )
    )]
    Hold(HoldCmd),
    /// Releases that failed verification here: never planned again until cleared
    #[command(
        subcommand,
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade quarantine list\n",
            "  obs-upgrade quarantine clear node_exporter 1.10.0",
        )
    )]
    Quarantine(QuarantineCmd),
    /// Give a component whose binary is a package's back to its own binary
    /// (removes obs-upgrade's drop-in and links, restarts the unit)
    #[command(
        after_help = concat!(
            "A binary that a package owns (or one outside /usr/local/bin) is never\n",
            "overwritten: apply writes <unit>.d/zz-obs-upgrade.conf so that the unit runs\n",
            "/usr/local/bin/<name> instead. This removes that drop-in again.\n\n",
            "Example:\n",
            "  obs-upgrade unmanage node_exporter",
        )
    )]
    Unmanage {
        /// The component
        #[arg(add = ArgValueCandidates::new(candidates::components))]
        component: String,
    },
    /// Services run by the built-in supervisor (hosts and sandboxes without systemd)
    #[command(
        subcommand,
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade supervisor status\n",
            "  obs-upgrade supervisor start node_exporter.service",
        )
    )]
    Supervisor(SupervisorCmd),
    /// Self-metrics for the textfile collector of the node exporter
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade metrics            # print them\n",
            "  obs-upgrade metrics --write    # write the file named by `metrics.textfile`",
        )
    )]
    Metrics {
        /// Write the file (atomically) instead of printing
        #[arg(long)]
        write: bool,
        /// Another file than the stack file's `metrics.textfile`
        #[arg(long, requires = "write")]
        path: Option<PathBuf>,
    },
    /// Resolve the stack's targets once, for a fleet: a pin file of exact
    /// versions and verified digests that hosts apply without asking any API
    #[command(
        after_help = concat!(
            "Every component of the stack is pinned, or nothing is. Its target is what the\n",
            "policy plans from the version the fleet runs (--from, else the version installed\n",
            "here), or exactly the version --set names; each target's asset is downloaded and\n",
            "verified here, and its digest recorded.\n\n",
            "Examples:\n",
            "  obs-upgrade pin --from node_exporter=1.8.2 --output pins.json\n",
            "  obs-upgrade pin --set node_exporter=1.9.1 --mirror-url http://ctl:8080 -o pins.json",
        )
    )]
    Pin {
        /// Write the pin file here (atomically) instead of printing it
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The version the fleet runs, per component (repeatable)
        #[arg(long, value_name = "NAME=VERSION")]
        from: Vec<String>,
        /// Pin exactly this version, per component (repeatable)
        #[arg(long = "set", value_name = "NAME=VERSION")]
        set: Vec<String>,
        /// Where the hosts download from (recorded in the file): an http(s)://
        /// URL or a directory laid out by `mirror fill`
        #[arg(long, value_name = "URL")]
        mirror_url: Option<String>,
        /// The fleet's platform as OS/ARCH (default: this host's)
        #[arg(long, value_name = "OS/ARCH")]
        platform: Option<String>,
    },
    /// A mirror for a fleet, filled with a pin file's releases
    #[command(
        subcommand,
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade mirror fill /srv/obs-mirror --pins pins.json\n",
            "  obs-upgrade mirror fill /srv/obs-mirror --pins pins.json \\\n",
            "      --from https://mirror.internal",
        )
    )]
    Mirror(MirrorCmd),
    /// systemd timers for unattended operation
    #[command(
        subcommand,
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade timer install\n",
            "  obs-upgrade timer status",
        )
    )]
    Timer(TimerCmd),
    /// Shell completions (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = concat!(
            "The script asks obs-upgrade itself on each Tab (subcommands, options, and the\n",
            "component and phase names of the stack file), so it never goes stale.\n\n",
            "Examples:\n",
            "  echo 'source <(obs-upgrade completions bash)' >> ~/.bashrc\n",
            "  echo 'source <(obs-upgrade completions zsh)' >> ~/.zshrc\n",
            "  obs-upgrade completions fish > ~/.config/fish/completions/obs-upgrade.fish",
        )
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Manual pages (roff): one per command
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade man | man -l -                   # read obs-upgrade(1)\n",
            "  obs-upgrade man apply | man -l -             # obs-upgrade-apply(1)\n",
            "  obs-upgrade man --dir /usr/local/share/man/man1 && mandb -q   # install all",
        )
    )]
    Man {
        /// The command whose page to print (`apply`, `hold add`; default: the top level)
        command: Vec<String>,
        /// Write every page into this directory instead of printing one
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Load and validate the stack file
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade config check\n",
            "  obs-upgrade --config ./stack.yaml config check --json   # file, line and key",
        )
    )]
    Check,
    /// The stack as resolved for the environment (catalog merged, policies layered)
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade config show\n",
            "  obs-upgrade --environment staging config show --json",
        )
    )]
    Show,
    /// A complete, commented example stack file
    #[command(after_help = "Example:\n  obs-upgrade config example > /etc/obs-upgrade/stack.yaml")]
    Example,
}

#[derive(Debug, Subcommand)]
pub enum HoldCmd {
    /// Hold a component at its installed version
    #[command(
        after_help = concat!(
            "Example:\n",
            "  obs-upgrade hold add prometheus --reason \"waiting for the 3.x migration\"",
        )
    )]
    Add {
        /// The component
        #[arg(add = ArgValueCandidates::new(candidates::components))]
        component: String,
        /// Why (shown wherever the hold is)
        #[arg(long)]
        reason: Option<String>,
    },
    /// Release a component's hold: it is planned normally again
    #[command(after_help = "Example:\n  obs-upgrade hold release node_exporter")]
    Release {
        /// The component
        #[arg(add = ArgValueCandidates::new(candidates::components))]
        component: String,
    },
    /// Holds and releases that failed here
    #[command(after_help = "Examples:\n  obs-upgrade hold list\n  obs-upgrade hold list --json")]
    List,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCmd {
    /// Releases that failed here, and holds
    #[command(after_help = "Example:\n  obs-upgrade quarantine list")]
    List,
    /// Let failed releases of a component be planned again
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade quarantine clear node_exporter 1.10.0\n",
            "  obs-upgrade quarantine clear node_exporter          # every failed release",
        )
    )]
    Clear {
        /// The component
        #[arg(add = ArgValueCandidates::new(candidates::components))]
        component: String,
        /// Only this version (default: every failed one)
        #[arg(value_name = "VERSION")]
        release: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// Set a damaged state file aside and continue from its good copy
    #[command(
        after_help = concat!(
            "A state file that reads cleanly is refused: putting an older copy back would\n",
            "force a needless resume. --force sets it aside anyway (an empty journal).\n\n",
            "Examples:\n",
            "  obs-upgrade state reset\n",
            "  obs-upgrade state reset --force",
        )
    )]
    Reset {
        /// Set the state file aside even when it reads cleanly
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SupervisorCmd {
    /// Start services (all when none named)
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade supervisor start\n",
            "  obs-upgrade supervisor start node_exporter.service",
        )
    )]
    Start {
        /// Units to start
        units: Vec<String>,
    },
    /// Stop services (all when none named)
    #[command(after_help = "Example:\n  obs-upgrade supervisor stop")]
    Stop {
        /// Units to stop
        units: Vec<String>,
    },
    /// Services and their pids
    #[command(
        after_help = concat!(
            "Examples:\n",
            "  obs-upgrade supervisor status\n",
            "  obs-upgrade supervisor status --json",
        )
    )]
    Status,
}

#[derive(Debug, Subcommand)]
pub enum MirrorCmd {
    /// Copy the pinned releases into DIR (each file checked against its
    /// pinned digest) and write the indexes a web server serves
    #[command(
        after_help = concat!(
            "DIR is laid out as <component>/<tag>/<file>, with <component>/index.json; serve it\n",
            "with any web server and point the hosts' --mirror (or the pin's --mirror-url)\n",
            "at it.\n\n",
            "Example:\n",
            "  obs-upgrade mirror fill /srv/obs-mirror --pins pins.json",
        )
    )]
    Fill {
        /// The mirror directory
        dir: PathBuf,
        /// The pin file whose releases to copy
        #[arg(long, value_name = "FILE")]
        pins: PathBuf,
        /// Copy from this mirror (a directory or http(s):// URL) instead of upstream
        #[arg(long, value_name = "MIRROR")]
        from: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TimerCmd {
    /// Write and enable obs-upgrade-check.{service,timer} and obs-upgrade-apply.{service,timer}
    #[command(
        after_help = concat!(
            "The apply timer fires when a maintenance window opens (`maintenance.windows`);\n",
            "the check timer runs daily, stages downloads and writes the metrics file.\n\n",
            "Examples:\n",
            "  obs-upgrade timer install\n",
            "  obs-upgrade --github-api https://ghe.example/api/v3 timer install   # carried in",
        )
    )]
    Install {
        /// The obs-upgrade binary the units run [default: this one]
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Write the unit files only; do not enable them
        #[arg(long)]
        no_enable: bool,
    },
    /// Disable and remove the units
    #[command(after_help = "Example:\n  obs-upgrade timer remove")]
    Remove,
    /// Whether the units are installed, and when they fire next
    #[command(
        after_help = "Examples:\n  obs-upgrade timer status\n  obs-upgrade timer status --json"
    )]
    Status,
}
