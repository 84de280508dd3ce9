//! Opening a host: its root, its stack file, its service manager and every
//! adapter the operations use.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use upgrade_core::catalog::Platform;
use upgrade_core::config::{Component, ENVIRONMENT_VAR, Stack};
use upgrade_core::engine::Scope;
use upgrade_core::holds::{Holds, failures_in};
use upgrade_core::journal::RunRecord;
use upgrade_core::layout::Layout;
use upgrade_core::pins::{self, PinFile, PinnedReleases};
use upgrade_core::planner::{self, Plan, PlanInput, Release};
use upgrade_core::ports::{HealthProbe, Inspector, Notifier, ReleaseSource, ServiceControl};
use upgrade_core::version::Version;
use upgrade_fetch::api::ApiClient;
use upgrade_fetch::http::{Http, HttpOptions};
use upgrade_fetch::sources::{Forges, Sources};
use upgrade_fetch::store::Store;
use upgrade_state::{HoldStore, HolderInfo, LockGuard, Paths, StateStore};
use upgrade_systemd::health::CatalogHealth;
use upgrade_systemd::host::{FileBackup, LocalInspector};
use upgrade_systemd::supervisor::{Supervisor, default_dir};
use upgrade_systemd::systemctl::Systemd;

use crate::Error;

/// The pin file a host applies when it is in its configuration directory.
pub const PIN_FILE: &str = "pins.json";

/// Reads and validates a pin file (bounded), without checking it against
/// a host: what `mirror fill` needs, and the first half of applying one.
pub fn read_pin_file(path: &Path) -> Result<PinFile, Error> {
    let shown = path.display().to_string();
    let bytes = upgrade_state::fsutil::read_capped(path, pins::MAX_PIN_FILE)
        .map_err(|e| Error::Usage(format!("cannot read the pin file {shown}: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{shown}: the pin file is not UTF-8 text")))?;
    PinFile::from_json(&text, &shown).map_err(|e| Error::Usage(e.to_string()))
}

/// The largest stack file read (a stack of a thousand components is ~200 KiB).
pub const MAX_STACK_FILE: u64 = 4 << 20;

/// How services are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceManager {
    /// systemd on the real root, else the supervisor.
    #[default]
    Auto,
    /// systemd (`systemctl`).
    Systemd,
    /// The built-in process supervisor (hosts and sandboxes without systemd).
    Supervisor,
}

/// What to open: the root, the stack file and how to reach upstream.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Every path is under it (`/` on a real host). Must be absolute.
    pub root: PathBuf,
    /// The stack file (default: `<root>/etc/obs-upgrade/stack.{yaml,yml,toml}`;
    /// none there: the built-in catalog).
    pub config: Option<PathBuf>,
    /// The environment whose overrides apply (default: `OBS_UPGRADE_ENVIRONMENT`).
    pub environment: Option<String>,
    /// Only cached API answers and mirrors; no network.
    pub offline: bool,
    /// How services are run.
    pub service_manager: ServiceManager,
    /// Wait this long for another run's lock instead of failing at once.
    pub wait_lock: Option<Duration>,
    /// GitHub API base URL (GitHub Enterprise, a mirror speaking the API).
    pub github_api: Option<String>,
    /// Where unit files are (default `<root>/etc/systemd/system`).
    pub unit_dir: Option<PathBuf>,
    /// Default mirror for components with `source: mirror` (a directory or
    /// an `http(s)://` URL), and where a pinned host downloads from.
    pub mirror: Option<PathBuf>,
    /// The pin file to apply (default: `<root>/etc/obs-upgrade/pins.json`
    /// when it exists): releases come from it alone, no API is asked.
    pub pins: Option<PathBuf>,
    /// Release listings in flight at once (16: two rounds for a 30-component
    /// stack, far below the API's limit on concurrent requests).
    pub list_concurrency: usize,
    /// `--version` runs in flight at once.
    pub detect_concurrency: usize,
    /// Set (from a signal handler) to stop runs between components: the
    /// component in flight is finished or rolled back first.
    pub stop: upgrade_core::engine::StopFlag,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            root: PathBuf::from("/"),
            config: None,
            environment: None,
            offline: false,
            service_manager: ServiceManager::Auto,
            wait_lock: None,
            github_api: None,
            unit_dir: None,
            mirror: None,
            pins: None,
            list_concurrency: 16,
            detect_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            stop: upgrade_core::engine::StopFlag::default(),
        }
    }
}

