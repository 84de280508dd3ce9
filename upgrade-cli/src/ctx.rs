//! Wiring: the stack, the layout and every adapter, from the global options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use upgrade_core::catalog::Platform;
use upgrade_core::config::{Component, ENVIRONMENT_VAR, Stack};
use upgrade_core::engine::Scope;
use upgrade_core::layout::Layout;
use upgrade_core::planner::{self, Plan, PlanInput, Release};
use upgrade_core::ports::{Inspector, ServiceControl};
use upgrade_core::version::Version;
use upgrade_fetch::api::ApiClient;
use upgrade_fetch::http::{Http, HttpOptions, Token};
use upgrade_fetch::sources::{GITHUB_API, GITLAB_API, Sources};
use upgrade_fetch::store::Store;
use upgrade_state::{HolderInfo, LockGuard, Paths};
use upgrade_systemd::host::{FileBackup, LocalInspector};
use upgrade_systemd::supervisor::{Supervisor, default_dir};
use upgrade_systemd::systemctl::Systemd;

use crate::args::{Global, Selection, ServiceManager};

/// Everything a command needs.
pub struct Ctx {
    pub global: Global,
    pub layout: Layout,
    pub stack: Stack,
}

/// What is installed and what upstream has, with per-component errors.
pub struct Resolution {
    pub installed: BTreeMap<String, Version>,
    pub available: BTreeMap<String, Vec<Release>>,
    pub errors: BTreeMap<String, String>,
}

fn find_config(layout: &Layout) -> Option<PathBuf> {
    ["stack.yaml", "stack.yml", "stack.toml"]
        .iter()
        .map(|n| layout.config_dir().join(n))
        .find(|p| p.exists())
}

impl Ctx {
    /// Loads the stack for the chosen environment.
    pub fn load(global: &Global) -> Result<Ctx> {
        let layout = Layout::under(&global.root);
        let env = global.environment.clone().or_else(|| {
            std::env::var(ENVIRONMENT_VAR)
                .ok()
                .filter(|e| !e.is_empty())
        });
        let path = global.config.clone().or_else(|| find_config(&layout));
        let stack = match &path {
            Some(p) => Stack::load(p, env.as_deref())?,
            None => {
                log::info!(
                    "no stack file under {}; using the built-in catalog",
                    layout.config_dir().display()
                );
                let mut s = Stack::builtin();
                s.environment = env;
                s
            }
        };
        Ok(Ctx {
            global: global.clone(),
            layout,
            stack,
        })
    }

    pub fn paths(&self) -> Paths {
        Paths::under(&self.global.root)
    }

    pub fn http() -> Http {
        Http::new(HttpOptions::default(), Token::github_from_env())
    }

    pub fn sources(&self) -> Sources {
        let client = ApiClient::new(
            Self::http(),
            self.layout.cache_dir().join("api"),
            Duration::from_secs(900),
            self.global.offline,
        );
        let github = self
            .global
            .github_api
            .clone()
            .unwrap_or_else(|| GITHUB_API.to_owned());
        let mirror = self.global.mirror.clone();
        Sources::new(client, &github, GITLAB_API, mirror)
    }

    pub fn store(&self) -> Store {
        Store::new(
            self.layout.store_dir(),
            self.layout.cache_dir(),
            Self::http(),
            Platform::current(),
        )
        .with_bin_dir(self.layout.bin_dir())
    }

    pub fn uses_systemd(&self) -> bool {
        match self.global.service_manager {
            ServiceManager::Systemd => true,
            ServiceManager::Supervisor => false,
            ServiceManager::Auto => {
                self.global.root == Path::new("/") && Path::new("/run/systemd/system").is_dir()
            }
        }
    }

    pub fn supervisor(&self) -> Supervisor {
        Supervisor::new(default_dir(&self.global.root))
    }

    pub fn services(&self) -> Arc<dyn ServiceControl> {
        if self.uses_systemd() {
            Arc::new(Systemd::new(&self.global.root))
        } else {
            Arc::new(self.supervisor())
        }
    }

    /// Where unit files are.
    pub fn unit_dir(&self) -> PathBuf {
        self.global
            .unit_dir
            .clone()
            .unwrap_or_else(|| self.layout.unit_dir())
    }

    pub fn inspector(&self) -> LocalInspector {
        LocalInspector::new(self.layout.clone(), self.unit_dir())
    }

