//! In-memory fakes of every port, sharing one fake host ("world").

#![allow(dead_code, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use upgrade_core::config::{Component, Format, Stack};
use upgrade_core::journal::{HealthRecord, HistoryRecord, RunRecord};
use upgrade_core::layout::Layout;
use upgrade_core::planner::{self, Plan, PlanInput, Release};
use upgrade_core::ports::{
    ArtifactStore, Backup, Clock, Event, HealthProbe, Inspector, Installed, Journal, Notifier,
    PortError, Proof, RunLock, ServiceControl, ServiceStatus, Staged,
};
use upgrade_core::version::Version;

/// Where a failure is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    Detect,
    UnhealthyBefore,
    Stage,
    Smoke,
    ConfigCheck,
    Backup,
    Restart,
    UnhealthyAfter,
    MarkGood,
    RollbackRestart,
}

pub const ALL_FAILS: [Fail; 9] = [
    Fail::Detect,
    Fail::UnhealthyBefore,
    Fail::Stage,
    Fail::Smoke,
    Fail::ConfigCheck,
    Fail::Backup,
    Fail::Restart,
    Fail::UnhealthyAfter,
    Fail::MarkGood,
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct World {
    /// Plain (unmanaged) binaries and their versions.
    pub plain: BTreeMap<String, Version>,
    /// Store contents.
    pub store: BTreeMap<String, BTreeSet<Version>>,
    pub current: BTreeMap<String, Version>,
    pub good: BTreeMap<String, Version>,
    /// Versions the services run.
    pub running: BTreeMap<String, Version>,
    pub restarts: BTreeMap<String, u32>,
    pub downloads: u32,
    pub files: BTreeMap<String, String>,
    pub free: u64,
    pub fail: Option<(String, Fail)>,
    /// Versions that are unhealthy when running.
    pub bad: BTreeSet<(String, Version)>,
    pub events: Vec<String>,
    pub notifier_fails: bool,
    /// A switch to a newer version rewrites the component's config file
    /// (as a release that migrates its configuration would).
    pub migrates_config: bool,
}

impl World {
    pub fn installed(&self, name: &str) -> Option<Version> {
        self.current
            .get(name)
            .or_else(|| self.plain.get(name))
            .cloned()
    }
    fn fails(&self, name: &str, f: Fail) -> bool {
        self.fail
            .as_ref()
            .is_some_and(|(n, g)| n == name && *g == f)
    }
}

pub type Shared = Arc<Mutex<World>>;

fn unit_name(unit: &str) -> String {
    unit.trim_end_matches(".service").to_owned()
}

pub struct FakeStore(pub Shared);
pub struct FakeServices(pub Shared);
pub struct FakeHealth(pub Shared);
pub struct FakeInspector(pub Shared);
pub struct FakeBackup(pub Shared);
pub struct FakeNotifier(pub Shared);

impl ArtifactStore for FakeStore {
    fn staged(&self, c: &str, v: &Version) -> Result<Option<Staged>, PortError> {
        let w = self.0.lock().unwrap();
        Ok(w.store.get(c).filter(|s| s.contains(v)).map(|_| Staged {
            component: c.into(),
            version: v.clone(),
            dir: PathBuf::from(format!("/store/{c}/{v}")),
            sha256: "ab".repeat(32),
            proof: Proof::ApiDigest,
        }))
    }
    fn stage(
        &self,
        c: &Component,
        r: &Release,
        _p: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<Staged, PortError> {
        let mut w = self.0.lock().unwrap();
        if w.fails(&c.name, Fail::Stage) {
            return Err("download failed: connection reset".into());
        }
        w.downloads += 1;
        w.store
            .entry(c.name.clone())
            .or_default()
            .insert(r.version.clone());
        drop(w);
        Ok(self.staged(&c.name, &r.version)?.unwrap())
    }
    fn current(&self, c: &str) -> Result<Option<Version>, PortError> {
        Ok(self.0.lock().unwrap().current.get(c).cloned())
    }
    fn switch(&self, c: &str, v: &Version) -> Result<(), PortError> {
        let mut w = self.0.lock().unwrap();
        if !w.store.get(c).is_some_and(|s| s.contains(v)) {
            return Err(format!("{c} {v} is not in the store").into());
        }
        let newer = w.current.get(c).is_some_and(|cur| cur < v);
        if newer && w.migrates_config {
            w.files.insert(
                format!("/etc/{c}/config.yml"),
                format!("{c} config migrated by {v}"),
            );
        }
        w.current.insert(c.into(), v.clone());
        w.plain.remove(c);
        Ok(())
    }
    fn versions(&self, c: &str) -> Result<Vec<Version>, PortError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .store
            .get(c)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }
    fn remove(&self, c: &str, v: &Version) -> Result<(), PortError> {
        let mut w = self.0.lock().unwrap();
        if w.current.get(c) == Some(v) || w.good.get(c) == Some(v) {
            return Err("protected".into());
        }
        w.store.get_mut(c).map(|s| s.remove(v));
        Ok(())
    }
    fn adopt(&self, c: &Component, _b: &Path, v: &Version, _r: bool) -> Result<(), PortError> {
        let mut w = self.0.lock().unwrap();
        if w.current.contains_key(&c.name) {
            return Ok(());
        }
        w.store.entry(c.name.clone()).or_default().insert(v.clone());
        w.current.insert(c.name.clone(), v.clone());
        w.plain.remove(&c.name);
        Ok(())
    }
    fn link_binaries(&self, _c: &Component) -> Result<(), PortError> {
        Ok(())
    }
    fn mark_good(&self, c: &str, v: &Version) -> Result<(), PortError> {
        let mut w = self.0.lock().unwrap();
        if w.fails(c, Fail::MarkGood) {
            return Err("cannot write the last-good link".into());
        }
        w.good.insert(c.into(), v.clone());
        Ok(())
    }
    fn last_good(&self, c: &str) -> Result<Option<Version>, PortError> {
        Ok(self.0.lock().unwrap().good.get(c).cloned())
    }
    fn free_bytes(&self) -> Result<u64, PortError> {
        Ok(self.0.lock().unwrap().free)
    }
}

impl ServiceControl for FakeServices {
    fn status(&self, unit: &str) -> Result<ServiceStatus, PortError> {
        let w = self.0.lock().unwrap();
        let running = w.running.contains_key(&unit_name(unit));
        Ok(ServiceStatus {
            active_state: if running { "active" } else { "inactive" }.into(),
            sub_state: if running { "running" } else { "dead" }.into(),
            ..ServiceStatus::default()
        })
    }
    fn start(&self, unit: &str) -> Result<(), PortError> {
        self.restart(unit)
    }
    fn stop(&self, unit: &str) -> Result<(), PortError> {
        self.0.lock().unwrap().running.remove(&unit_name(unit));
        Ok(())
    }
    fn restart(&self, unit: &str) -> Result<(), PortError> {
        let mut w = self.0.lock().unwrap();
        let name = unit_name(unit);
        let target = w.installed(&name).ok_or("nothing to run")?;
        let backwards = w.running.get(&name).is_some_and(|r| r > &target);
        let forward = w.running.get(&name).is_none_or(|r| r < &target);
        if (forward && w.fails(&name, Fail::Restart))
            || (backwards && w.fails(&name, Fail::RollbackRestart))
        {
            return Err(format!("Job for {unit} failed").into());
        }
        *w.restarts.entry(name.clone()).or_default() += 1;
        w.running.insert(name, target);
        Ok(())
    }
    fn reload(&self, _unit: &str) -> Result<(), PortError> {
        Ok(())
    }
}

impl HealthProbe for FakeHealth {
    fn check(&self, c: &Component, expected: &Version) -> Result<HealthRecord, PortError> {
        let w = self.0.lock().unwrap();
        let running = w.running.get(&c.name);
        let healthy =
            running == Some(expected) && !w.bad.contains(&(c.name.clone(), expected.clone()));
        Ok(HealthRecord {
            healthy,
            detail: vec![format!(
                "running {:?}, expected {expected}",
                running.map(ToString::to_string)
            )],
        })
    }
}

impl Inspector for FakeInspector {
    fn installed(&self, c: &Component) -> Result<Option<Installed>, PortError> {
        let w = self.0.lock().unwrap();
        if w.fails(&c.name, Fail::Detect) {
            return Ok(w.installed(&c.name).map(|_| Installed {
                binary: format!("/usr/local/bin/{}", c.name).into(),
                version: Version::new(9, 9, 9),
                managed: true,
                package: None,
                replaceable: true,
            }));
        }
        Ok(w.installed(&c.name).map(|v| Installed {
            binary: format!("/usr/local/bin/{}", c.name).into(),
            version: v,
            managed: w.current.contains_key(&c.name),
            package: None,
            replaceable: true,
        }))
    }
    fn binary_version(&self, c: &Component, bin: &Path) -> Result<Version, PortError> {
        let w = self.0.lock().unwrap();
        let v = Version::parse(bin.parent().unwrap().file_name().unwrap().to_str().unwrap())?;
        if w.fails(&c.name, Fail::Smoke) {
            return Ok(Version::new(0, 0, 1));
        }
        Ok(v)
    }
    fn run_check(&self, argv: &[String]) -> Result<String, PortError> {
        let w = self.0.lock().unwrap();
        if w.fail.as_ref().is_some_and(|(n, f)| {
            *f == Fail::ConfigCheck && argv[0].contains(&format!("/store/{n}/"))
        }) {
            return Err("error checking config: unknown field `scrape_intervall`".into());
        }
        Ok("SUCCESS".into())
    }
    fn exists(&self, path: &str) -> bool {
        self.0.lock().unwrap().files.contains_key(path)
    }
}

impl Backup for FakeBackup {
    fn backup(&self, c: &Component, dir: &Path) -> Result<Vec<PathBuf>, PortError> {
        let mut w = self.0.lock().unwrap();
        if w.fails(&c.name, Fail::Backup) {
            return Err("no space left on device".into());
        }
        let saved: Vec<(String, String)> = w
            .files
            .iter()
            .filter(|(k, _)| k.contains(&c.name))
            .map(|(k, v)| (format!("{}{k}", dir.display()), v.clone()))
            .collect();
        for (k, v) in &saved {
            w.files.insert(k.clone(), v.clone());
        }
        Ok(saved.into_iter().map(|(k, _)| k.into()).collect())
    }
    fn restore(&self, c: &Component, dir: &Path) -> Result<(), PortError> {
        let mut w = self.0.lock().unwrap();
        let prefix = dir.display().to_string();
        let restored: Vec<(String, String)> = w
            .files
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.contains(&c.name))
            .map(|(k, v)| (k[prefix.len()..].to_owned(), v.clone()))
            .collect();
        for (k, v) in restored {
            w.files.insert(k, v);
        }
        Ok(())
    }
    fn exists(&self, dir: &Path) -> bool {
        let prefix = dir.display().to_string();
        self.0
            .lock()
            .unwrap()
            .files
            .keys()
            .any(|k| k.starts_with(&prefix))
    }
}

