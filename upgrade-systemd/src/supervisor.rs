//! A small process supervisor for hosts and sandboxes without systemd:
//! services started detached with a pidfile and a log file, stopped with
//! SIGTERM then SIGKILL after a timeout.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde::{Deserialize, Serialize};
use upgrade_core::ports::{PortError, ServiceControl, ServiceStatus};

/// How to run one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// The command line; the first item is the program.
    pub argv: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_secs: u64,
}

fn default_stop_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PidFile {
    pid: u32,
    /// Field 22 of /proc/<pid>/stat at start: tells a reused pid apart.
    start_ticks: u64,
    restarts: u32,
}

/// Why a supervisor call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No spec for the service.
    #[error("no service `{name}` is defined under {}; define it first", dir.display())]
    Unknown {
        /// The service.
        name: String,
        /// The supervisor directory.
        dir: PathBuf,
    },
    /// The process could not be started or did not stay up.
    #[error("cannot start {name} ({}): {message}; see {}", argv.join(" "), log.display())]
    Start {
        /// The service.
        name: String,
        /// Its command line.
        argv: Vec<String>,
        /// What happened.
        message: String,
        /// Its log file.
        log: PathBuf,
    },
    /// A file of the supervisor could not be used.
    #[error("{action} {}: {cause}", path.display())]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: io::Error,
    },
    /// A signal could not be sent.
    #[error("cannot signal {name} (pid {pid}): {cause}")]
    Signal {
        /// The service.
        name: String,
        /// The pid.
        pid: u32,
        /// The cause.
        cause: io::Error,
    },
}

/// The supervisor: `<dir>/<name>.json` (spec), `.pid`, `.log`.
#[derive(Debug, Clone)]
pub struct Supervisor {
    dir: PathBuf,
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Supervisor {
    /// A supervisor keeping its files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Supervisor { dir: dir.into() }
    }

    fn file(&self, name: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{name}.{ext}"))
    }

