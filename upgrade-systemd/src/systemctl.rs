//! The systemd backend: `systemctl` through duct, unit files installed,
//! backed up and restored under a root prefix.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use upgrade_state::fsutil;

use upgrade_core::ports::{PortError, ServiceControl, ServiceStatus};

/// Why a systemctl call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// systemctl ran and refused.
    #[error("systemctl {action} {unit} failed: {message}")]
    Command {
        /// The verb.
        action: String,
        /// The unit.
        unit: String,
        /// systemctl's own words.
        message: String,
    },
    /// systemctl did not return in time (a stop or start that hangs).
    #[error(
        "systemctl {action} {unit} did not return within {secs} s (a stop or start that hangs); \
         gave up and left the unit to systemd; see `systemctl status {unit}`"
    )]
    TimedOut {
        /// The verb.
        action: String,
        /// The unit.
        unit: String,
        /// The deadline in seconds.
        secs: f64,
    },
    /// systemctl could not be run at all.
    #[error("cannot run systemctl ({}): {cause}; is systemd installed?", command.join(" "))]
    Spawn {
        /// The command line.
        command: Vec<String>,
        /// The cause.
        cause: io::Error,
    },
    /// A unit file could not be written, backed up or restored.
    #[error("{action} {}: {cause}", path.display())]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
}

impl From<fsutil::IoError> for Error {
    fn from(e: fsutil::IoError) -> Self {
        Error::File {
            action: e.action,
            path: e.path,
            cause: e.cause,
        }
    }
}

/// The systemd backend.
#[derive(Debug, Clone)]
pub struct Systemd {
    prefix: Vec<String>,
    unit_dir: PathBuf,
    timeout: std::time::Duration,
}

/// How long one systemctl call may take by default: longer than systemd's
/// own default stop timeout (90 s) plus a start.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(150);

/// The properties read by [`Systemd::status`].
pub const PROPERTIES: &str = concat!(
    "ActiveState,SubState,MainPID,NRestarts,",
    "ExecMainStartTimestampMonotonic,FragmentPath,TriggeredBy,ExecStart,DropInPaths"
);

/// The words of the first command in a `systemctl show` `ExecStart=` value
/// (`{ path=… ; argv[]=/usr/bin/x --flag ; ignore_errors=no ; … }`).
pub fn parse_exec_start(value: &str) -> Option<Vec<String>> {
    let rest = value.split_once("argv[]=")?.1;
    let argv = rest.split_once(" ; ").map_or(rest, |(a, _)| a);
    let words = upgrade_core::endpoint::split_command(argv);
    (!words.is_empty()).then_some(words)
}

/// Parses `systemctl show` output into a status.
pub fn parse_show(text: &str) -> ServiceStatus {
    let mut s = ServiceStatus::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "ActiveState" => v.clone_into(&mut s.active_state),
            "SubState" => v.clone_into(&mut s.sub_state),
            "MainPID" => s.main_pid = v.parse().ok().filter(|p| *p != 0),
            "NRestarts" => s.n_restarts = v.parse().unwrap_or(0),
            "ExecMainStartTimestampMonotonic" => s.started_monotonic_us = v.parse().unwrap_or(0),
            "FragmentPath" => s.fragment_path = Some(v.to_owned()).filter(|p| !p.is_empty()),
            "TriggeredBy" => s.triggered_by = v.split_whitespace().map(str::to_owned).collect(),
            "ExecStart" => s.command = parse_exec_start(v),
            "DropInPaths" => s.drop_ins = v.split_whitespace().map(str::to_owned).collect(),
            _ => {}
        }
    }
    s
}

