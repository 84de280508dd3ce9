//! The systemd units of unattended operation: a daily check that stages
//! downloads, and an apply timer that fires when a maintenance window opens.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use upgrade_core::config::Stack;

/// The four unit files, by name.
pub const UNITS: [&str; 4] = [
    "obs-upgrade-check.service",
    "obs-upgrade-check.timer",
    "obs-upgrade-apply.service",
    "obs-upgrade-apply.timer",
];

/// Renders the units. `binary` is the `obs-upgrade` to run; `args` are the
/// global options it gets (`--root`, `--config`); paths in
/// `ReadWritePaths=` are host paths (`root` is prefixed only where the unit
/// runs on the same root as obs-upgrade).
pub fn render(
    stack: &Stack,
    binary: &Path,
    args: &[String],
    host_paths: &HostPaths,
) -> Result<Vec<(String, String)>, String> {
    let calendars = stack.maintenance.schedule.on_calendar();
    if calendars.is_empty() {
        return Err(
            "no maintenance windows are defined; add `maintenance.windows` to the stack \
            file so that unattended upgrades know when they may switch"
                .into(),
        );
    }
    let cmd = |rest: &str| {
        let mut parts: Vec<String> = vec![binary.display().to_string()];
        parts.extend(args.iter().cloned());
        format!(
            "{} {rest}",
            parts
                .iter()
                .map(|p| shell_word(p))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let mut writable: BTreeSet<PathBuf> = host_paths.writable.iter().cloned().collect();
    for c in stack.components.values() {
        if let Some(dir) = c
            .spec
            .config_path
            .as_deref()
            .and_then(|conf| Path::new(conf).parent())
        {
            writable.insert(dir.to_owned());
        }
    }
    let env_file = host_paths
        .environment_file
        .as_ref()
        .map_or_else(String::new, |p| {
            format!("EnvironmentFile=-{}\n", p.display())
        });
    let apply_hardening = hardening(&writable, APPLY_CAPABILITIES, &env_file);
    let check_writable: BTreeSet<PathBuf> = host_paths.check_writable.iter().cloned().collect();
    let check_hardening = hardening(&check_writable, CHECK_CAPABILITIES, &env_file);
    let check_service = format!(
        concat!(
            "[Unit]\n",
            "Description=obs-upgrade: check for updates and stage downloads\n",
            "Wants=network-online.target\n",
            "After=network-online.target\n",
            "\n",
            "[Service]\n",
            "Type=oneshot\n",
            "TimeoutStartSec=1h\n",
            "ExecStart={}\n",
            "ExecStart={}\n",
            "ExecStartPost={}\n",
            "{}",
        ),
        cmd("check --notify"),
        cmd("stage"),
        cmd("metrics --write"),
        check_hardening,
    );
    let check_timer = concat!(
        "[Unit]\n",
        "Description=obs-upgrade: daily check for updates\n",
        "\n",
        "[Timer]\n",
        "OnCalendar=daily\n",
        "RandomizedDelaySec=1h\n",
        "Persistent=true\n",
        "\n",
        "[Install]\n",
        "WantedBy=timers.target\n",
    )
    .to_owned();
    let apply_service = format!(
        concat!(
            "[Unit]\n",
            "Description=obs-upgrade: apply approved upgrades in a maintenance window\n",
            "Wants=network-online.target\n",
            "After=network-online.target\n",
            "\n",
            "[Service]\n",
            "Type=oneshot\n",
            // A run never outlives this; a stop (shutdown, `systemctl stop`)
            // gives it time to finish or roll back the component in flight.
            "TimeoutStartSec=4h\n",
            "TimeoutStopSec=15min\n",
            // SIGTERM to obs-upgrade alone: its systemctl and checks must
            // live to finish or roll back the component in flight.
            "KillMode=mixed\n",
            "ExecStart={}\n",
            "ExecStopPost={}\n",
            "{}",
        ),
        cmd("apply --unattended"),
        cmd("metrics --write"),
        apply_hardening,
    );
    let apply_timer = format!(
        concat!(
            "[Unit]\n",
            "Description=obs-upgrade: upgrades when a maintenance window opens\n",
            "\n",
            "[Timer]\n",
            "{}\n",
            "RandomizedDelaySec=5min\n",
            "Persistent=false\n",
            "\n",
            "[Install]\n",
            "WantedBy=timers.target\n",
        ),
        calendars
            .iter()
            .map(|c| format!("OnCalendar={c}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(vec![
        (UNITS[0].to_owned(), check_service),
        (UNITS[1].to_owned(), check_timer),
        (UNITS[2].to_owned(), apply_service),
        (UNITS[3].to_owned(), apply_timer),
    ])
}

/// Host paths the services must be able to write, and their environment.
#[derive(Debug, Clone, Default)]
pub struct HostPaths {
    /// What the apply service writes: store, state, cache, binaries, unit
    /// directory, the metrics file's directory (components' configuration
    /// directories are added from the stack).
    pub writable: Vec<PathBuf>,
    /// What the check service writes: state, cache, store (staged
    /// downloads), the metrics file's directory. Nothing it runs from.
    pub check_writable: Vec<PathBuf>,
    /// An optional `EnvironmentFile=` (tokens, proxy settings): read when
    /// it exists, never required.
    pub environment_file: Option<PathBuf>,
}

/// What the apply service may do as root: write files other users own
/// (the metrics directory, configuration backups) and keep their owners,
/// and read `/proc/<pid>/exe` of services running as other users (the
/// check that a service runs the new binary).
const APPLY_CAPABILITIES: &str =
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_SYS_PTRACE";

/// What the check service may do: write the metrics file where another
/// user owns the directory, keeping the file's owner.
const CHECK_CAPABILITIES: &str = "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER";

/// The sandbox of both services: the whole file system read-only but for
/// `writable`, no devices, kernel or clock access, a native system call
/// allow list (a filtered call fails with EPERM instead of killing the
/// run mid-step), and `capabilities` only.
fn hardening(writable: &BTreeSet<PathBuf>, capabilities: &str, env_file: &str) -> String {
    let paths: Vec<String> = writable
        .iter()
        .map(|p| format!("-{}", p.display()))
        .collect();
    format!(
        concat!(
            "{}",
            "UMask=0077\n",
            "NoNewPrivileges=yes\n",
            "ProtectSystem=strict\n",
            "ReadWritePaths={}\n",
            "ProtectHome=yes\n",
            "PrivateTmp=yes\n",
            "PrivateDevices=yes\n",
            "PrivateMounts=yes\n",
            "ProtectKernelTunables=yes\n",
            "ProtectKernelModules=yes\n",
            "ProtectKernelLogs=yes\n",
            "ProtectControlGroups=yes\n",
            "ProtectClock=yes\n",
            "ProtectHostname=yes\n",
            "RestrictSUIDSGID=yes\n",
            "RestrictRealtime=yes\n",
            "RestrictNamespaces=yes\n",
            "LockPersonality=yes\n",
            "MemoryDenyWriteExecute=yes\n",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n",
            "SystemCallArchitectures=native\n",
            "SystemCallFilter=@system-service\n",
            "SystemCallFilter=~@resources @obsolete @cpu-emulation @debug @mount @swap @reboot \
             @raw-io @module @clock\n",
            "SystemCallErrorNumber=EPERM\n",
            "CapabilityBoundingSet={}\n",
        ),
        env_file,
        paths.join(" "),
        capabilities
    )
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        s.to_owned()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}
