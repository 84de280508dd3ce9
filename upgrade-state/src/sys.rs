//! Facts about this host and process, and the system clock: the one place
//! they are read.

use std::time::Duration;

/// The host's name (`/proc/sys/kernel/hostname`), or `unknown-host`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// The name of the user this process runs as (from its real uid and
/// `/etc/passwd`; `$USER` when `/proc` is missing; `uid N` when unnamed).
pub fn user_name() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        });
    let Some(uid) = uid else {
        return std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _ = f.next();
                (f.next()? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The system clock: the engine's [`Clock`](upgrade_core::ports::Clock) on a real host.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl upgrade_core::ports::Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}
