//! Installed version detection: `<binary> --version` (or the component's own
//! version arguments, such as a `version` subcommand), stdout and stderr both.

use std::path::Path;
use std::time::Duration;

use upgrade_core::version::{Version, detect_version};

/// Why a version could not be detected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The binary could not be run.
    #[error("cannot run {} {args}: {cause}", binary.display())]
    Run {
        /// The binary.
        binary: std::path::PathBuf,
        /// Its version arguments.
        args: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// It ran but printed no version.
    #[error(
        "{} {args} printed no version we can read: {output:?}; set the component's \
         `version_args` or `version_marker` if it prints its version another way",
        binary.display()
    )]
    NoVersion {
        /// The binary.
        binary: std::path::PathBuf,
        /// Its version arguments.
        args: String,
        /// What it printed (start).
        output: String,
    },
    /// It did not finish.
    #[error("{} {args} did not finish within {} s", binary.display(), timeout.as_secs())]
    Timeout {
        /// The binary.
        binary: std::path::PathBuf,
        /// Its version arguments.
        args: String,
        /// The limit.
        timeout: Duration,
    },
}

/// How long `--version` may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `binary <args>` (`--version`) and reads the version after `marker`.
pub fn installed_version(binary: &Path, args: &[String], marker: &str) -> Result<Version, Error> {
    installed_version_within(binary, args, marker, DEFAULT_TIMEOUT)
}

/// [`installed_version`] with another deadline (killed and reported after it).
pub fn installed_version_within(
    binary: &Path,
    args: &[String],
    marker: &str,
    timeout: Duration,
) -> Result<Version, Error> {
    let shown = || args.join(" ");
    let handle = duct::cmd(binary, args)
        .stdout_capture()
        .stderr_capture()
        .stdin_null()
        .unchecked()
        .start()
        .map_err(|cause| Error::Run {
            binary: binary.to_owned(),
            args: shown(),
            cause,
        })?;
    // A blocking wait with a deadline: no polling, so a fast binary costs
    // only its own run time.
    let waited = handle.wait_timeout(timeout).map_err(|cause| Error::Run {
        binary: binary.to_owned(),
        args: shown(),
        cause,
    })?;
    let Some(out) = waited else {
        let _ = handle.kill();
        return Err(Error::Timeout {
            binary: binary.to_owned(),
            args: shown(),
            timeout,
        });
    };
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    detect_version(&text, marker).ok_or_else(|| Error::NoVersion {
        binary: binary.to_owned(),
        args: shown(),
        output: text.trim().chars().take(200).collect(),
    })
}