/// The run lock, as the engine's callers prove they hold it.
pub struct Lock;

impl RunLock for Lock {
    fn holder(&self) -> String {
        "the test".into()
    }
}

/// A virtual clock: time moves only by `sleep` (and `advance`).
pub struct VirtualClock {
    pub now: Mutex<jiff::Timestamp>,
    pub slept: Mutex<Vec<std::time::Duration>>,
}

impl VirtualClock {
    pub fn at(t: &str) -> Self {
        VirtualClock {
            now: Mutex::new(t.parse().unwrap()),
            slept: Mutex::new(Vec::new()),
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> jiff::Timestamp {
        *self.now.lock().unwrap()
    }
    fn sleep(&self, d: std::time::Duration) {
        self.slept.lock().unwrap().push(d);
        let mut now = self.now.lock().unwrap();
        *now = now.checked_add(d).unwrap();
    }
}

impl Notifier for FakeNotifier {
    fn notify(&self, e: &Event) -> Result<(), PortError> {
        let mut w = self.0.lock().unwrap();
        w.events.push(
            serde_json::to_value(e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        if w.notifier_fails {
            return Err("webhook answered HTTP 500".into());
        }
        Ok(())
    }
}

/// The journal: what was saved survives a "crash" (the Nth save fails, and
/// every later one: the process is dead).
#[derive(Clone, Default)]
pub struct Disk {
    pub state: Arc<Mutex<Option<RunRecord>>>,
    pub history: Arc<Mutex<Vec<HistoryRecord>>>,
    pub saves: Arc<Mutex<usize>>,
}

pub struct FakeJournal {
    pub disk: Disk,
    pub crash_at: Option<usize>,
    crashed: bool,
}

impl FakeJournal {
    pub fn new(disk: &Disk, crash_at: Option<usize>) -> Self {
        FakeJournal {
            disk: disk.clone(),
            crash_at,
            crashed: false,
        }
    }
    fn tick(&mut self) -> Result<(), PortError> {
        let mut n = self.disk.saves.lock().unwrap();
        *n += 1;
        if self.crashed || self.crash_at == Some(*n) {
            self.crashed = true;
            return Err("killed".into());
        }
        Ok(())
    }
}

impl Journal for FakeJournal {
    fn load(&mut self) -> Result<Option<RunRecord>, PortError> {
        Ok(self.disk.state.lock().unwrap().clone())
    }
    fn save(&mut self, run: &RunRecord) -> Result<(), PortError> {
        self.tick()?;
        *self.disk.state.lock().unwrap() = Some(run.clone());
        Ok(())
    }
    fn append_history(&mut self, r: &HistoryRecord) -> Result<(), PortError> {
        self.tick()?;
        self.disk.history.lock().unwrap().push(r.clone());
        Ok(())
    }
}

pub fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// Three exporters in one phase, each from 1.0.0 with 1.1.0 available.
pub fn stack(extra: &str) -> Stack {
    let comp = |n: &str| {
        format!(
            "  {n}: {{allow: major, config_path: /etc/{n}/config.yml, config_check: ['{{dir}}/check', '{{config}}']}}\n"
        )
    };
    let yaml = format!(
        "phases:\n  - {{name: exporters{extra}}}\n  - {{name: alerting}}\n  - {{name: prometheus}}\n  - {{name: logs}}\ncomponents:\n{}{}{}",
        comp("node_exporter"),
        comp("mysqld_exporter"),
        comp("nginx_exporter")
    );
    Stack::from_text(&yaml, Format::Yaml, "t.yaml", None).unwrap()
}

pub const NAMES: [&str; 3] = ["mysqld_exporter", "nginx_exporter", "node_exporter"];

/// Injects a failure into one component.
pub fn inject(w: &Shared, name: &str, f: Fail) {
    let mut w = w.lock().unwrap();
    match f {
        Fail::UnhealthyBefore => {
            w.bad.insert((name.into(), v("1.0.0")));
        }
        Fail::UnhealthyAfter => {
            w.bad.insert((name.into(), v("1.1.0")));
        }
        other => w.fail = Some((name.into(), other)),
    }
}

pub fn world() -> Shared {
    let mut w = World {
        free: 1 << 40,
        ..World::default()
    };
    for n in NAMES {
        w.store.entry(n.into()).or_default().insert(v("1.0.0"));
        w.current.insert(n.into(), v("1.0.0"));
        w.good.insert(n.into(), v("1.0.0"));
        w.running.insert(n.into(), v("1.0.0"));
        w.files
            .insert(format!("/etc/{n}/config.yml"), format!("{n} config v1"));
    }
    Arc::new(Mutex::new(w))
}

pub fn releases() -> BTreeMap<String, Vec<Release>> {
    NAMES
        .iter()
        .map(|n| {
            (
                (*n).to_owned(),
                vec![
                    Release::new(v("1.0.0"), None),
                    Release::new(v("1.1.0"), None),
                ],
            )
        })
        .collect()
}

pub fn plan_for(stack: &Stack, w: &Shared) -> Plan {
    let installed: BTreeMap<String, Version> = {
        let w = w.lock().unwrap();
        stack
            .components
            .keys()
            .filter_map(|n| w.installed(n).map(|v| (n.clone(), v)))
            .collect()
    };
    planner::plan(PlanInput {
        stack,
        installed: &installed,
        available: &releases(),
        now: jiff::Timestamp::now(),
        holds: &upgrade_core::holds::Holds::default(),
        advisories: &std::collections::BTreeMap::new(),
    })
}

pub struct Fakes {
    pub store: FakeStore,
    pub services: FakeServices,
    pub health: FakeHealth,
    pub inspector: FakeInspector,
    pub backup: FakeBackup,
    pub notifier: FakeNotifier,
    pub clock: VirtualClock,
    pub layout: Layout,
}

pub fn fakes(w: &Shared) -> Fakes {
    Fakes {
        store: FakeStore(w.clone()),
        services: FakeServices(w.clone()),
        health: FakeHealth(w.clone()),
        inspector: FakeInspector(w.clone()),
        backup: FakeBackup(w.clone()),
        notifier: FakeNotifier(w.clone()),
        clock: VirtualClock::at("2026-11-17T10:00:00Z"),
        layout: Layout::under("/fake-root"),
    }
}

impl Fakes {
    pub fn ports<'a>(&'a self, journal: &'a mut FakeJournal) -> upgrade_core::engine::Ports<'a> {
        upgrade_core::engine::Ports {
            journal,
            store: &self.store,
            services: &self.services,
            health: &self.health,
            inspector: &self.inspector,
            backup: &self.backup,
            notifier: &self.notifier,
            clock: &self.clock,
            layout: &self.layout,
            observer: None,
        }
    }
}