impl Systemd {
    /// The host's systemd; unit files under `<root>/etc/systemd/system`.
    pub fn new(root: &Path) -> Self {
        Systemd {
            prefix: Vec::new(),
            unit_dir: root.join("etc/systemd/system"),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Gives each systemctl call this long before it is killed and reported.
    #[must_use]
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs systemctl behind a command prefix (for example `nsenter -t PID -a`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: Vec<String>) -> Self {
        self.prefix = prefix;
        self
    }

    /// Writes units into another directory (`/run/systemd/system` for runtime units).
    #[must_use]
    pub fn with_unit_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.unit_dir = dir.into();
        self
    }

    /// Where unit files are written.
    pub fn unit_dir(&self) -> &Path {
        &self.unit_dir
    }

    /// Runs `systemctl <args>`; stdout on success, systemctl's message on failure.
    pub fn systemctl(&self, action: &str, unit: &str, args: &[&str]) -> Result<String, Error> {
        let mut command: Vec<String> = self.prefix.clone();
        command.push("systemctl".into());
        command.extend(args.iter().map(|a| (*a).to_owned()));
        log::debug!("{}", command.join(" "));
        let spawn = |cause| Error::Spawn {
            command: command.clone(),
            cause,
        };
        let handle = duct::cmd(&command[0], &command[1..])
            .stdout_capture()
            .stderr_capture()
            .stdin_null()
            .unchecked()
            .start()
            .map_err(spawn)?;
        let Some(out) = handle.wait_timeout(self.timeout).map_err(spawn)? else {
            let _ = handle.kill();
            return Err(Error::TimedOut {
                action: action.into(),
                unit: unit.into(),
                secs: self.timeout.as_secs_f64(),
            });
        };
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let mut message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if message.is_empty() {
            message = format!("exit status {}", out.status.code().unwrap_or(-1));
        }
        Err(Error::Command {
            action: action.into(),
            unit: unit.into(),
            message,
        })
    }

    /// The unit's status from `systemctl show`.
    pub fn show(&self, unit: &str) -> Result<ServiceStatus, Error> {
        self.systemctl("show", unit, &["show", unit, "--property", PROPERTIES])
            .map(|t| parse_show(&t))
    }

    /// `systemctl is-active`.
    pub fn is_active(&self, unit: &str) -> Result<bool, Error> {
        match self.systemctl("is-active", unit, &["is-active", "--quiet", unit]) {
            Ok(_) => Ok(true),
            Err(Error::Command { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `systemctl daemon-reload`.
    pub fn daemon_reload(&self) -> Result<(), Error> {
        self.systemctl("daemon-reload", "", &["daemon-reload"])
            .map(drop)
    }

    fn verb(&self, verb: &str, unit: &str) -> Result<(), Error> {
        self.systemctl(verb, unit, &[verb, unit]).map(drop)
    }

    /// `systemctl reset-failed`: a deliberate (re)start by the upgrade must
    /// not be refused by the start rate limit meant for crash loops.
    pub fn reset_start_limit(&self, unit: &str) {
        if let Err(e) = self.systemctl("reset-failed", unit, &["reset-failed", unit]) {
            log::debug!("{e}");
        }
    }

    /// Writes a unit file atomically (temp + rename) and reloads systemd.
    pub fn install_unit(&self, name: &str, contents: &str) -> Result<PathBuf, Error> {
        fs::create_dir_all(&self.unit_dir).map_err(|cause| Error::File {
            action: "cannot create",
            path: self.unit_dir.clone(),
            cause,
        })?;
        let path = self.unit_dir.join(name);
        fsutil::atomic_write_mode(&path, contents.as_bytes(), None, 0o644)?;
        self.daemon_reload()?;
        Ok(path)
    }

    /// Copies a unit file (and its drop-in directory) into `backup_dir`.
    /// Returns `false` when the unit has no file in the unit directory.
    pub fn backup_unit(&self, name: &str, backup_dir: &Path) -> Result<bool, Error> {
        let src = self.unit_dir.join(name);
        if !src.exists() {
            return Ok(false);
        }
        fs::create_dir_all(backup_dir).map_err(|cause| Error::File {
            action: "cannot create",
            path: backup_dir.to_owned(),
            cause,
        })?;
        copy(&src, &backup_dir.join(name))?;
        let dropins = self.unit_dir.join(format!("{name}.d"));
        if dropins.is_dir() {
            let to = backup_dir.join(format!("{name}.d"));
            fs::create_dir_all(&to).map_err(|cause| Error::File {
                action: "cannot create",
                path: to.clone(),
                cause,
            })?;
            for e in fs::read_dir(&dropins)
                .map_err(|cause| Error::File {
                    action: "cannot list",
                    path: dropins.clone(),
                    cause,
                })?
                .flatten()
            {
                copy(&e.path(), &to.join(e.file_name()))?;
            }
        }
        Ok(true)
    }

    /// Puts a backed-up unit file (and drop-ins) back and reloads systemd.
    pub fn restore_unit(&self, name: &str, backup_dir: &Path) -> Result<(), Error> {
        fsutil::atomic_copy(&backup_dir.join(name), &self.unit_dir.join(name))?;
        let saved_d = backup_dir.join(format!("{name}.d"));
        let live_d = self.unit_dir.join(format!("{name}.d"));
        if saved_d.is_dir() {
            let _ = fs::remove_dir_all(&live_d);
            fs::create_dir_all(&live_d).map_err(|cause| Error::File {
                action: "cannot create",
                path: live_d.clone(),
                cause,
            })?;
            for e in fs::read_dir(&saved_d)
                .map_err(|cause| Error::File {
                    action: "cannot list",
                    path: saved_d.clone(),
                    cause,
                })?
                .flatten()
            {
                copy(&e.path(), &live_d.join(e.file_name()))?;
            }
        }
        self.daemon_reload()
    }
}

impl Systemd {
    /// obs-upgrade's drop-in for `unit` in the unit directory.
    pub fn own_drop_in(&self, unit: &str) -> PathBuf {
        self.unit_dir
            .join(format!("{unit}.d"))
            .join(crate::units::DROP_IN)
    }

    /// Writes obs-upgrade's drop-in so that `unit` runs `program` with the
    /// arguments of its effective `ExecStart=` (read from the fragment and
    /// drop-ins systemd reports, the tool's own left out), then reloads
    /// systemd. Unchanged text is not written again.
    pub fn redirect_unit(&self, unit: &str, program: &Path, why: &str) -> Result<PathBuf, Error> {
        let st = self.show(unit)?;
        let own = self.own_drop_in(unit);
        let mut files = crate::units::UnitFiles {
            fragment: st.fragment_path.as_ref().map(PathBuf::from),
            drop_ins: st.drop_ins.iter().map(PathBuf::from).collect(),
        };
        if !self.prefix.is_empty() {
            // systemd's paths are inside the namespace the prefix enters:
            // read the unit directory as seen from here instead.
            files = crate::units::UnitFiles::find(std::slice::from_ref(&self.unit_dir), unit);
        }
        let refuse = |message: String| Error::Command {
            action: "redirect".into(),
            unit: unit.to_owned(),
            message,
        };
        let exec = files.exec_start_except(Some(&own)).ok_or_else(|| {
            refuse("the unit has no ExecStart= to take the arguments from".into())
        })?;
        let text = crate::units::redirect_drop_in(&exec, program, why).ok_or_else(|| {
            refuse(format!(
                "cannot write `ExecStart={}` with {} (a path with spaces or quotes)",
                exec,
                program.display()
            ))
        })?;
        if fs::read_to_string(&own).ok().as_deref() != Some(text.as_str()) {
            let dir = own.parent().unwrap_or(&self.unit_dir);
            fsutil::create_dir_all_mode(dir, 0o755)?;
            fsutil::atomic_write_mode(&own, text.as_bytes(), None, 0o644)?;
        }
        self.daemon_reload()?;
        Ok(own)
    }
}

fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    fs::copy(from, to).map(drop).map_err(|cause| Error::File {
        action: "cannot copy",
        path: from.to_owned(),
        cause,
    })
}

impl ServiceControl for Systemd {
    fn status(&self, unit: &str) -> Result<ServiceStatus, PortError> {
        Ok(self.show(unit)?)
    }
    fn start(&self, unit: &str) -> Result<(), PortError> {
        self.reset_start_limit(unit);
        Ok(self.verb("start", unit)?)
    }
    fn stop(&self, unit: &str) -> Result<(), PortError> {
        Ok(self.verb("stop", unit)?)
    }
    fn restart(&self, unit: &str) -> Result<(), PortError> {
        self.reset_start_limit(unit);
        Ok(self.verb("restart", unit)?)
    }
    fn reload(&self, unit: &str) -> Result<(), PortError> {
        Ok(self.verb("reload", unit)?)
    }
    fn reload_units(&self) -> Result<(), PortError> {
        Ok(self.daemon_reload()?)
    }
    fn supports_redirect(&self) -> bool {
        true
    }
    fn redirect(&self, unit: &str, program: &Path, why: &str) -> Result<PathBuf, PortError> {
        Ok(self.redirect_unit(unit, program, why)?)
    }
    fn unredirect(&self, unit: &str) -> Result<Option<PathBuf>, PortError> {
        let own = self.own_drop_in(unit);
        match fs::remove_file(&own) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(Error::File {
                    action: "cannot remove",
                    path: own,
                    cause,
                }
                .into());
            }
        }
        self.daemon_reload()?;
        Ok(Some(own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_systemctl_that_hangs_is_given_up_at_its_deadline() {
        // The prefix makes the command `sh -c 'sleep 30' sh systemctl …`.
        let sd = Systemd::new(Path::new("/"))
            .with_prefix(vec![
                "sh".into(),
                "-c".into(),
                "sleep 30".into(),
                "sh".into(),
            ])
            .with_timeout(std::time::Duration::from_millis(300));
        let t = std::time::Instant::now();
        let e = sd.systemctl("restart", "x.service", &["restart", "x.service"]);
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("did not return within 0.3 s") && e.contains("x.service"),
            "{e}"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn exec_start_as_systemctl_shows_it() {
        let v = "{ path=/usr/bin/prometheus-node-exporter ; \
                 argv[]=/usr/bin/prometheus-node-exporter \
                 --web.listen-address=\"127.0.0.2:9101\" $ARGS ; \
                 ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; \
                 status=0/0 }";
        assert_eq!(
            parse_exec_start(v).unwrap(),
            [
                "/usr/bin/prometheus-node-exporter",
                "--web.listen-address=127.0.0.2:9101",
                "$ARGS"
            ]
        );
        assert_eq!(parse_exec_start(""), None);
        let s = parse_show(&format!(
            "ExecStart={v}\nDropInPaths=/etc/a.d/x.conf /etc/a.d/y.conf\n"
        ));
        assert_eq!(s.command.unwrap().len(), 3);
        assert_eq!(s.drop_ins.len(), 2);
    }

    #[test]
    fn show_output() {
        let s = parse_show(
            "MainPID=84\nNRestarts=2\nExecMainStartTimestampMonotonic=1786780262\n\
             TriggeredBy=ne.socket\nActiveState=active\nSubState=running\n\
             FragmentPath=/run/systemd/system/ne.service\n",
        );
        assert_eq!(s.main_pid, Some(84));
        assert_eq!(s.n_restarts, 2);
        assert!(s.is_running() && s.socket_activated());
        let s = parse_show(
            "MainPID=0\nActiveState=inactive\nSubState=dead\nTriggeredBy=\nFragmentPath=\n",
        );
        assert_eq!(
            (s.main_pid, s.fragment_path.as_deref(), s.is_running()),
            (None, None, false)
        );
    }

    #[test]
    fn missing_systemctl_is_a_clear_error() {
        let sd = Systemd::new(Path::new("/")).with_prefix(vec!["/nonexistent/wrapper".into()]);
        let e = sd.show("x.service").unwrap_err().to_string();
        assert!(e.contains("cannot run systemctl"), "{e}");
    }
}
