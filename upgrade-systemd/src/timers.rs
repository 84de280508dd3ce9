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
    let mut writable: BTreeSet<String> = host_paths
        .writable
        .iter()
        .map(|p| format!("-{}", p.display()))
        .collect();
    for c in stack.components.values() {
        if let Some(dir) = c
            .spec
            .config_path
            .as_deref()
            .and_then(|conf| Path::new(conf).parent())
        {
            writable.insert(format!("-{}", dir.display()));
        }
    }
    let hardening = format!(
        concat!(
            "NoNewPrivileges=yes\n",
            "PrivateTmp=yes\n",
            "ProtectHome=yes\n",
            "ProtectSystem=full\n",
            "ProtectKernelTunables=yes\n",
            "ProtectControlGroups=yes\n",
            "RestrictSUIDSGID=yes\n",
            "LockPersonality=yes\n",
            "ReadWritePaths={}\n",
        ),
        writable.into_iter().collect::<Vec<_>>().join(" ")
    );
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
        hardening,
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
        hardening,
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

/// Host paths the services must be able to write.
#[derive(Debug, Clone, Default)]
pub struct HostPaths {
    /// Store, state, cache, binaries, unit directory, the metrics file's directory…
    pub writable: Vec<PathBuf>,
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