    /// The log file of a service.
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.file(name, "log")
    }

    /// Defines (or redefines) a service.
    pub fn define(&self, name: &str, spec: &ProcessSpec) -> Result<(), Error> {
        fs::create_dir_all(&self.dir).map_err(|cause| Error::File {
            action: "cannot create",
            path: self.dir.clone(),
            cause,
        })?;
        let path = self.file(name, "json");
        fs::write(
            &path,
            serde_json::to_vec_pretty(spec).expect("spec encodes"),
        )
        .map_err(|cause| Error::File {
            action: "cannot write",
            path,
            cause,
        })
    }

    /// A service's spec.
    pub fn spec(&self, name: &str) -> Result<ProcessSpec, Error> {
        let path = self.file(name, "json");
        let bytes = fs::read(&path).map_err(|_| Error::Unknown {
            name: name.into(),
            dir: self.dir.clone(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::File {
            action: "cannot parse",
            path,
            cause: io::Error::other(e),
        })
    }

    fn read_pid(&self, name: &str) -> Option<PidFile> {
        serde_json::from_slice(&fs::read(self.file(name, "pid")).ok()?).ok()
    }

    /// The running pid, if the recorded process is still alive (and is the same process).
    pub fn running_pid(&self, name: &str) -> Option<u32> {
        let p = self.read_pid(name)?;
        (start_ticks(p.pid) == Some(p.start_ticks)).then_some(p.pid)
    }

    /// Starts a service detached (a no-op when it runs).
    pub fn start_service(&self, name: &str) -> Result<u32, Error> {
        if let Some(pid) = self.running_pid(name) {
            return Ok(pid);
        }
        let spec = self.spec(name)?;
        let log = self.log_file(name);
        let restarts = self.read_pid(name).map_or(0, |p| p.restarts);
        // `setsid … &` in a throwaway shell: the service is reparented at once,
        // so it never lingers as our zombie, and `$!` is its own pid.
        let script = "setsid \"$@\" >>\"$OBS_LOG\" 2>&1 </dev/null &\necho $!";
        let mut cmd = duct::cmd(
            "sh",
            ["-c", script, "sh"]
                .into_iter()
                .map(str::to_owned)
                .chain(spec.argv.iter().cloned()),
        )
        .env("OBS_LOG", &log)
        .stdout_capture()
        .stderr_capture()
        .unchecked();
        for (k, v) in &spec.env {
            cmd = cmd.env(k, v);
        }
        let out = cmd.run().map_err(|e| Error::Start {
            name: name.into(),
            argv: spec.argv.clone(),
            message: e.to_string(),
            log: log.clone(),
        })?;
        let pid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| Error::Start {
                name: name.into(),
                argv: spec.argv.clone(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                log: log.clone(),
            })?;
        // Give it a moment to fail at once (a missing binary, a bad flag).
        std::thread::sleep(Duration::from_millis(50));
        let ticks = start_ticks(pid).ok_or_else(|| Error::Start {
            name: name.into(),
            argv: spec.argv.clone(),
            message: "it exited at once".into(),
            log: log.clone(),
        })?;
        let path = self.file(name, "pid");
        fs::write(
            &path,
            serde_json::to_vec(&PidFile {
                pid,
                start_ticks: ticks,
                restarts,
            })
            .expect("pid encodes"),
        )
        .map_err(|cause| Error::File {
            action: "cannot write",
            path,
            cause,
        })?;
        Ok(pid)
    }

    fn signal(name: &str, pid: u32, sig: Signal) -> Result<(), Error> {
        let p =
            Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)).ok_or_else(|| Error::Signal {
                name: name.into(),
                pid,
                cause: io::Error::other("invalid pid"),
            })?;
        match kill_process(p, sig) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
            Err(e) => Err(Error::Signal {
                name: name.into(),
                pid,
                cause: e.into(),
            }),
        }
    }

    /// SIGTERM, then SIGKILL after the spec's timeout (a no-op when stopped).
    pub fn stop_service(&self, name: &str) -> Result<(), Error> {
        let Some(pid) = self.running_pid(name) else {
            return Ok(());
        };
        let timeout = Duration::from_secs(self.spec(name).map_or(10, |s| s.stop_timeout_secs));
        Self::signal(name, pid, Signal::TERM)?;
        let start = Instant::now();
        while self.running_pid(name).is_some() {
            if start.elapsed() >= timeout {
                log::warn!(
                    "{name} (pid {pid}) ignored SIGTERM for {} s; sending SIGKILL",
                    timeout.as_secs()
                );
                Self::signal(name, pid, Signal::KILL)?;
                let kill_start = Instant::now();
                while self.running_pid(name).is_some()
                    && kill_start.elapsed() < Duration::from_secs(5)
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Stops and starts again.
    pub fn restart_service(&self, name: &str) -> Result<u32, Error> {
        self.stop_service(name)?;
        let restarts = self.read_pid(name).map_or(0, |p| p.restarts);
        let pid = self.start_service(name)?;
        if let Some(mut p) = self.read_pid(name) {
            p.restarts = restarts;
            let _ = fs::write(
                self.file(name, "pid"),
                serde_json::to_vec(&p).expect("pid encodes"),
            );
        }
        Ok(pid)
    }

    /// Sends SIGHUP.
    pub fn reload_service(&self, name: &str) -> Result<(), Error> {
        match self.running_pid(name) {
            Some(pid) => Self::signal(name, pid, Signal::HUP),
            None => Ok(()),
        }
    }
}

impl ServiceControl for Supervisor {
    fn status(&self, unit: &str) -> Result<ServiceStatus, PortError> {
        let spec = self.spec(unit)?;
        let pid = self.running_pid(unit);
        Ok(ServiceStatus {
            active_state: if pid.is_some() { "active" } else { "inactive" }.into(),
            sub_state: if pid.is_some() { "running" } else { "dead" }.into(),
            main_pid: pid,
            n_restarts: 0,
            started_monotonic_us: self
                .read_pid(unit)
                .filter(|_| pid.is_some())
                .map_or(0, |p| p.start_ticks),
            fragment_path: Some(self.file(unit, "json").display().to_string()),
            triggered_by: Vec::new(),
            command: Some(spec.argv),
            drop_ins: Vec::new(),
        })
    }
    fn start(&self, unit: &str) -> Result<(), PortError> {
        Ok(self.start_service(unit).map(drop)?)
    }
    fn stop(&self, unit: &str) -> Result<(), PortError> {
        Ok(self.stop_service(unit)?)
    }
    fn restart(&self, unit: &str) -> Result<(), PortError> {
        Ok(self.restart_service(unit).map(drop)?)
    }
    fn reload(&self, unit: &str) -> Result<(), PortError> {
        Ok(self.reload_service(unit)?)
    }
}

/// Where a supervisor keeps its files under a root.
pub fn default_dir(root: &Path) -> PathBuf {
    root.join("var/lib/obs-upgrade/supervisor")
}