/// An opened host: the stack resolved, the layout, and the adapters.
pub struct Host {
    opts: HostOptions,
    layout: Layout,
    stack: Stack,
    releases: Option<Arc<dyn ReleaseSource>>,
    pinned: Option<(PathBuf, Arc<PinnedReleases>)>,
    pin_error: Option<(PathBuf, String)>,
    health: Option<Arc<dyn HealthProbe>>,
    /// Built once: the trust store is read once and sources and store share
    /// its agents.
    http: OnceLock<Http>,
}

/// What is installed and what upstream has, with per-component errors.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// Installed versions by component.
    pub installed: BTreeMap<String, Version>,
    /// Releases by component (only installed components are listed).
    pub available: BTreeMap<String, Vec<Release>>,
    /// Why a component could not be detected or listed.
    pub errors: BTreeMap<String, String>,
    /// Security advisories by component (only installed components are asked).
    pub advisories: BTreeMap<String, Vec<upgrade_core::advisory::Advisory>>,
    /// Why a component's advisories could not be read (the plan goes on
    /// without them, and says so).
    pub advisory_errors: BTreeMap<String, String>,
}

/// Reads a stack file with a size limit, refusing anything but a regular file.
pub fn read_stack_file(path: &Path) -> Result<String, Error> {
    let read_err = |source| upgrade_core::config::Error::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(Error::Usage(format!(
            "stack file {} is not a regular file; name a YAML or TOML file",
            path.display()
        )));
    }
    if meta.len() > MAX_STACK_FILE {
        return Err(Error::Usage(format!(
            "stack file {} is {} bytes, over the limit of {MAX_STACK_FILE}",
            path.display(),
            meta.len()
        )));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_STACK_FILE + 1).read_to_string(&mut text))
        .map_err(read_err)?;
    Ok(text)
}

/// Reads and resolves a stack file for an environment.
pub fn load_stack(path: &Path, environment: Option<&str>) -> Result<Stack, Error> {
    let text = read_stack_file(path)?;
    Ok(Stack::from_file(path, &text, environment)?)
}

