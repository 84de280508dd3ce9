//! Host-side ports: finding installed binaries (`Inspector`) and saving
//! configuration and unit files (`Backup`), all under a root prefix.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use upgrade_core::config::Component;
use upgrade_core::layout::Layout;
use upgrade_core::ports::{Backup, Inspector, Installed, PortError};
use upgrade_core::version::Version;

use upgrade_state::fsutil::Ownership;

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

    /// The unit directories searched, highest priority first: the configured
    /// one, then systemd's standard ones under the root.
    pub fn unit_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.unit_dir.clone()];
        for d in crate::units::UNIT_DIRS {
            let d = self.layout.host(d);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        dirs
    }

    /// The unit's files as systemd would read them (fragment and drop-ins).
    pub fn unit_files(&self, unit: &str) -> crate::units::UnitFiles {
        crate::units::UnitFiles::find(&self.unit_dirs(), unit)
    }

    /// The program of a unit's effective `ExecStart=` (drop-ins applied,
    /// the tool's own too; prefixes `-@+!:` dropped), as a path on this
    /// host: root-prefixed, unless the unit already names a path under the root.
    pub fn exec_start(&self, unit: &str) -> Option<PathBuf> {
        let line = self.unit_files(unit).exec_start()?;
        let prog = crate::units::program_of(&line)?;
        let root = self.layout.root();
        if root != Path::new("/") && Path::new(&prog).starts_with(root) {
            return Some(PathBuf::from(prog));
        }
        Some(self.layout.host(&prog))
    }

    /// Where the component's main binary is: `/usr/local/bin/<name>`, unless
    /// the unit runs another program that a package owns (a distro install,
    /// or one whose redirect was undone by a rollback) or there is none there.
    pub fn binary_path(&self, component: &Component) -> Option<PathBuf> {
        self.locate(component).map(|(binary, _)| binary)
    }

    /// [`LocalInspector::binary_path`] with the package that owns that
    /// binary, each file list read once (never for a link into the store).
    fn locate(&self, component: &Component) -> Option<(PathBuf, Option<String>)> {
        let in_bin = self.layout.bin_dir().join(component.spec.main_binary());
        let exec = self
            .exec_start(&component.spec.unit)
            .filter(|p| p.exists() && *p != in_bin);
        if let Some(p) = exec {
            let package = self.package_owner(&p);
            if package.is_some() || !in_bin.exists() {
                return Some((p, package));
            }
        }
        if !in_bin.exists() {
            return None;
        }
        let package = if self.is_store_link(component, &in_bin) {
            None
        } else {
            self.package_owner(&in_bin)
        };
        Some((in_bin, package))
    }

    /// Whether `path` is a link into the component's store.
    pub fn is_store_link(&self, component: &Component, path: &Path) -> bool {
        let store = self.layout.store_dir().join(&component.name);
        fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            && fs::read_link(path).is_ok_and(|t| t.starts_with(&store))
    }

    /// The package that owns a binary, when a package manager does: dpkg's
    /// file lists under the root, else `rpm -qf` where an rpm database is.
    pub fn package_owner(&self, binary: &Path) -> Option<String> {
        let root = self.layout.root();
        let host = Path::new("/").join(binary.strip_prefix(root).unwrap_or(binary));
        let host = host.to_string_lossy().into_owned();
        // Merged /usr: a package may list /bin/x for /usr/bin/x and back.
        let mut names = vec![host.clone()];
        if let Some(rest) = host.strip_prefix("/usr") {
            names.push(rest.to_owned());
        } else {
            names.push(format!("/usr{host}"));
        }
        if let Some(p) = dpkg_owner(&self.layout.host("/var/lib/dpkg/info"), &names) {
            return Some(format!("{p} (dpkg)"));
        }
        let rpm_db = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"]
            .iter()
            .any(|d| self.layout.host(d).is_dir());
        if rpm_db {
            let out = duct::cmd!(
                "rpm",
                "--root",
                root,
                "-qf",
                "--queryformat",
                "%{NAME}",
                &host
            )
            .stdout_capture()
            .stderr_null()
            .unchecked()
            .run()
            .ok()?;
            let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.status.success() && !name.is_empty() && !name.contains(' ') {
                return Some(format!("{name} (rpm)"));
            }
        }
        None
    }
}

