//! End-to-end hosts: a namespace systemd running Debian's real exporter
//! builds, installed the way an operator does it (plain binaries in
//! `/usr/local/bin` under the host's root, unit files with `ExecStart=`
//! pointing there), a loopback server answering the GitHub releases API
//! with those builds repacked as upstream ships them, and `obs-upgrade`
//! run inside the namespace.
//!
//! The host's root is `/run/e2e/root` inside the namespace (its private
//! tmpfs), so nothing touches the machine's own `/usr/local/bin` or `/etc`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use upgrade_core::catalog;
use upgrade_core::version::Version;

use crate::archives::{self, Entry};
use crate::fixtures;
use crate::http_stub::{Answer, Receiver, Stub};
use crate::nsd::{self, NsSystemd};
use crate::release_server::{FakeAsset, FakeRelease, ReleaseServer};

/// The root inside the namespace.
pub const ROOT: &str = "/run/e2e/root";

/// One component: catalog name, Debian package, (upstream binary, Debian binary, package) pairs.
pub struct Fixture {
    /// Catalog name.
    pub name: &'static str,
    /// Debian package of the service binary.
    pub package: &'static str,
    /// Binaries: upstream name, Debian name, package per suite (bookworm, trixie).
    pub binaries: &'static [(&'static str, &'static str, [&'static str; 2])],
}

/// The five components of the end-to-end tests.
pub const FIXTURES: [Fixture; 5] = [
    Fixture {
        name: "node_exporter",
        package: "prometheus-node-exporter",
        binaries: &[(
            "node_exporter",
            "prometheus-node-exporter",
            ["prometheus-node-exporter"; 2],
        )],
    },
    Fixture {
        name: "alertmanager",
        package: "prometheus-alertmanager",
        binaries: &[
            (
                "alertmanager",
                "prometheus-alertmanager",
                ["prometheus-alertmanager"; 2],
            ),
            ("amtool", "amtool", ["prometheus-alertmanager"; 2]),
        ],
    },
    Fixture {
        name: "prometheus",
        package: "prometheus",
        binaries: &[
            ("prometheus", "prometheus", ["prometheus"; 2]),
            ("promtool", "promtool", ["prometheus", "promtool"]),
        ],
    },
    Fixture {
        name: "mysqld_exporter",
        package: "prometheus-mysqld-exporter",
        binaries: &[(
            "mysqld_exporter",
            "prometheus-mysqld-exporter",
            ["prometheus-mysqld-exporter"; 2],
        )],
    },
    Fixture {
        name: "nginx_exporter",
        package: "prometheus-nginx-exporter",
        binaries: &[(
            "nginx-prometheus-exporter",
            "prometheus-nginx-exporter",
            ["prometheus-nginx-exporter"; 2],
        )],
    },
];

fn fixture(name: &str) -> &'static Fixture {
    FIXTURES
        .iter()
        .find(|f| f.name == name)
        .expect("known fixture")
}

/// The Debian package of a component's service binary (its bookworm build).
pub fn debian_package(name: &str) -> &'static str {
    fixture(name).binaries[0].2[0]
}

/// The Debian name of a component's service binary.
pub fn debian_binary(name: &str) -> &'static str {
    fixture(name).binaries[0].1
}

/// The version a component's `/metrics` page reports in its `*_build_info`
/// (or an alias of that metric).
pub fn reported_version(c: &str, metrics: &str) -> Option<Version> {
    let spec = &catalog::builtin()[c];
    let metric = spec.build_info.as_ref()?;
    let samples = upgrade_systemd::exposition::parse(metrics);
    let s = std::iter::once(metric)
        .chain(&spec.build_info_aliases)
        .find_map(|m| samples.iter().find(|s| &s.name == m))?;
    upgrade_core::version::parse_printed(s.labels.get("version")?)
}

/// The version a release is tagged with (build metadata such as `+ds` dropped).
pub fn tag_version(suite: &str, name: &str) -> Version {
    fixtures::upstream_version(suite, fixture(name).package)
        .expect("fixture version")
        .without_build()
}

/// Whether the end-to-end prerequisites are here; `None` (after saying why) when not.
pub fn available(test: &str) -> bool {
    if let Some(why) = nsd::unavailable() {
        assert!(!nsd::in_ci(), "{test}: {why}");
        eprintln!("SKIPPED {test}: {why}");
        return false;
    }
    for f in &FIXTURES {
        for (i, suite) in ["bookworm", "trixie"].iter().enumerate() {
            for (_, deb, pkgs) in f.binaries {
                if fixtures::require(suite, pkgs[i], deb, test).is_none() {
                    return false;
                }
            }
        }
    }
    true
}