    pub fn host_name() -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default()
    }

    /// The configured notifiers, or one that only logs.
    pub fn notifier(&self) -> Box<dyn upgrade_core::ports::Notifier> {
        let n = upgrade_systemd::notify::Notifiers::new(
            self.stack.notifications.clone(),
            &Self::host_name(),
        );
        if n.is_empty() {
            Box::new(upgrade_core::ports::LogNotifier)
        } else {
            Box::new(n)
        }
    }

    /// The metrics file.
    pub fn metrics_path(&self) -> PathBuf {
        self.layout.host(&self.stack.metrics.textfile)
    }

    /// Where the time of the last clean check is kept.
    pub fn last_check_file(&self) -> PathBuf {
        self.layout.state_dir().join("last-check")
    }

    pub fn backup(&self) -> FileBackup {
        FileBackup::new(self.layout.clone(), self.unit_dir())
    }

    /// Takes the run lock (waiting when `--wait-lock` says so).
    pub fn lock(&self) -> Result<LockGuard> {
        let lock = self.paths().run_lock();
        let me = HolderInfo::current();
        let guard = match self.global.wait_lock {
            Some(secs) => lock.acquire_timeout(&me, Duration::from_secs(secs))?,
            None => lock.try_acquire(&me)?,
        };
        Ok(guard)
    }

    /// The components a selection names (all when none).
    pub fn selected(&self, sel: &Selection) -> Result<Vec<&Component>> {
        let scope = Self::scope(sel);
        match &scope {
            Scope::Component { name } => Ok(vec![self.stack.components.get(name).with_context(
                || format!("unknown component `{name}`; components: {}", self.names()),
            )?]),
            Scope::Phase { name } => {
                anyhow::ensure!(
                    self.stack.phase_index(name).is_some(),
                    "unknown phase `{name}`; phases: {}",
                    self.stack
                        .phases
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Ok(self
                    .stack
                    .components
                    .values()
                    .filter(|c| &c.phase == name)
                    .collect())
            }
            Scope::All => Ok(self.stack.components.values().collect()),
        }
    }

    pub fn names(&self) -> String {
        self.stack
            .components
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn scope(sel: &Selection) -> Scope {
        match (&sel.component, &sel.phase) {
            (Some(c), _) => Scope::Component { name: c.clone() },
            (None, Some(p)) => Scope::Phase { name: p.clone() },
            (None, None) => Scope::All,
        }
    }

    /// Installed versions and releases of every component, resolved in parallel.
    pub fn resolve(&self) -> Resolution {
        let inspector = self.inspector();
        let mut errors = BTreeMap::new();
        let mut installed = BTreeMap::new();
        for c in self.stack.components.values() {
            match inspector.installed(c) {
                Ok(Some(i)) => {
                    installed.insert(c.name.clone(), i.version);
                }
                Ok(None) => {}
                Err(e) => {
                    errors.insert(
                        c.name.clone(),
                        format!("cannot detect the installed version: {e}"),
                    );
                }
            }
        }
        // Releases only for what is installed: nothing else can be upgraded.
        let wanted: Vec<&Component> = self
            .stack
            .components
            .values()
            .filter(|c| installed.contains_key(&c.name))
            .collect();
        let sources = self.sources();
        let mut available = BTreeMap::new();
        for (name, r) in sources.resolve_all(&wanted, 4) {
            match r {
                Ok(list) => {
                    available.insert(name.to_owned(), list);
                }
                Err(e) => {
                    errors.insert(name.to_owned(), format!("cannot list releases: {e}"));
                }
            }
        }
        if let Some(left) = sources.client().rate_limit().remaining {
            log::info!("API requests left this hour: {left}");
        }
        if errors.is_empty() {
            // Best effort: only a host with a writable state directory keeps it.
            let _ = std::fs::create_dir_all(self.layout.state_dir()).and_then(|()| {
                std::fs::write(self.last_check_file(), jiff::Timestamp::now().to_string())
            });
        }
        Resolution {
            installed,
            available,
            errors,
        }
    }

    /// The plan for the installed and available versions.
    pub fn plan(&self, res: &Resolution) -> Plan {
        // Components whose releases could not be listed are left out of the plan
        // and reported with their error.
        let mut installed = res.installed.clone();
        for name in res.errors.keys() {
            installed.remove(name);
        }
        planner::plan(PlanInput {
            stack: &self.stack,
            installed: &installed,
            available: &res.available,
            now: jiff::Timestamp::now(),
        })
    }
}