/// The dpkg package whose file list (`<info>/<package>.list`) holds one of `paths`.
fn dpkg_owner(info: &Path, paths: &[String]) -> Option<String> {
    let entries = fs::read_dir(info).ok()?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(package) = name.strip_suffix(".list") else {
            continue;
        };
        let Ok(bytes) = upgrade_state::fsutil::read_capped(&e.path(), 64 << 20) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if text.lines().any(|l| paths.iter().any(|p| p == l)) {
            // `package:arch.list` on multi-arch hosts.
            return Some(package.split(':').next().unwrap_or(package).to_owned());
        }
    }
    None
}

impl Inspector for LocalInspector {
    fn installed(&self, component: &Component) -> Result<Option<Installed>, PortError> {
        let Some((binary, package)) = self.locate(component) else {
            return Ok(None);
        };
        let version = detect::installed_version_within(
            &binary,
            &component.spec.version_args,
            &component.spec.version_marker,
            self.version_timeout,
        )?;
        let managed = self.is_store_link(component, &binary);
        let package = package.filter(|_| !managed);
        let in_bin = binary == self.layout.bin_dir().join(component.spec.main_binary());
        Ok(Some(Installed {
            replaceable: in_bin && package.is_none(),
            binary,
            version,
            managed,
            package,
        }))
    }