/// Repacks a suite's build of a component as upstream ships it (promu or goreleaser).
pub fn release(suite: &str, name: &str, with_digest: bool, published: &str) -> FakeRelease {
    let f = fixture(name);
    let i = usize::from(suite == "trixie");
    let version = tag_version(suite, name);
    let spec = &catalog::builtin()[name];
    let p = catalog::Platform::new("linux", "amd64");
    let datas: Vec<(String, Vec<u8>)> = f
        .binaries
        .iter()
        .map(|(up, deb, pkgs)| {
            (
                up.to_string(),
                std::fs::read(fixtures::binary(suite, pkgs[i], deb).expect("fixture"))
                    .expect("read fixture"),
            )
        })
        .collect();
    let paths = spec.binary_paths(&version, &p);
    let entries: Vec<Entry<'_>> = paths
        .iter()
        .map(|(n, path)| {
            (
                path.as_str(),
                datas
                    .iter()
                    .find(|(u, _)| u == n)
                    .map(|(_, d)| d.as_slice())
                    .expect("binary"),
                0o755,
            )
        })
        .collect();
    let asset = spec.asset_name(&version, &p);
    let data = archives::tar_gz(&entries);
    let sums_name = spec.checksums_name(&version, &p).expect("checksums");
    let sums = archives::checksums(&[(&asset, &data)]);
    FakeRelease::new(
        &format!("v{version}"),
        published,
        vec![
            FakeAsset {
                name: asset,
                data: Arc::new(data),
                with_digest,
            },
            FakeAsset {
                name: sums_name,
                data: Arc::new(sums),
                with_digest: false,
            },
        ],
    )
}

