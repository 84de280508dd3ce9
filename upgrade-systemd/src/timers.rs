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
        return Err("no maintenance windows are defined; add `maintenance.windows` to the stack file so that unattended upgrades know when they may switch".into());
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
        "NoNewPrivileges=yes\nPrivateTmp=yes\nProtectHome=yes\nProtectSystem=full\nProtectKernelTunables=yes\nProtectControlGroups=yes\nRestrictSUIDSGID=yes\nLockPersonality=yes\nReadWritePaths={}\n",
        writable.into_iter().collect::<Vec<_>>().join(" ")
    );
    let check_service = format!(
        "[Unit]\nDescription=obs-upgrade: check for updates and stage downloads\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart={}\nExecStart={}\nExecStartPost={}\n{hardening}",
        cmd("check --notify"),
        cmd("stage"),
        cmd("metrics --write")
    );
    let check_timer = "[Unit]\nDescription=obs-upgrade: daily check for updates\n\n[Timer]\nOnCalendar=daily\nRandomizedDelaySec=1h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n".to_owned();
    let apply_service = format!(
        "[Unit]\nDescription=obs-upgrade: apply approved upgrades in a maintenance window\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart={}\nExecStopPost={}\n{hardening}",
        cmd("apply --unattended"),
        cmd("metrics --write")
    );
    let apply_timer = format!(
        "[Unit]\nDescription=obs-upgrade: upgrades when a maintenance window opens\n\n[Timer]\n{}\nRandomizedDelaySec=5min\nPersistent=false\n\n[Install]\nWantedBy=timers.target\n",
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