    fn binary_version(&self, component: &Component, binary: &Path) -> Result<Version, PortError> {
        Ok(detect::installed_version_within(
            binary,
            &component.spec.version_args,
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

    /// The tool's own drop-in for the component's unit, whether there or not.
    fn own_drop_in(&self, component: &Component) -> PathBuf {
        self.unit_dir
            .join(format!("{}.d", component.spec.unit))
            .join(crate::units::DROP_IN)
    }

    fn saved_path(&self, dir: &Path, host: &Path) -> PathBuf {
        let rel = host.strip_prefix(&self.layout.root).unwrap_or(host);
        dir.join("files").join(rel.strip_prefix("/").unwrap_or(rel))
    }
}

/// One saved file: where it goes back to, and the mode, owner and group it
/// had (the saved copy itself is root's, 0600: it may hold secrets).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Saved {
    File {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A file that was not there (the tool's drop-in before it wrote it,
    /// a bin-directory link before an adoption made it): a restore removes it.
    Absent { absent: String },
    /// A manifest from before ownership was recorded: a path alone.
    Legacy(String),
}

fn mkdir_private(dir: &Path) -> Result<(), PortError> {
    Ok(upgrade_state::fsutil::create_dir_all_mode(dir, 0o700)?)
}

/// Where a restore writes: through a root-owned symlink to the file it
/// names, so that an operator's link (`/etc/x.yml -> /srv/conf/x.yml`)
/// stays a link. A link owned by anyone else (a service user that owns its
/// config directory could plant `web.yml -> /etc/shadow`) is replaced, never
/// followed.
fn write_target(path: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() && m.uid() == 0 => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
        }
        _ => path.to_owned(),
    }
}

/// Whether `path` already holds `saved`'s bytes with `own`'s mode and owner.
fn already_restored(path: &Path, saved: &Path, own: Ownership) -> bool {
    let (Ok(meta), Ok(saved_meta)) = (fs::metadata(path), fs::metadata(saved)) else {
        return false;
    };
    meta.len() == saved_meta.len()
        && Ownership::of(&meta) == own
        && matches!((fs::read(path), fs::read(saved)), (Ok(a), Ok(b)) if a == b)
}

impl Backup for FileBackup {
    fn backup(&self, component: &Component, dir: &Path) -> Result<Vec<PathBuf>, PortError> {
        let mut saved = Vec::new();
        let mut manifest = Vec::new();
        // A backup taken already (the same step, resumed after a crash) is
        // kept: the files may have changed since, by this very step.
        let existing = dir.join("manifest.json");
        if let Ok(bytes) = upgrade_state::fsutil::read_capped(&existing, 1 << 20)
            && let Ok(entries) = serde_json::from_slice::<Vec<Saved>>(&bytes)
        {
            return Ok(entries
                .into_iter()
                .filter_map(|e| match e {
                    Saved::File { path, .. } | Saved::Legacy(path) => Some(PathBuf::from(path)),
                    Saved::Absent { .. } => None,
                })
                .collect());
        }
        mkdir_private(dir)?;
        // What the step may create: the tool's drop-in (a redirect), and the
        // links in the bin directory (an adoption that leaves a package's
        // binary alone). Absent now, a rollback of this step removes them.
        let own = self.own_drop_in(component);
        let links = component
            .spec
            .binaries
            .iter()
            .map(|b| self.layout.bin_dir().join(&b.name));
        for path in std::iter::once(own).chain(links) {
            if fs::symlink_metadata(&path).is_err() {
                manifest.push(Saved::Absent {
                    absent: path.display().to_string(),
                });
            }
        }
        for src in self.sources(component) {
            let to = self.saved_path(dir, &src);
            if let Some(p) = to.parent() {
                mkdir_private(p)?;
            }
            let meta =
                fs::metadata(&src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
            let own = Ownership::of(&meta);
            let private = Ownership {
                mode: 0o600,
                uid: None,
                gid: None,
            };
            upgrade_state::fsutil::atomic_copy_as(&src, &to, private)?;
            manifest.push(Saved::File {
                path: src.display().to_string(),
                mode: own.mode,
                uid: own.uid.unwrap_or(0),
                gid: own.gid.unwrap_or(0),
            });
            saved.push(src);
        }
        let bytes = serde_json::to_vec_pretty(&manifest)?;
        upgrade_state::fsutil::atomic_write_mode(&dir.join("manifest.json"), &bytes, None, 0o600)?;
        Ok(saved)
    }

    /// Puts every saved file back with the mode, owner and group it had; a
    /// file that already holds the saved bytes with them is left untouched.
    fn restore(&self, _component: &Component, dir: &Path) -> Result<(), PortError> {
        let path = dir.join("manifest.json");
        let bytes = upgrade_state::fsutil::read_capped(&path, 1 << 20)
            .map_err(|e| format!("cannot read the backup manifest in {}: {e}", dir.display()))?;
        let manifest: Vec<Saved> = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the backup manifest {} is damaged: {e}", path.display()))?;
        for entry in manifest {
            let (host, own) = match entry {
                Saved::Absent { absent } => {
                    let path = PathBuf::from(absent);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(format!("cannot remove {}: {e}", path.display()).into());
                        }
                    }
                    continue;
                }
                Saved::File {
                    path,
                    mode,
                    uid,
                    gid,
                } => (
                    PathBuf::from(path),
                    Some(Ownership {
                        mode,
                        uid: Some(uid),
                        gid: Some(gid),
                    }),
                ),
                Saved::Legacy(path) => (PathBuf::from(path), None),
            };
            let saved = self.saved_path(dir, &host);
            let target = write_target(&host);
            // Legacy entries: keep what the file has now, else the copy's mode.
            let own = match own {
                Some(o) => o,
                None => match fs::metadata(&target).or_else(|_| fs::metadata(&saved)) {
                    Ok(m) => Ownership::of(&m),
                    Err(e) => return Err(format!("cannot read {}: {e}", saved.display()).into()),
                },
            };
            if already_restored(&target, &saved, own) {
                continue;
            }
            if let Some(p) = target.parent() {
                upgrade_state::fsutil::create_dir_all_mode(p, 0o755)?;
            }
            upgrade_state::fsutil::atomic_copy_as(&saved, &target, own)?;
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
    fn a_restore_keeps_owner_group_and_mode_and_leaves_unchanged_files_alone() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !rustix::process::geteuid().is_root() {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: changing a file's owner needs root (CI runs as root)");
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under(dir.path());
        let stack = upgrade_core::config::Stack::builtin();
        let comp = &stack.components["prometheus"];
        let cfg = layout.host(comp.spec.config_path.as_deref().unwrap());
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(&cfg, "a: 1\n").unwrap();
        std::os::unix::fs::chown(&cfg, Some(65534), Some(65533)).unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o640)).unwrap();
        let unit_dir = dir.path().join("etc/systemd/system");
        fs::create_dir_all(&unit_dir).unwrap();
        let unit = unit_dir.join(&comp.spec.unit);
        fs::write(&unit, "[Service]\nExecStart=/usr/local/bin/prometheus\n").unwrap();
        let backup = FileBackup::new(layout, &unit_dir);
        let saved = dir
            .path()
            .join("var/lib/obs-upgrade/backups/run/prometheus");
        assert_eq!(backup.backup(comp, &saved).unwrap().len(), 2);
        // The saved copies are root's alone: a config may hold secrets.
        let copy = backup.saved_path(&saved, &cfg);
        assert_eq!(fs::metadata(&copy).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(fs::metadata(&saved).unwrap().mode() & 0o7777, 0o700);
        // An upgrade rewrote the config as root:root 0644.
        let _ = fs::remove_file(&cfg);
        fs::write(&cfg, "a: 2\n").unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
        let unit_before = fs::metadata(&unit).unwrap();
        backup.restore(comp, &saved).unwrap();
        let meta = fs::metadata(&cfg).unwrap();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "a: 1\n");
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (65534, 65533, 0o640)
        );
        // The unit did not change: it was not rewritten.
        let unit_after = fs::metadata(&unit).unwrap();
        assert_eq!(unit_after.ino(), unit_before.ino());
        // A second restore changes nothing.
        let ino = meta.ino();
        backup.restore(comp, &saved).unwrap();
        assert_eq!(fs::metadata(&cfg).unwrap().ino(), ino);
    }

