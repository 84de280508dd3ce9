//! Host-side ports: finding installed binaries (`Inspector`) and saving
//! configuration and unit files (`Backup`), all under a root prefix.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use upgrade_core::config::Component;
use upgrade_core::layout::Layout;
use upgrade_core::ports::{Backup, Inspector, Installed, PortError};
use upgrade_core::version::Version;

use crate::detect;

/// Finds binaries in `<root>/usr/local/bin`, or where the unit's `ExecStart` points.
#[derive(Debug, Clone)]
pub struct LocalInspector {
    layout: Layout,
    unit_dir: PathBuf,
    version_timeout: Duration,
    check_timeout: Duration,
}

/// How long a configuration check may take by default.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(120);

impl LocalInspector {
    /// An inspector under a root; unit files are read from `unit_dir`.
    pub fn new(layout: Layout, unit_dir: impl Into<PathBuf>) -> Self {
        LocalInspector {
            layout,
            unit_dir: unit_dir.into(),
            version_timeout: detect::DEFAULT_TIMEOUT,
            check_timeout: DEFAULT_CHECK_TIMEOUT,
        }
    }

    /// Other deadlines for `--version` runs and configuration checks.
    #[must_use]
    pub fn with_timeouts(mut self, version: Duration, check: Duration) -> Self {
        self.version_timeout = version;
        self.check_timeout = check;
        self
    }

    /// The program of a unit's `ExecStart=` (prefixes `-@+!:` dropped), root-prefixed.
    pub fn exec_start(&self, unit: &str) -> Option<PathBuf> {
        let text = fs::read_to_string(self.unit_dir.join(unit)).ok()?;
        let line = text
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("ExecStart="))
            .rfind(|l| !l.is_empty())?;
        let prog = line
            .trim_start_matches(['-', '@', '+', '!', ':'])
            .split_whitespace()
            .next()?;
        Some(self.layout.host(prog))
    }

    /// Where the component's main binary is.
    pub fn binary_path(&self, component: &Component) -> Option<PathBuf> {
        let in_bin = self.layout.bin_dir().join(component.spec.main_binary());
        if in_bin.exists() {
            return Some(in_bin);
        }
        self.exec_start(&component.spec.unit).filter(|p| p.exists())
    }
}

impl Inspector for LocalInspector {
    fn installed(&self, component: &Component) -> Result<Option<Installed>, PortError> {
        let Some(binary) = self.binary_path(component) else {
            return Ok(None);
        };
        let version = detect::installed_version_within(
            &binary,
            &component.spec.version_marker,
            self.version_timeout,
        )?;
        let store = self.layout.store_dir().join(&component.name);
        let managed = fs::symlink_metadata(&binary).is_ok_and(|m| m.file_type().is_symlink())
            && fs::read_link(&binary).is_ok_and(|t| t.starts_with(&store));
        Ok(Some(Installed {
            binary,
            version,
            managed,
        }))
    }

    fn binary_version(&self, component: &Component, binary: &Path) -> Result<Version, PortError> {
        Ok(detect::installed_version_within(
            binary,
            &component.spec.version_marker,
            self.version_timeout,
        )?)
    }

    fn run_check(&self, argv: &[String]) -> Result<String, PortError> {
        let (program, rest) = argv.split_first().ok_or("empty check command")?;
        let handle = duct::cmd(program, rest)
            .stderr_to_stdout()
            .stdout_capture()
            .stdin_null()
            .unchecked()
            .start()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let Some(out) = handle.wait_timeout(self.check_timeout)? else {
            let _ = handle.kill();
            return Err(format!(
                "{} did not finish within {} s",
                argv.join(" "),
                self.check_timeout.as_secs_f64()
            )
            .into());
        };
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "{} exited {}: {text}",
                argv.join(" "),
                out.status.code().unwrap_or(-1)
            )
            .into())
        }
    }

    fn exists(&self, path: &str) -> bool {
        self.layout.host(path).exists()
    }
}

/// Copies the configuration file and the unit file (with drop-ins) into a
/// backup directory, under their host paths (`<dir>/files/etc/…`).
#[derive(Debug, Clone)]
pub struct FileBackup {
    layout: Layout,
    unit_dir: PathBuf,
}

impl FileBackup {
    /// Backups under a root; unit files from `unit_dir`.
    pub fn new(layout: Layout, unit_dir: impl Into<PathBuf>) -> Self {
        FileBackup {
            layout,
            unit_dir: unit_dir.into(),
        }
    }

    fn sources(&self, component: &Component) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(c) = &component.spec.config_path {
            out.push(self.layout.host(c));
        }
        let unit = self.unit_dir.join(&component.spec.unit);
        out.push(unit.clone());
        let dropins = self.unit_dir.join(format!("{}.d", component.spec.unit));
        if let Ok(entries) = fs::read_dir(&dropins) {
            out.extend(entries.flatten().map(|e| e.path()));
        }
        out.into_iter().filter(|p| p.is_file()).collect()
    }

    fn saved_path(&self, dir: &Path, host: &Path) -> PathBuf {
        let rel = host.strip_prefix(&self.layout.root).unwrap_or(host);
        dir.join("files").join(rel.strip_prefix("/").unwrap_or(rel))
    }
}

fn copy_file(from: &Path, to: &Path) -> Result<(), PortError> {
    if let Some(p) = to.parent() {
        fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    Ok(upgrade_state::fsutil::atomic_copy(from, to)?)
}

impl Backup for FileBackup {
    fn backup(&self, component: &Component, dir: &Path) -> Result<Vec<PathBuf>, PortError> {
        let mut saved = Vec::new();
        for src in self.sources(component) {
            copy_file(&src, &self.saved_path(dir, &src))?;
            saved.push(src);
        }
        let manifest: Vec<String> = saved.iter().map(|p| p.display().to_string()).collect();
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let bytes = serde_json::to_vec_pretty(&manifest)?;
        upgrade_state::fsutil::atomic_write(&dir.join("manifest.json"), &bytes, None)?;
        Ok(saved)
    }

    fn restore(&self, _component: &Component, dir: &Path) -> Result<(), PortError> {
        let manifest: Vec<String> =
            serde_json::from_slice(&fs::read(dir.join("manifest.json")).map_err(|e| {
                format!("cannot read the backup manifest in {}: {e}", dir.display())
            })?)?;
        for host in manifest {
            let host = PathBuf::from(host);
            copy_file(&self.saved_path(dir, &host), &host)?;
        }
        Ok(())
    }

    fn exists(&self, dir: &Path) -> bool {
        dir.is_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_hangs_is_given_up_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let inspector = LocalInspector::new(Layout::under(dir.path()), dir.path())
            .with_timeouts(Duration::from_secs(1), Duration::from_millis(200));
        let t = std::time::Instant::now();
        let argv = ["sleep".to_owned(), "30".to_owned()];
        let e = inspector.run_check(&argv).unwrap_err().to_string();
        assert!(e.contains("sleep 30 did not finish within 0.2 s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let ok = ["sh".to_owned(), "-c".to_owned(), "echo fine".to_owned()];
        assert_eq!(inspector.run_check(&ok).unwrap(), "fine");
    }
}
