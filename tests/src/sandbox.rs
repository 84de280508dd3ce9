//! The sandbox of the quickstart: a root with plain exporter binaries to be
//! adopted, supervised services, a stack file, and a local release mirror,
//! all shaped like upstream's releases (names rendered from the catalog).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use upgrade_core::catalog::{self, ArchiveKind, Platform};
use upgrade_core::version::Version;
use upgrade_systemd::supervisor::{ProcessSpec, Supervisor, default_dir};

use crate::archives::{self, Entry};

/// One sandbox component: catalog name, the version installed, the versions in the mirror.
pub struct Spec {
    /// Catalog name.
    pub name: &'static str,
    /// Installed at creation.
    pub installed: &'static str,
    /// Published in the mirror at creation.
    pub published: &'static [&'static str],
}

/// The sandbox's components.
pub const COMPONENTS: [Spec; 3] = [
    Spec {
        name: "node_exporter",
        installed: "1.8.2",
        published: &["1.8.2", "1.9.1"],
    },
    Spec {
        name: "mysqld_exporter",
        installed: "0.17.0",
        published: &["0.17.0", "0.17.2"],
    },
    Spec {
        name: "nginx_exporter",
        installed: "1.3.0",
        published: &["1.3.0", "1.4.1"],
    },
];

/// A copy of the sandbox exporter reporting `version`.
pub fn patched(exporter: &[u8], version: &str) -> Vec<u8> {
    let marker = [b"OBS-SANDBOX-".as_slice(), b"VERSION:"].concat();
    let mut out = exporter.to_vec();
    let hits: Vec<usize> = out
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "the sandbox exporter carries its version marker exactly once"
    );
    let at = hits[0] + marker.len();
    let slot = &mut out[at..at + 60];
    slot.fill(0);
    slot[..version.len()].copy_from_slice(version.as_bytes());
    out
}

/// Publishes `version` of a catalog component into `mirror/<name>/v<version>/`.
pub fn publish(mirror: &Path, exporter: &[u8], name: &str, version: &str) -> std::io::Result<()> {
    let spec = &catalog::builtin()[name];
    let v = Version::parse(version).map_err(std::io::Error::other)?;
    let p = Platform::current();
    let dir = mirror.join(name).join(format!("v{version}"));
    std::fs::create_dir_all(&dir)?;
    let bin = patched(exporter, version);
    let paths = spec.binary_paths(&v, &p);
    let entries: Vec<Entry<'_>> = paths
        .iter()
        .map(|(_, path)| (path.as_str(), bin.as_slice(), 0o755))
        .collect();
    let asset = spec.asset_name(&v, &p);
    let data = match spec.archive {
        ArchiveKind::TarGz => archives::tar_gz(&entries),
        ArchiveKind::Zip => archives::zip(&entries),
        ArchiveKind::Raw => bin.clone(),
    };
    std::fs::write(dir.join(&asset), &data)?;
    if let Some(sums) = spec.checksums_name(&v, &p) {
        std::fs::write(dir.join(sums), archives::checksums(&[(&asset, &data)]))?;
    }
    std::fs::write(
        dir.join("release.json"),
        b"{\"published_at\": \"2026-01-01T00:00:00Z\"}",
    )?;
    Ok(())
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    /// The `--root`.
    pub root: PathBuf,
    /// The mirror directory.
    pub mirror: PathBuf,
    /// Ports by component.
    pub ports: BTreeMap<String, u16>,
}

/// Creates a sandbox in `dir` (which must not hold one already) and starts its services.
pub fn create(dir: &Path, exporter_path: &Path) -> std::io::Result<Created> {
    let exporter = std::fs::read(exporter_path)?;
    let root = dir.join("root");
    let mirror = dir.join("mirror");
    let bin_dir = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin_dir)?;
    std::fs::create_dir_all(root.join("etc/obs-upgrade"))?;
    let supervisor = Supervisor::new(default_dir(&root));
    let catalog = catalog::builtin();
    let mut ports = BTreeMap::new();
    let mut stack = String::from(
        "# The sandbox stack: three exporters, released from a local mirror,\n# supervised without systemd. See docs/config.md for every key.\ndefaults:\n  allow: minor\n  min_release_age: \"0\"\ncomponents:\n",
    );
    for c in &COMPONENTS {
        for v in c.published {
            publish(&mirror, &exporter, c.name, v)?;
        }
        let spec = &catalog[c.name];
        let binary = bin_dir.join(spec.main_binary());
        std::fs::write(&binary, patched(&exporter, c.installed))?;
        std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        ports.insert(c.name.to_owned(), port);
        let metric = format!("{}_build_info", spec.main_binary().replace('-', "_"));
        let _ = write!(
            stack,
            "  {}:\n    source: mirror\n    api_url: \"file://{}\"\n    port: {port}\n    build_info: {metric}\n    health_deadline_secs: 5\n",
            c.name,
            mirror.display()
        );
        supervisor
            .define(
                &spec.unit,
                &ProcessSpec {
                    argv: vec![
                        binary.display().to_string(),
                        format!("--web.listen-address=127.0.0.1:{port}"),
                    ],
                    env: BTreeMap::new(),
                    stop_timeout_secs: 5,
                },
            )
            .map_err(std::io::Error::other)?;
        supervisor
            .start_service(&spec.unit)
            .map_err(std::io::Error::other)?;
    }
    std::fs::write(root.join("etc/obs-upgrade/stack.yaml"), stack)?;
    Ok(Created {
        root,
        mirror,
        ports,
    })
}

/// Stops every supervised service of a sandbox root.
pub fn stop_all(root: &Path) {
    let supervisor = Supervisor::new(default_dir(root));
    for c in &COMPONENTS {
        let _ = supervisor.stop_service(&catalog::builtin()[c.name].unit);
    }
}