    #[test]
    fn a_restore_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under(dir.path());
        let stack = upgrade_core::config::Stack::builtin();
        let comp = &stack.components["prometheus"];
        let cfg = layout.host(comp.spec.config_path.as_deref().unwrap());
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        let real = dir.path().join("srv-prometheus.yml");
        fs::write(&real, "a: 1\n").unwrap();
        std::os::unix::fs::symlink(&real, &cfg).unwrap();
        let unit_dir = dir.path().join("units");
        fs::create_dir_all(&unit_dir).unwrap();
        let backup = FileBackup::new(layout, &unit_dir);
        let saved = dir.path().join("b");
        backup.backup(comp, &saved).unwrap();
        fs::write(&real, "a: 2\n").unwrap();
        backup.restore(comp, &saved).unwrap();
        assert!(fs::symlink_metadata(&cfg).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "a: 1\n");
        if !rustix::process::geteuid().is_root() {
            return;
        }
        // A link planted by a service user is replaced, not written through.
        let victim = dir.path().join("shadow");
        fs::write(&victim, "root:secret\n").unwrap();
        fs::remove_file(&cfg).unwrap();
        std::os::unix::fs::symlink(&victim, &cfg).unwrap();
        std::os::unix::fs::lchown(&cfg, Some(65534), Some(65534)).unwrap();
        backup.restore(comp, &saved).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:secret\n");
        assert!(fs::symlink_metadata(&cfg).unwrap().is_file());
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "a: 1\n");
    }

    #[test]
    fn without_systemd_the_unit_is_read_from_the_standard_directories_with_drop_ins() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let layout = Layout::under(root);
        let stack = upgrade_core::config::Stack::builtin();
        let mut comp = stack.components["node_exporter"].clone();
        comp.spec.unit = "prometheus-node-exporter.service".into();
        let put = |rel: &str, text: &str| {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            p
        };
        let script = "#!/bin/sh\necho 'node_exporter, version 1.5.0 (branch: debian)'\n";
        for bin in ["usr/bin/prometheus-node-exporter", "opt/ne/node_exporter"] {
            let p = put(bin, script);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        put(
            "lib/systemd/system/prometheus-node-exporter.service",
            "[Service]\nExecStart=/usr/bin/prometheus-node-exporter $ARGS\n",
        );
        let inspector = LocalInspector::new(layout.clone(), layout.unit_dir());
        // The fragment from /lib, the package's binary: not replaceable.
        let i = inspector.installed(&comp).unwrap().unwrap();
        assert_eq!(i.binary, root.join("usr/bin/prometheus-node-exporter"));
        assert!(!i.managed && !i.replaceable && i.package.is_none());
        put(
            "var/lib/dpkg/info/prometheus-node-exporter:amd64.list",
            "/.\n/usr\n/usr/bin\n/usr/bin/prometheus-node-exporter\n",
        );
        let i = inspector.installed(&comp).unwrap().unwrap();
        assert_eq!(
            i.package.as_deref(),
            Some("prometheus-node-exporter (dpkg)")
        );
        assert_eq!(i.version.to_string(), "1.5.0");
        // An operator's drop-in in /etc changes the program.
        put(
            "etc/systemd/system/prometheus-node-exporter.service.d/override.conf",
            "[Service]\nExecStart=\nExecStart=/opt/ne/node_exporter --web.listen-address=:9111\n",
        );
        let i = inspector.installed(&comp).unwrap().unwrap();
        assert_eq!(i.binary, root.join("opt/ne/node_exporter"));
        assert!(!i.replaceable && i.package.is_none());
        // A binary in the tool's own bin directory, no package: replaceable.
        fs::remove_dir_all(root.join("etc/systemd/system/prometheus-node-exporter.service.d"))
            .unwrap();
        fs::remove_file(root.join("lib/systemd/system/prometheus-node-exporter.service")).unwrap();
        let p = put("usr/local/bin/node_exporter", script);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        let i = inspector.installed(&comp).unwrap().unwrap();
        assert_eq!(i.binary, p);
        assert!(i.replaceable);
    }

    #[test]
    fn a_backup_records_the_tools_absent_drop_in_and_a_restore_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::under(dir.path());
        let stack = upgrade_core::config::Stack::builtin();
        let comp = &stack.components["node_exporter"];
        let unit_dir = layout.unit_dir();
        fs::create_dir_all(unit_dir.join("node_exporter.service.d")).unwrap();
        fs::write(
            unit_dir.join("node_exporter.service"),
            "[Service]\nExecStart=/x\n",
        )
        .unwrap();
        let backup = FileBackup::new(layout, &unit_dir);
        let saved = dir.path().join("b");
        assert_eq!(backup.backup(comp, &saved).unwrap().len(), 1);
        let own = unit_dir
            .join("node_exporter.service.d")
            .join(crate::units::DROP_IN);
        fs::write(
            &own,
            "[Service]\nExecStart=\nExecStart=/usr/local/bin/node_exporter\n",
        )
        .unwrap();
        // Taken again by the same step (resumed after a crash): the first
        // backup stands, the drop-in is not taken for the operator's.
        assert_eq!(backup.backup(comp, &saved).unwrap().len(), 1);
        // So is the link an adoption made beside a package's binary.
        let link = dir.path().join("usr/local/bin/node_exporter");
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(
            "/opt/obs-upgrade/node_exporter/current/node_exporter",
            &link,
        )
        .unwrap();
        backup.restore(comp, &saved).unwrap();
        assert!(!own.exists());
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(unit_dir.join("node_exporter.service").exists());
        backup.restore(comp, &saved).unwrap();
    }

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
