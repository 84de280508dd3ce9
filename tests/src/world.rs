//! A sandbox host for end-to-end tests: a temporary root, a loopback release
//! server with repacked real releases, the process supervisor, and every
//! real adapter wired to the engine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use upgrade_core::catalog::Platform;
use upgrade_core::config::{Format, Stack};
use upgrade_core::layout::Layout;
use upgrade_core::planner::{self, Plan, PlanInput, Release};
use upgrade_core::ports::{Inspector, LogNotifier, ReleaseSource};
use upgrade_core::version::Version;
use upgrade_fetch::api::ApiClient;
use upgrade_fetch::http::{Http, HttpOptions};
use upgrade_fetch::sources::Sources;
use upgrade_fetch::store::Store;
use upgrade_state::{FileJournal, Paths};
use upgrade_systemd::health::CatalogHealth;
use upgrade_systemd::host::{FileBackup, LocalInspector};
use upgrade_systemd::supervisor::{ProcessSpec, Supervisor};

use crate::archives::{checksums, promu};
use crate::release_server::{FakeAsset, FakeRelease, ReleaseServer};

/// A promu release of `artifact` with `binaries` (name, bytes), and its checksum file.
pub fn promu_release(
    artifact: &str,
    version: &str,
    binaries: &[(&str, Vec<u8>)],
    published: &str,
    api_digest: bool,
) -> FakeRelease {
    let refs: Vec<(&str, &[u8])> = binaries.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    let (name, tgz) = promu(artifact, version, "amd64", &refs);
    let sums = checksums(&[(&name, &tgz)]);
    FakeRelease::new(
        &format!("v{version}"),
        published,
        vec![
            FakeAsset {
                name,
                data: Arc::new(tgz),
                with_digest: api_digest,
            },
            FakeAsset {
                name: "sha256sums.txt".into(),
                data: Arc::new(sums),
                with_digest: false,
            },
        ],
    )
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The version a running exporter reports in `metric`.
pub fn running_version(port: u16, metric: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let body = agent
        .get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()?
        .into_body()
        .read_to_string()
        .ok()?;
    upgrade_systemd::exposition::parse(&body)
        .into_iter()
        .find(|s| s.name == metric)?
        .labels
        .get("version")
        .cloned()
}

/// The sandbox.
pub struct Sandbox {
    /// The temporary root.
    pub root: tempfile::TempDir,
    /// Paths under it.
    pub layout: Layout,
    /// The release server.
    pub server: ReleaseServer,
    /// The supervisor.
    pub supervisor: Arc<Supervisor>,
}

impl Sandbox {
    /// An empty sandbox with a release server.
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let layout = Layout::under(root.path());
        let supervisor = Arc::new(Supervisor::new(upgrade_systemd::supervisor::default_dir(
            root.path(),
        )));
        Sandbox {
            layout,
            root,
            server: ReleaseServer::start(),
            supervisor,
        }
    }

    /// Installs a plain binary at `<root>/usr/local/bin/<name>`.
    pub fn install_plain(&self, name: &str, from: &Path) -> PathBuf {
        self.install_bytes(name, &std::fs::read(from).expect("read binary"))
    }

    /// Writes `bytes` as an executable `<root>/usr/local/bin/<name>`.
    pub fn install_bytes(&self, name: &str, bytes: &[u8]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let to = self.layout.bin_dir().join(name);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::write(&to, bytes).expect("write binary");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        to
    }

    /// Serves Debian's real `node_exporter` builds as upstream releases: 1.9.0
    /// (trixie's) and 1.5.0 (bookworm's, with an API digest). Returns the
    /// two binaries (old, new), or `None` when the fixtures are missing
    /// (`fixtures::require` says so).
    pub fn serve_debian_node_exporters(&self, test: &str) -> Option<(PathBuf, PathBuf)> {
        let package = "prometheus-node-exporter";
        let old = crate::fixtures::require("bookworm", package, package, test)?;
        let new = crate::fixtures::require("trixie", package, package, test)?;
        let release = |version: &str, binary: &Path, published: &str, digest: bool| {
            let bytes = std::fs::read(binary).expect("read fixture");
            promu_release(
                "node_exporter",
                version,
                &[("node_exporter", bytes)],
                published,
                digest,
            )
        };
        self.server.state().github.insert(
            "prometheus/node_exporter".into(),
            vec![
                release("1.9.0", &new, "2025-01-01T00:00:00Z", false),
                release("1.5.0", &old, "2022-12-01T00:00:00Z", true),
            ],
        );
        Some((old, new))
    }

    /// Defines and starts a supervised service running `<root>/usr/local/bin/<binary> args…`.
    pub fn run_service(&self, unit: &str, binary: &str, extra: &[String]) {
        let mut argv = vec![self.layout.bin_dir().join(binary).display().to_string()];
        argv.extend(extra.iter().cloned());
        self.supervisor
            .define(
                unit,
                &ProcessSpec {
                    argv,
                    env: BTreeMap::new(),
                    stop_timeout_secs: 5,
                },
            )
            .expect("define");
        self.supervisor.start_service(unit).expect("start");
    }

    /// A stack whose components read releases from the sandbox's server.
    pub fn stack(&self, components_yaml: &str) -> Stack {
        let yaml = components_yaml.replace("{api}", &self.server.url());
        Stack::from_text(&yaml, Format::Yaml, "sandbox.yaml", None).expect("stack")
    }

    /// The store.
    pub fn store(&self) -> Store {
        let http = Http::new(HttpOptions {
            backoff: Duration::from_millis(20),
            ..HttpOptions::default()
        });
        Store::new(
            self.layout.store_dir(),
            self.layout.cache_dir(),
            http,
            Platform::new("linux", "amd64"),
        )
        .with_bin_dir(self.layout.bin_dir())
    }

    /// Releases of every component.
    pub fn releases(&self, stack: &Stack) -> BTreeMap<String, Vec<Release>> {
        let http = Http::new(HttpOptions::default());
        let src = Sources::new(
            ApiClient::new(
                http,
                self.layout.cache_dir().join("api"),
                Duration::ZERO,
                false,
            ),
            &self.server.url(),
            &self.server.url(),
            None,
        );
        stack
            .components
            .values()
            .map(|c| (c.name.clone(), src.releases(c).expect("releases")))
            .collect()
    }

    /// The plan from what is installed now.
    pub fn plan(&self, stack: &Stack, releases: &BTreeMap<String, Vec<Release>>) -> Plan {
        let inspector = self.inspector();
        let installed: BTreeMap<String, Version> = stack
            .components
            .values()
            .filter_map(|c| {
                inspector
                    .installed(c)
                    .ok()
                    .flatten()
                    .map(|i| (c.name.clone(), i.version))
            })
            .collect();
        planner::plan(PlanInput {
            stack,
            installed: &installed,
            available: releases,
            now: jiff::Timestamp::now(),
            holds: &upgrade_core::holds::Holds::default(),
            advisories: &std::collections::BTreeMap::new(),
        })
    }

    /// The inspector.
    pub fn inspector(&self) -> LocalInspector {
        LocalInspector::new(self.layout.clone(), self.layout.unit_dir())
    }

    /// Takes this root's run lock (the engine's proof that it is held).
    pub fn lock(&self) -> upgrade_state::LockGuard {
        Paths::under(self.root.path())
            .run_lock()
            .try_acquire(&upgrade_state::HolderInfo::current())
            .expect("the run lock")
    }

    /// Runs `f` with every real adapter wired into engine ports.
    pub fn with_ports<T>(&self, f: impl FnOnce(&mut upgrade_core::engine::Ports<'_>) -> T) -> T {
        let mut journal = FileJournal::open(&Paths::under(self.root.path())).expect("journal");
        let store = self.store();
        let health = CatalogHealth::new(self.supervisor.clone(), "127.0.0.1")
            .with_store(&self.layout.store_dir())
            .with_deadline(Duration::from_secs(20));
        let inspector = self.inspector();
        let backup = FileBackup::new(self.layout.clone(), self.layout.unit_dir());
        let notifier = LogNotifier;
        let mut ports = upgrade_core::engine::Ports {
            journal: &mut journal,
            store: &store,
            services: self.supervisor.as_ref(),
            health: &health,
            inspector: &inspector,
            backup: &backup,
            notifier: &notifier,
            clock: &upgrade_state::SystemClock,
            layout: &self.layout,
            observer: None,
        };
        f(&mut ports)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Ok(entries) =
            std::fs::read_dir(upgrade_systemd::supervisor::default_dir(self.root.path()))
        {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(unit) = name.strip_suffix(".json") {
                    let _ = self.supervisor.stop_service(unit);
                }
            }
        }
    }
}