/// A host.
pub struct Host {
    /// The namespace systemd.
    pub ns: NsSystemd,
    /// The release server.
    pub server: ReleaseServer,
    /// A webhook receiver.
    pub receiver: Receiver,
    /// The `stub_status` page of an nginx, for the nginx exporter.
    pub nginx: Stub,
    /// `obs-upgrade` as seen inside.
    pub obs: PathBuf,
    /// Ports by component.
    pub ports: BTreeMap<String, u16>,
    /// The components of this host.
    pub components: Vec<&'static str>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Host {
    /// Boots a host with `components` installed at their bookworm versions,
    /// both versions published, and `stack_extra` appended to the stack file.
    pub fn boot(components: &[&'static str], allow: &[(&str, &str)], stack_extra: &str) -> Host {
        let ns = NsSystemd::boot();
        let server = ReleaseServer::start();
        let receiver = Receiver::start(200);
        let nginx = Stub::start();
        nginx.on(
            "/stub_status",
            vec![Answer::now(
                200,
                "Active connections: 1 \nserver accepts \
            handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n",
            )],
        );
        let obs = ns.stage_file(&crate::bin("obs-upgrade"));
        // Debian's alertmanager reads its templates from /usr/share: an overlay
        // inside the namespace (upper layer in its private /run) provides them
        // without writing to the machine's /usr/share.
        let share = fixtures::dir().join("bookworm/prometheus-alertmanager/share/prometheus");
        let script = "mkdir -p /run/e2e/ov/upper /run/e2e/ov/work && mount -t overlay overlay -o \
            lowerdir=/usr/share,upperdir=/run/e2e/ov/upper,workdir=/run/e2e/ov/work /usr/share && \
            mkdir -p /usr/share/prometheus";
        let ok = Command::new("nsenter")
            .args(["-t", &ns.pid.to_string(), "-m", "sh", "-c", script])
            .status()
            .expect("nsenter")
            .success();
        assert!(ok, "overlay on /usr/share inside the namespace");
        let view = PathBuf::from(format!("/proc/{}/root/usr/share/prometheus", ns.pid));
        let copied = Command::new("cp")
            .arg("-r")
            .arg(share.join("alertmanager"))
            .arg(&view)
            .status()
            .expect("cp")
            .success();
        assert!(copied, "alertmanager templates into the namespace");
        let mut host = Host {
            ns,
            server,
            receiver,
            nginx,
            obs,
            ports: BTreeMap::new(),
            components: components.to_vec(),
        };
        for c in components {
            host.ports.insert((*c).to_owned(), free_port());
            let repo = catalog::builtin()[*c].repo.clone();
            host.server.state().github.insert(
                repo,
                vec![
                    release("trixie", c, false, "2025-06-01T00:00:00Z"),
                    release("bookworm", c, true, "2023-01-01T00:00:00Z"),
                ],
            );
        }
        host.write_files(allow, stack_extra);
        for c in components {
            host.install_plain(c);
        }
        let sd = host.ns.systemd();
        for c in components {
            let unit = host.unit_text(c);
            sd.install_unit(&catalog::builtin()[*c].unit, &unit)
                .expect("install unit");
        }
        for c in components {
            sd.systemctl("start", c, &["start", &catalog::builtin()[*c].unit])
                .expect("start unit");
        }
        for c in components {
            assert!(
                host.wait_version(c, &tag_version("bookworm", c)),
                "{c} did not come up at its bookworm version"
            );
        }
        host
    }

    /// Publishes a `node_exporter` release, newest first, whose binary is
    /// `binary` (promu naming, `sha256sums.txt`), and drops the API caches
    /// (under the e2e root and the namespace's own root) so that it is seen
    /// at once, not after 15 minutes.
    pub fn publish_node_binary(&self, version: &str, binary: &[u8]) {
        let (name, tgz) = archives::promu(
            "node_exporter",
            version,
            "amd64",
            &[("node_exporter", binary)],
        );
        let sums = archives::checksums(&[(&name, &tgz)]);
        let asset = |name: String, data: Vec<u8>| FakeAsset {
            name,
            data: Arc::new(data),
            with_digest: false,
        };
        let release = FakeRelease::new(
            &format!("v{version}"),
            "2025-09-01T00:00:00Z",
            vec![asset(name, tgz), asset("sha256sums.txt".into(), sums)],
        );
        self.server
            .state()
            .github
            .get_mut("prometheus/node_exporter")
            .expect("node_exporter is published")
            .insert(0, release);
        for cache in [
            self.root("var/cache/obs-upgrade/api"),
            self.path("/var/cache/obs-upgrade/api"),
        ] {
            let _ = std::fs::remove_dir_all(cache);
        }
    }

    /// A path inside the namespace, seen from the host.
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.ns.pid)).join(inside.trim_start_matches('/'))
    }

    /// A path under the e2e root, seen from the host.
    pub fn root(&self, rel: &str) -> PathBuf {
        self.path(&format!("{ROOT}/{}", rel.trim_start_matches('/')))
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    fn write_files(&self, allow: &[(&str, &str)], extra: &str) {
        let port = |c: &str| self.ports.get(c).copied().unwrap_or(1);
        self.write(
            "etc/prometheus/prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 15s\nalerting:\n  alertmanagers:\n    - \
                    static_configs:\n        - targets: ['127.0.0.1:{}']\nscrape_configs:\n  - \
                    job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
                port("alertmanager"),
                port("node_exporter")
            ),
        );
        self.write(
            "etc/alertmanager/alertmanager.yml",
            "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
        );
        self.write(
            "etc/mysqld_exporter/my.cnf",
            "[client]\nuser=exporter\npassword=secret\nhost=127.0.0.1\nport=1\n",
        );
        let mut stack = format!(
            "defaults:\n  min_release_age: \"0\"\nnotifications:\n  level: always\n  \
                webhooks:\n    - url: {}\ncomponents:\n",
            self.receiver.url("/hook")
        );
        for c in &self.components {
            let allow = allow
                .iter()
                .find(|(n, _)| n == c)
                .map_or("minor", |(_, a)| *a);
            let _ = write!(
                stack,
                "  {c}:\n    api_url: '{}'\n    port: {}\n    allow: {allow}\n    \
                    health_deadline_secs: 30\n",
                self.server.url(),
                port(c)
            );
            if let Some(cfg) = match *c {
                "prometheus" => Some("/etc/prometheus/prometheus.yml"),
                "alertmanager" => Some("/etc/alertmanager/alertmanager.yml"),
                "mysqld_exporter" => Some("/etc/mysqld_exporter/my.cnf"),
                _ => None,
            } {
                let _ = writeln!(stack, "    config_path: {cfg}");
            }
        }
        stack.push_str(extra);
        self.write("etc/obs-upgrade/stack.yaml", &stack);
    }

    fn install_plain(&self, c: &str) {
        let f = fixture(c);
        for (up, deb, pkgs) in f.binaries {
            let src = fixtures::binary("bookworm", pkgs[0], deb).expect("fixture");
            let to = self.root(&format!("usr/local/bin/{up}"));
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&src, &to).expect("install binary");
        }
    }

    /// The unit an operator would write for a component.
    pub fn unit_text(&self, c: &str) -> String {
        let p = self.ports[c];
        let b = |n: &str| format!("{ROOT}/usr/local/bin/{n}");
        let exec = match c {
            "node_exporter" => format!(
                "{} --web.listen-address=127.0.0.1:{p} --no-collector.systemd",
                b("node_exporter")
            ),
            "alertmanager" => format!(
                "{} --config.file={ROOT}/etc/alertmanager/alertmanager.yml \
                    --storage.path={ROOT}/var/lib/alertmanager --web.listen-address=127.0.0.1:{p} \
                    --cluster.listen-address=",
                b("alertmanager")
            ),
            "prometheus" => format!(
                "{} --config.file={ROOT}/etc/prometheus/prometheus.yml \
                    --storage.tsdb.path={ROOT}/var/lib/prometheus \
                    --web.listen-address=127.0.0.1:{p}",
                b("prometheus")
            ),
            "mysqld_exporter" => format!(
                "{} --config.my-cnf={ROOT}/etc/mysqld_exporter/my.cnf \
                    --web.listen-address=127.0.0.1:{p}",
                b("mysqld_exporter")
            ),
            "nginx_exporter" => format!(
                "{} --web.listen-address=127.0.0.1:{p} --nginx.scrape-uri={}",
                b("nginx-prometheus-exporter"),
                self.nginx.url("/stub_status")
            ),
            other => panic!("no unit for {other}"),
        };
        format!(
            "[Unit]\nDescription={c}\nAfter=network.target\n\n[Service]\nExecStart={exec}\n\
                Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n"
        )
    }

    /// Runs `obs-upgrade` inside the namespace against the e2e root.
    pub fn obs(&self, args: &[&str]) -> Output {
        self.obs_env(&[], args)
    }

    /// The same, with extra environment.
    pub fn obs_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.ns.pid.to_string(), "-a", "env"]);
        for (k, v) in env {
            c.arg(format!("{k}={v}"));
        }
        self.run_obs(c, args)
    }

    /// Runs `obs-upgrade` inside the namespace under this umask.
    pub fn obs_umask(&self, umask: &str, args: &[&str]) -> Output {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.ns.pid.to_string(), "-a", "sh", "-c"])
            .arg(format!("umask {umask} && exec \"$@\""))
            .args(["sh", "env"]);
        self.run_obs(c, args)
    }

    /// `prelude` (which ends in `env`) followed by `obs-upgrade` against the
    /// e2e root with `args`.
    fn run_obs(&self, mut prelude: Command, args: &[&str]) -> Output {
        prelude
            .arg("NO_COLOR=1")
            .arg(&self.obs)
            .args([
                "--root",
                ROOT,
                "--unit-dir",
                "/run/systemd/system",
                "--service-manager",
                "systemd",
            ])
            .args(args);
        prelude.output().expect("run obs-upgrade")
    }

    /// The user a component's service runs as (`ps`, inside the namespace).
    pub fn service_user(&self, c: &str) -> Option<String> {
        let pid = self.main_pid(c)?;
        let user = self.ns.run(&["ps", "-o", "user=", "-p", &pid.to_string()]);
        Some(user.trim().to_owned()).filter(|u| !u.is_empty())
    }

    /// The version a component's running service reports in `*_build_info`.
    pub fn running_version(&self, c: &str) -> Option<Version> {
        catalog::builtin()[c].build_info.as_ref()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(5)))
            .build()
            .into();
        let body = agent
            .get(&format!("http://127.0.0.1:{}/metrics", self.ports[c]))
            .call()
            .ok()?
            .into_body()
            .read_to_string()
            .ok()?;
        reported_version(c, &body)
    }

    /// Waits (up to 30 s) for a component to report `v`.
    pub fn wait_version(&self, c: &str, v: &Version) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(30) {
            if self.running_version(c).is_some_and(|r| r.same_release(v)) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }

    /// A unit's main pid.
    pub fn main_pid(&self, c: &str) -> Option<u32> {
        self.ns
            .systemd()
            .show(&catalog::builtin()[c].unit)
            .ok()?
            .main_pid
    }

    /// The store's `current` version of a component.
    pub fn current(&self, c: &str) -> Option<Version> {
        let t = std::fs::read_link(self.root(&format!("opt/obs-upgrade/{c}/current"))).ok()?;
        Version::parse(&t.file_name()?.to_string_lossy()).ok()
    }

    /// The journal's run record.
    pub fn state(&self) -> Option<upgrade_core::journal::RunRecord> {
        upgrade_state::StateStore::open(&self.root("var/lib/obs-upgrade"))
            .expect("state")
            .load()
            .expect("state loads")
    }

    /// History.
    pub fn history(&self) -> Vec<upgrade_core::journal::HistoryRecord> {
        upgrade_state::History::open(&self.root("var/lib/obs-upgrade"))
            .expect("history")
            .read_all()
            .expect("history reads")
            .records
    }

    /// Every file and link under the root except the journal, caches and
    /// service data, with content hashes.
    pub fn tree(&self) -> BTreeMap<String, String> {
        fn walk(d: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                let rel = p
                    .strip_prefix(base)
                    .expect("under base")
                    .display()
                    .to_string();
                if [
                    "var/lib/obs-upgrade",
                    "var/cache",
                    "var/lib/prometheus",
                    "var/lib/alertmanager",
                ]
                .iter()
                .any(|x| rel.starts_with(x))
                {
                    continue;
                }
                let m = p.symlink_metadata().expect("meta");
                if m.file_type().is_symlink() {
                    out.insert(
                        rel,
                        format!("-> {}", std::fs::read_link(&p).expect("link").display()),
                    );
                } else if m.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.insert(
                        rel,
                        hex::encode(Sha256::digest(std::fs::read(&p).expect("read"))),
                    );
                }
            }
        }
        let mut out = BTreeMap::new();
        let base = self.root("");
        walk(&base, &base, &mut out);
        out
    }

    /// Asserts the design's invariants: each binary link resolves to a
    /// complete version (marker present, no `.partial` left), each service is
    /// active and reports what `current` says, at its old or new version, and
    /// the journal agrees.
    pub fn check_invariants(&self, context: &str) {
        let state = self.state();
        if let Some(s) = &state {
            assert!(
                !s.is_unfinished(),
                "{context}: the run is left {}",
                s.status
            );
        }
        for c in &self.components {
            let old = tag_version("bookworm", c);
            let new = tag_version("trixie", c);
            let spec = &catalog::builtin()[*c];
            let running = self
                .running_version(c)
                .unwrap_or_else(|| panic!("{context}: {c} is not serving"));
            assert!(
                running.same_release(&old) || running.same_release(&new),
                "{context}: {c} runs {running}"
            );
            let active = self.ns.systemd().show(&spec.unit).expect("show");
            assert!(active.is_running(), "{context}: {c} is {active:?}");
            let link = self.root(&format!("usr/local/bin/{}", spec.main_binary()));
            if let Some(cur) = self.current(c) {
                assert!(
                    running.same_release(&cur),
                    "{context}: {c} runs {running}, current is {cur}"
                );
                assert!(
                    self.root(&format!(
                        "opt/obs-upgrade/{c}/{cur}/.obs-upgrade-release.json"
                    ))
                    .exists(),
                    "{context}: {c} {cur} is incomplete"
                );
                let target = std::fs::read_link(&link)
                    .unwrap_or_else(|_| panic!("{context}: {} is not a link", link.display()));
                assert!(
                    target.ends_with(format!("{c}/current/{}", spec.main_binary())),
                    "{context}: {}",
                    target.display()
                );
            } else {
                assert!(
                    link.is_file() && running.same_release(&old),
                    "{context}: {c} not adopted yet must be the plain old binary"
                );
            }
            for e in std::fs::read_dir(self.root(&format!("opt/obs-upgrade/{c}")))
                .into_iter()
                .flatten()
                .flatten()
            {
                assert!(
                    !e.file_name().to_string_lossy().ends_with(".partial"),
                    "{context}: partial release left: {}",
                    e.path().display()
                );
            }
            if let Some((_, rec)) = state.as_ref().and_then(|s| {
                s.components
                    .iter()
                    .find(|(k, _)| k.starts_with(&format!("{c}:")))
            }) {
                // Completed: at the step's target (an upgrade's new version,
                // a manual rollback's old one); anything else: where it was.
                let completed = rec.status == upgrade_core::journal::ComponentStatus::Completed;
                let want = if completed { &rec.to } else { &rec.from };
                assert!(
                    running.same_release(want),
                    "{context}: {c} journal says {:?} ({} → {}), runs {running}",
                    rec.status,
                    rec.from,
                    rec.to
                );
            }
        }
    }
}