impl Host {
    /// Opens a host: checks the root, finds and resolves the stack file.
    pub fn open(opts: HostOptions) -> Result<Host, Error> {
        if !opts.root.is_absolute() {
            return Err(Error::Usage(format!(
                "--root {} is relative; give an absolute path (binary links into the store \
                 must resolve from anywhere)",
                opts.root.display()
            )));
        }
        if !opts.root.is_dir() {
            return Err(Error::Usage(format!(
                "--root {} is not a directory",
                opts.root.display()
            )));
        }
        let layout = Layout::under(&opts.root);
        let env = opts.environment.clone().or_else(|| {
            std::env::var(ENVIRONMENT_VAR)
                .ok()
                .filter(|e| !e.is_empty())
        });
        let path = opts.config.clone().or_else(|| find_config(&layout));
        let stack = match &path {
            Some(p) => load_stack(p, env.as_deref())?,
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
        let pins = opts.pins.clone().or_else(|| {
            let p = layout.config_dir().join(PIN_FILE);
            p.exists().then_some(p)
        });
        let mut host = Host::with_stack(opts, stack);
        if let Some(path) = pins {
            // A pin file that cannot be applied fails every command that
            // needs releases (and `config check`), never a rollback or
            // `status`; and nothing is listed upstream in its place.
            let shown = path.clone();
            host = match host.with_pin_file(&path) {
                Ok(h) => h,
                Err((h, e)) => {
                    let mut h = *h;
                    h.pin_error = Some((shown, e.to_string()));
                    h
                }
            };
        }
        Ok(host)
    }

    /// Whether the pin file (when there is one) applies; the error names it.
    pub fn check_pins(&self) -> Result<(), Error> {
        match &self.pin_error {
            Some((_, why)) => Err(Error::Usage(why.clone())),
            None => Ok(()),
        }
    }

    /// Applies a pin file: it must fit the stack and this platform; its
    /// digests become the stack's pinned digests; releases come from it
    /// alone (no API request), downloaded from the mirror (`--mirror`, else
    /// the file's own), else upstream. A plain-http mirror is accepted
    /// because every file from it is checked against a pinned digest.
    /// On failure the host comes back unchanged beside the error.
    pub fn with_pin_file(mut self, path: &Path) -> Result<Host, (Box<Host>, Error)> {
        let file = match self.read_pins(path) {
            Ok(f) => f,
            Err(e) => return Err((Box::new(self), e)),
        };
        file.apply_digests(&mut self.stack);
        let mirror = self
            .opts
            .mirror
            .as_ref()
            .map(|m| m.to_string_lossy().into_owned());
        let source = Arc::new(PinnedReleases::new(file, mirror));
        self.releases = Some(source.clone());
        self.pinned = Some((path.to_owned(), source));
        self.http = OnceLock::new();
        Ok(self)
    }

    fn read_pins(&self, path: &Path) -> Result<PinFile, Error> {
        let file = read_pin_file(path).map_err(|e| {
            Error::Usage(format!(
                "{e}; give an existing pin file with --pins (or remove {PIN_FILE} from the \
                 configuration directory to list releases upstream)"
            ))
        })?;
        file.check(&self.stack, &Platform::current())
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        Ok(file)
    }

    /// The pin file applied, and the releases it answers.
    pub fn pinned(&self) -> Option<(&Path, &PinnedReleases)> {
        self.pinned.as_ref().map(|(p, r)| (p.as_path(), r.as_ref()))
    }

    /// A host with a stack already resolved (embedders that build their own).
    pub fn with_stack(opts: HostOptions, stack: Stack) -> Host {
        let layout = Layout::under(&opts.root);
        Host {
            opts,
            layout,
            stack,
            releases: None,
            pinned: None,
            pin_error: None,
            health: None,
            http: OnceLock::new(),
        }
    }

    /// Lists releases through `source` instead of GitHub, GitLab and mirrors
    /// (an internal artifact server, a pinned set). Staging downloads the
    /// assets it names and verifies them by the same ladder.
    #[must_use]
    pub fn with_release_source(mut self, source: Arc<dyn ReleaseSource>) -> Host {
        self.releases = Some(source);
        self
    }

    /// Decides health after a restart with `probe` instead of the catalog's
    /// probes (wrap [`CatalogHealth`] to add checks to them).
    #[must_use]
    pub fn with_health_probe(mut self, probe: Arc<dyn HealthProbe>) -> Host {
        self.health = Some(probe);
        self
    }

    /// The health probe: the embedder's, or the catalog's probes on 127.0.0.1
    /// (with the running-binary check against this host's store).
    pub fn health(&self) -> Arc<dyn HealthProbe> {
        self.health.clone().unwrap_or_else(|| {
            Arc::new(
                CatalogHealth::new(self.services(), "127.0.0.1")
                    .with_store(&self.layout.store_dir()),
            )
        })
    }

    /// The options it was opened with.
    pub fn options(&self) -> &HostOptions {
        &self.opts
    }

    /// The resolved stack.
    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Where things are.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where the state is.
    pub fn paths(&self) -> Paths {
        Paths::under(&self.opts.root)
    }

    /// The forges' API bases and the tokens of the environment.
    pub fn forges(&self) -> Forges {
        Forges::from_env(self.opts.github_api.as_deref())
    }

    /// The HTTP client: each token bound to its forge's origins, each
    /// component's `ca_file` to its API origin, proxies and trust store
    /// from the environment.
    pub fn http(&self) -> Http {
        self.http
            .get_or_init(|| {
                let d = self.stack.deadlines;
                let opts = HttpOptions {
                    min_speed: d.min_download_speed,
                    speed_window: Duration::from_secs(d.download_speed_window_secs),
                    ..HttpOptions::default()
                };
                let components: Vec<&Component> = self.stack.components.values().collect();
                let http = self.forges().client(opts, &components);
                match self.pinned.as_ref().and_then(|(_, p)| p.mirror()) {
                    Some(m) if m.starts_with("http://") => http.with_plain_http(m),
                    _ => http,
                }
            })
            .clone()
    }

    /// The release sources (GitHub, GitLab, mirrors) with the API cache.
    pub fn sources(&self) -> Sources {
        self.sources_with(self.opts.offline)
    }

    fn sources_with(&self, offline: bool) -> Sources {
        let client = ApiClient::new(
            self.http(),
            self.layout.cache_dir().join("api"),
            Duration::from_secs(900),
            offline,
        );
        let forges = self.forges();
        Sources::new(
            client,
            &forges.github_api,
            &forges.gitlab_api,
            self.opts.mirror.clone(),
        )
    }

    /// The install store.
    pub fn store(&self) -> Store {
        Store::new(
            self.layout.store_dir(),
            self.layout.cache_dir(),
            self.http(),
            Platform::current(),
        )
        .with_bin_dir(self.layout.bin_dir())
    }

    /// Whether services are run by systemd here.
    pub fn uses_systemd(&self) -> bool {
        match self.opts.service_manager {
            ServiceManager::Systemd => true,
            ServiceManager::Supervisor => false,
            ServiceManager::Auto => {
                self.opts.root == Path::new("/") && Path::new("/run/systemd/system").is_dir()
            }
        }
    }

    /// The built-in supervisor of this root.
    pub fn supervisor(&self) -> Supervisor {
        Supervisor::new(default_dir(&self.opts.root))
    }

    /// The service manager.
    pub fn services(&self) -> Arc<dyn ServiceControl> {
        if self.uses_systemd() {
            Arc::new(
                Systemd::new(&self.opts.root)
                    .with_timeout(Duration::from_secs(self.stack.deadlines.systemctl_secs)),
            )
        } else {
            Arc::new(self.supervisor())
        }
    }

    /// Where unit files are.
    pub fn unit_dir(&self) -> PathBuf {
        self.opts
            .unit_dir
            .clone()
            .unwrap_or_else(|| self.layout.unit_dir())
    }

    /// Finds installed binaries and their versions.
    pub fn inspector(&self) -> LocalInspector {
        let d = self.stack.deadlines;
        LocalInspector::new(self.layout.clone(), self.unit_dir()).with_timeouts(
            Duration::from_secs(d.version_secs),
            Duration::from_secs(d.config_check_secs),
        )
    }

    /// Saves and restores configuration and unit files.
    pub fn backup(&self) -> FileBackup {
        FileBackup::new(self.layout.clone(), self.unit_dir())
    }

    /// The configured notifiers, or one that only logs.
    pub fn notifier(&self) -> Box<dyn Notifier> {
        let n = upgrade_systemd::notify::Notifiers::new(
            self.stack.notifications.clone(),
            &upgrade_state::sys::host_name(),
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

    /// Takes the run lock (waiting as the options say).
    pub fn lock(&self) -> Result<LockGuard, Error> {
        let lock = self.paths().run_lock();
        let me = HolderInfo::current();
        let guard = match self.opts.wait_lock {
            Some(wait) => lock.acquire_timeout(&me, wait)?,
            None => lock.try_acquire(&me)?,
        };
        Ok(guard)
    }

    /// Checks a scope against the stack (unknown component or phase: an error).
    pub fn check_scope(&self, scope: &Scope) -> Result<(), Error> {
        Ok(upgrade_core::engine::check_scope(&self.stack, scope)?)
    }

    /// The names of the components a scope selects.
    pub fn selected(&self, scope: &Scope) -> Result<Vec<String>, Error> {
        self.check_scope(scope)?;
        Ok(self
            .stack
            .components
            .values()
            .filter(|c| match scope {
                Scope::All => true,
                Scope::Phase { name } => &c.phase == name,
                Scope::Component { name } => &c.name == name,
            })
            .map(|c| c.name.clone())
            .collect())
    }

    /// Installed versions of every component, `--version` runs in parallel.
    pub fn detect(&self) -> (BTreeMap<String, Version>, BTreeMap<String, String>) {
        let inspector = self.inspector();
        let comps: Vec<&Component> = self.stack.components.values().collect();
        let results = parallel(&comps, self.opts.detect_concurrency, |c| {
            inspector.installed(c)
        });
        let mut installed = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for (c, r) in comps.iter().zip(results) {
            note_installed(&c.name, r, &mut installed, &mut errors);
        }
        (installed, errors)
    }

    /// Installed versions and releases of every component: detection and
    /// listing overlap (each component's releases are asked for while the
    /// others are still detected); only installed components are listed.
    pub fn resolve(&self) -> Resolution {
        if let Some((_, why)) = &self.pin_error {
            // Never upstream in place of a pin file that does not apply.
            let mut res = Resolution::default();
            for name in self.stack.components.keys() {
                res.errors.insert(name.clone(), why.clone());
            }
            return res;
        }
        let sources = self.sources();
        let source = self.release_source(&sources);
        let list = |c: &Component| {
            let releases = source.releases(c);
            let advisories = releases.as_ref().ok().map(|_| source.advisories(c));
            (releases, advisories)
        };
        let inspector = self.inspector();
        let comps: Vec<&Component> = self.stack.components.values().collect();
        let workers = self.opts.detect_concurrency.max(self.opts.list_concurrency);
        // Bounds the listings in flight, whatever the detection width.
        let slots = Semaphore::new(self.opts.list_concurrency);
        let results = parallel(&comps, workers, |c| {
            let installed = inspector.installed(c);
            let releases = match &installed {
                Ok(Some(_)) => Some(slots.run(|| list(c))),
                _ => None,
            };
            (installed, releases)
        });
        let mut res = Resolution::default();
        for (c, (installed, releases)) in comps.iter().zip(results) {
            note_installed(&c.name, installed, &mut res.installed, &mut res.errors);
            match releases {
                Some((Ok(list), advisories)) => {
                    res.available.insert(c.name.clone(), list);
                    match advisories {
                        Some(Ok(a)) => {
                            res.advisories.insert(c.name.clone(), a);
                        }
                        Some(Err(e)) => {
                            let why = format!("cannot read security advisories: {e}");
                            res.advisory_errors.insert(c.name.clone(), why);
                        }
                        None => {}
                    }
                }
                Some((Err(e), _)) => {
                    let why = format!("cannot list releases: {e}");
                    res.errors.insert(c.name.clone(), why);
                }
                None => {}
            }
        }
        if let (None, Some(left)) = (&self.releases, sources.client().rate_limit().remaining) {
            log::info!("API requests left this hour: {left}");
        }
        if res.errors.is_empty() {
            self.record_clean_check();
        }
        res
    }

    /// The custom release source when one was given, else `sources`.
    fn release_source<'a>(&'a self, sources: &'a Sources) -> &'a dyn ReleaseSource {
        match &self.releases {
            Some(custom) => custom.as_ref(),
            None => sources,
        }
    }

    /// Security advisories affecting the installed versions, from what the
    /// last check cached: no request is sent (a component never checked
    /// has none to show).
    pub fn cached_advisories(&self) -> Vec<upgrade_core::advisory::Finding> {
        let (installed, _) = self.detect();
        let offline = self.sources_with(true);
        let source = self.release_source(&offline);
        let mut out = Vec::new();
        for (name, version) in &installed {
            let Some(c) = self.stack.components.get(name) else {
                continue;
            };
            let advisories = source.advisories(c).unwrap_or_default();
            if advisories.is_empty() {
                continue;
            }
            let releases = source.releases(c).unwrap_or_default();
            out.extend(upgrade_core::advisory::findings(
                name,
                version,
                &advisories,
                &releases.iter().map(|r| &r.version).collect::<Vec<_>>(),
            ));
        }
        out
    }

    /// Best effort: only a host with a writable state directory keeps it.
    fn record_clean_check(&self) {
        let now = jiff::Timestamp::now().to_string();
        let dir = self.layout.state_dir();
        if upgrade_state::fsutil::create_dir_all(&dir).is_ok() {
            let _ =
                upgrade_state::fsutil::atomic_write(&self.last_check_file(), now.as_bytes(), None);
        }
    }

    /// The plan for the installed and available versions, with the
    /// host's memory: releases that failed here are never planned, held
    /// components never moved. Components whose releases could not be
    /// listed are left out and reported with their error.
    pub fn plan(&self, res: &Resolution) -> Result<Plan, Error> {
        Ok(self.plan_with(res, &self.holds()?))
    }

    /// The last run's record, when the state file reads cleanly (a damaged
    /// one is reported by the commands that need it).
    pub fn last_run(&self) -> Option<RunRecord> {
        StateStore::open(&self.paths().state_dir)
            .ok()?
            .load()
            .ok()
            .flatten()
    }

    /// What the host remembers: failed releases and holds from
    /// `holds.json`, with the last run's failures merged in (until they are
    /// recorded there).
    pub fn holds(&self) -> Result<Holds, Error> {
        let mut h = HoldStore::open(&self.paths().state_dir)?.load()?;
        if let Some(run) = self.last_run()
            && h.recorded_run.as_deref() != Some(run.id.as_str())
        {
            for (name, bad) in failures_in(&run) {
                h.mark_bad(&name, bad);
            }
        }
        Ok(h)
    }

    /// [`Host::plan`] with the memory given (an interactive `apply` told to
    /// ignore holds passes one without them).
    pub fn plan_with(&self, res: &Resolution, holds: &Holds) -> Plan {
        let mut installed = res.installed.clone();
        for name in res.errors.keys() {
            installed.remove(name);
        }
        let mut plan = planner::plan(PlanInput {
            stack: &self.stack,
            installed: &installed,
            available: &res.available,
            now: jiff::Timestamp::now(),
            holds,
            advisories: &res.advisories,
        });
        for (name, why) in &res.advisory_errors {
            plan.warnings.push(planner::Warning {
                component: name.clone(),
                message: why.clone(),
            });
        }
        plan
    }
}

/// Files one detection result under its component: a version, nothing, or an error.
fn note_installed(
    name: &str,
    r: Result<Option<upgrade_core::ports::Installed>, upgrade_core::ports::PortError>,
    installed: &mut BTreeMap<String, Version>,
    errors: &mut BTreeMap<String, String>,
) {
    match r {
        Ok(Some(i)) => {
            installed.insert(name.to_owned(), i.version);
        }
        Ok(None) => {}
        Err(e) => {
            let why = format!("cannot detect the installed version: {e}");
            errors.insert(name.to_owned(), why);
        }
    }
}

fn find_config(layout: &Layout) -> Option<PathBuf> {
    ["stack.yaml", "stack.yml", "stack.toml"]
        .iter()
        .map(|n| layout.config_dir().join(n))
        .find(|p| p.exists())
}

/// A counting semaphore: at most `n` closures run at once.
struct Semaphore {
    free: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
}

impl Semaphore {
    fn new(n: usize) -> Self {
        Semaphore {
            free: std::sync::Mutex::new(n.max(1)),
            freed: std::sync::Condvar::new(),
        }
    }

    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut free = self.free.lock().expect("semaphore");
        while *free == 0 {
            free = self.freed.wait(free).expect("semaphore");
        }
        *free -= 1;
        drop(free);
        let r = f();
        *self.free.lock().expect("semaphore") += 1;
        self.freed.notify_one();
        r
    }
}

/// Runs `f` over `items` on up to `workers` threads; results in item order.
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i].lock().expect("a worker panicked") = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("a worker panicked")
                .expect("every item is done")
        })
        .collect()
}
