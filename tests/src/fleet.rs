//! A fleet for tests: hosts that are each a network namespace with its own
//! systemd and sshd and Debian's real exporter builds, on a bridge with
//! the controller (this process) at `.1`; a release API on the bridge
//! (https, a private CA) whose requests are counted; a mirror served over
//! plain http; and real `ansible-playbook` runs of the `obs_upgrade.fleet`
//! collection, installed from a built tarball.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use upgrade_core::catalog;
use upgrade_core::version::Version;

use crate::archives;
use crate::e2e::{self, ROOT};
use crate::fixtures;
use crate::nsd::{self, NsSystemd};
use crate::release_server::{FakeAsset, FakeRelease, ReleaseServer};
use crate::static_server::StaticServer;
use crate::tls::PrivateCa;

/// The components every fleet host runs.
pub const COMPONENTS: [&str; 2] = ["node_exporter", "mysqld_exporter"];

/// Why a fleet cannot be had here (`None`: it can).
pub fn unavailable() -> Option<String> {
    if let Some(why) = nsd::unavailable() {
        return Some(why);
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("ansible-playbook", "--version"),
        ("ansible-galaxy", "--version"),
        ("ssh-keygen", "-?"),
        ("/usr/sbin/sshd", "-V"),
    ] {
        if Command::new(tool).arg(arg).output().is_err() {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup installs it)"
            ));
        }
    }
    None
}

/// Whether the fleet prerequisites are here; says why not (and fails in CI).
pub fn available(test: &str) -> bool {
    if let Some(why) = unavailable() {
        assert!(!nsd::in_ci(), "{test}: {why}");
        eprintln!("SKIPPED {test}: {why}");
        return false;
    }
    e2e::available(test)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// One `-e` argument as JSON: a value that is JSON (a list) stays one,
/// anything else is a string.
fn extra_var(key: &str, value: &str) -> String {
    let v = serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .filter(serde_json::Value::is_array)
        .unwrap_or_else(|| serde_json::Value::String(value.to_owned()));
    serde_json::json!({ key: v }).to_string()
}

/// A bridge with the controller at `<prefix>.1`; removed on drop.
pub struct Net {
    bridge: String,
    /// `10.233.N`: the /24 of this fleet.
    pub prefix: String,
    veths: Vec<String>,
}

impl Net {
    /// A bridge named after this process (two fleets never share one).
    pub fn create() -> Net {
        let n = std::process::id() % 250;
        let bridge = format!("obsfl{n}");
        let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        let prefix = format!("10.233.{n}");
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("{prefix}.1/24"), "dev", &bridge]);
        ip(&["link", "set", &bridge, "up"]);
        Net {
            bridge,
            prefix,
            veths: Vec::new(),
        }
    }

    /// The controller's address on the bridge.
    pub fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// Plugs the network namespace of `pid` in as host `i`; its address.
    pub fn attach(&mut self, pid: u32, i: usize) -> String {
        let outer = format!("{}h{i}", self.bridge);
        let inner = format!("{}n{i}", self.bridge);
        let _ = Command::new("ip").args(["link", "del", &outer]).output();
        ip(&[
            "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &pid.to_string()]);
        ip(&["link", "set", &outer, "master", &self.bridge, "up"]);
        self.veths.push(outer);
        let addr = format!("{}.{}", self.prefix, 10 + i);
        let script = format!(
            "ip link set lo up && ip link set {inner} name eth0 && \
             ip addr add {addr}/24 dev eth0 && ip link set eth0 up"
        );
        run(Command::new("nsenter").args(["-t", &pid.to_string(), "-n", "sh", "-c", &script]));
        addr
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for v in &self.veths {
            let _ = Command::new("ip").args(["link", "del", v]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// One host of the fleet.
pub struct FleetHost {
    /// Its systemd (and network namespace).
    pub ns: NsSystemd,
    /// Its inventory name.
    pub name: String,
    /// Its address on the bridge.
    pub addr: String,
    /// Ports by component (on the host's own loopback).
    pub ports: BTreeMap<String, u16>,
}

impl FleetHost {
    /// A path inside, seen from here.
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.ns.pid)).join(inside.trim_start_matches('/'))
    }

    /// A path under the host's root (`/run/e2e/root`), seen from here.
    pub fn root(&self, rel: &str) -> PathBuf {
        self.path(&format!("{ROOT}/{}", rel.trim_start_matches('/')))
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// A unit's main pid.
    pub fn main_pid(&self, c: &str) -> Option<u32> {
        self.ns
            .systemd()
            .show(&catalog::builtin()[c].unit)
            .ok()?
            .main_pid
    }

    /// The version a component's service reports (`*_build_info`), asked
    /// from inside the host (its loopback is its own).
    pub fn running_version(&self, c: &str) -> Option<Version> {
        let url = format!("http://127.0.0.1:{}/metrics", self.ports[c]);
        let body = self.ns.run(&["curl", "-sf", "--max-time", "5", &url]);
        e2e::reported_version(c, &body)
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

    /// Each component's (running version, main pid).
    pub fn snapshot(&self) -> BTreeMap<String, (Option<Version>, Option<u32>)> {
        COMPONENTS
            .iter()
            .map(|c| ((*c).to_owned(), (self.running_version(c), self.main_pid(c))))
            .collect()
    }

    /// Runs `obs-upgrade` (as installed by the role) on this host.
    pub fn obs(&self, args: &[&str]) -> Output {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.ns.pid.to_string(), "-a", "env", "NO_COLOR=1"])
            .arg(format!("{ROOT}/usr/local/sbin/obs-upgrade"))
            .args([
                "--root",
                ROOT,
                "--unit-dir",
                "/run/systemd/system",
                "--service-manager",
                "systemd",
            ])
            .args(args);
        c.output().expect("run obs-upgrade")
    }
}

/// The fleet: the bridge, the hosts, the release API, the mirror, and a
/// directory for keys, the inventory and Ansible's configuration.
pub struct Fleet {
    /// The hosts (dropped before the bridge).
    pub hosts: Vec<FleetHost>,
    /// The release API on the bridge (https).
    pub api: ReleaseServer,
    /// The mirror directory.
    pub mirror_dir: PathBuf,
    /// The mirror served over http on the bridge.
    pub mirror: StaticServer,
    /// The controller's root (its stack file, pin files, report directories).
    pub controller: PathBuf,
    /// Keys, inventory, ansible.cfg, the installed collection.
    pub work: tempfile::TempDir,
    /// The private CA of the API.
    pub ca: PrivateCa,
    /// The bridge (dropped last).
    pub net: Net,
}

/// A `node_exporter` release whose binary answers `--version` but dies as
/// a service: it stages and verifies, then fails its health check.
pub fn broken_node_release(version: &str) -> FakeRelease {
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in --version) echo \"node_exporter, version {version} \
         (branch: HEAD, revision: broken)\";; *) echo 'broken on purpose' >&2; exit 1;; esac\n"
    );
    let (name, tgz) = archives::promu(
        "node_exporter",
        version,
        "amd64",
        &[("node_exporter", script.as_bytes())],
    );
    let sums = archives::checksums(&[(&name, &tgz)]);
    let asset = |name: String, data: Vec<u8>| FakeAsset {
        name,
        data: Arc::new(data),
        with_digest: false,
    };
    FakeRelease::new(
        &format!("v{version}"),
        "2025-09-01T00:00:00Z",
        vec![asset(name, tgz), asset("sha256sums.txt".into(), sums)],
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn stack_text(api: &str, ca_file: &str, ports: &BTreeMap<String, u16>) -> String {
    let mut s = String::from("defaults:\n  min_release_age: \"0\"\ncomponents:\n");
    for c in COMPONENTS {
        let _ = write!(
            s,
            "  {c}:\n    api_url: '{api}'\n    ca_file: {ca_file}\n    port: {}\n    \
             allow: minor\n    health_deadline_secs: 15\n",
            ports.get(c).copied().unwrap_or(1)
        );
        if c == "mysqld_exporter" {
            s.push_str("    config_path: /etc/mysqld_exporter/my.cnf\n");
        }
    }
    s
}

impl Fleet {
    /// `n` hosts at the bookworm versions; both versions (and `extra`
    /// releases of `node_exporter`) published on the API.
    pub fn boot(n: usize, extra: &[FakeRelease]) -> Fleet {
        let mut net = Net::create();
        let gw = net.gateway();
        let ca = PrivateCa::for_names(&["localhost", "127.0.0.1", &gw]);
        let api = ReleaseServer::start_tls_at(&ca, &gw);
        for c in COMPONENTS {
            let repo = catalog::builtin()[c].repo.clone();
            let mut list = vec![
                e2e::release("trixie", c, false, "2025-06-01T00:00:00Z"),
                e2e::release("bookworm", c, true, "2023-01-01T00:00:00Z"),
            ];
            if c == "node_exporter" {
                for r in extra.iter().rev() {
                    list.insert(0, r.clone());
                }
            }
            api.state().github.insert(repo, list);
        }
        let work = tempfile::tempdir().expect("work dir");
        let controller = work.path().join("controller");
        std::fs::create_dir_all(controller.join("etc/obs-upgrade")).expect("controller root");
        let ca_host = ca.write_ca(&controller.join("etc/obs-upgrade/ca.pem"));
        std::fs::write(
            controller.join("etc/obs-upgrade/stack.yaml"),
            stack_text(&api.url(), &ca_host.display().to_string(), &BTreeMap::new()),
        )
        .expect("controller stack");
        let mirror_dir = work.path().join("mirror");
        std::fs::create_dir_all(&mirror_dir).expect("mirror dir");
        let mirror = StaticServer::start(&mirror_dir, &format!("{gw}:0"));
        let key = work.path().join("id_ed25519");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        // Hosts boot in parallel: each takes a few seconds.
        let booted: Vec<(usize, NsSystemd)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|i| s.spawn(move || (i, NsSystemd::boot_networked())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("boot"))
                .collect()
        });
        let mut hosts = Vec::new();
        for (i, ns) in booted {
            let addr = net.attach(ns.pid, i);
            let host = FleetHost {
                ns,
                name: format!("host{i}"),
                addr,
                ports: COMPONENTS
                    .iter()
                    .map(|c| ((*c).to_owned(), free_port()))
                    .collect(),
            };
            hosts.push(host);
        }
        let fleet_key = key.with_extension("pub");
        std::thread::scope(|s| {
            for h in &hosts {
                let (api, ca, key) = (&api, &ca, &fleet_key);
                s.spawn(move || h.provision(&api.url(), &ca.ca_pem, key));
            }
        });
        let fleet = Fleet {
            hosts,
            api,
            mirror_dir,
            mirror,
            controller,
            work,
            ca,
            net,
        };
        fleet.install_collection();
        fleet.write_inventory();
        fleet
    }

    /// Builds the collection and installs the tarball, as an operator does.
    fn install_collection(&self) {
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../ansible_collections/obs_upgrade/fleet");
        let build = self.work.path().join("build");
        run(Command::new("ansible-galaxy")
            .args(["collection", "build", "--force", "--output-path"])
            .arg(&build)
            .arg(&src));
        let tarball = std::fs::read_dir(&build)
            .expect("build dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "gz"))
            .expect("a collection tarball");
        run(Command::new("ansible-galaxy")
            .args(["collection", "install", "--force", "-p"])
            .arg(self.work.path().join("collections"))
            .arg(&tarball));
    }

    fn write_inventory(&self) {
        let w = self.work.path();
        let bin = w.join("obs-upgrade");
        let built = crate::bin("obs-upgrade");
        // A stripped copy: the same program, a fraction of the bytes to copy.
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(&bin)
            .arg(&built)
            .status()
            .is_ok_and(|s| s.success());
        if !stripped {
            std::fs::copy(&built, &bin).expect("copy the binary");
        }
        let mut inv = String::from("[obs_upgrade]\n");
        for h in &self.hosts {
            let _ = writeln!(inv, "{} ansible_host={}", h.name, h.addr);
        }
        let _ = write!(
            inv,
            "\n[obs_upgrade:vars]\nansible_user=root\nansible_ssh_private_key_file={key}\n\
             ansible_python_interpreter=/usr/bin/python3\n\
             obs_upgrade_binary_src={bin}\nobs_upgrade_bin={ROOT}/usr/local/sbin/obs-upgrade\n\
             obs_upgrade_root={ROOT}\nobs_upgrade_unit_dir=/run/systemd/system\n\
             obs_upgrade_service_manager=systemd\n",
            key = w.join("id_ed25519").display(),
            bin = bin.display(),
        );
        std::fs::write(w.join("inventory.ini"), inv).expect("inventory");
        let cfg = format!(
            "[defaults]\ncollections_path = {c}\nhost_key_checking = False\n\
             remote_tmp = /tmp/.ansible-remote\nlocal_tmp = {l}\nforks = 50\n\
             retry_files_enabled = False\ninterpreter_python = /usr/bin/python3\n\
             nocolor = True\n\n[ssh_connection]\npipelining = True\n\
             ssh_args = -o ControlMaster=auto -o ControlPersist=60s \
             -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no\n\
             control_path_dir = {cp}\n",
            c = w.join("collections").display(),
            l = w.join("ansible-local").display(),
            cp = w.join("cp").display(),
        );
        std::fs::write(w.join("ansible.cfg"), cfg).expect("ansible.cfg");
    }

    /// `obs-upgrade` on the controller's root.
    pub fn controller_obs(&self, args: &[&str]) -> Output {
        crate::obs_upgrade(&self.controller, args)
    }

    /// Pins these exact versions (`NAME=VERSION`) into `name` under the
    /// controller, downloading from the mirror, and fills the mirror.
    pub fn pin(&self, name: &str, set: &[&str]) -> PathBuf {
        let out = self.controller.join(name);
        let mut args = vec!["pin", "--mirror-url"];
        let url = self.mirror.url();
        args.push(&url);
        for s in set {
            args.extend(["--set", s]);
        }
        let out_s = out.display().to_string();
        args.extend(["--output", &out_s]);
        let o = self.controller_obs(&args);
        assert!(o.status.success(), "pin: {}", crate::output_text(&o));
        let mirror = self.mirror_dir.display().to_string();
        let o = self.controller_obs(&["mirror", "fill", &mirror, "--pins", &out_s]);
        assert!(
            o.status.success(),
            "mirror fill: {}",
            crate::output_text(&o)
        );
        out
    }

    /// `ansible-playbook` for a playbook of the collection, with this
    /// fleet's configuration and inventory and these extra variables.
    fn ansible_playbook(&self, name: &str, vars: &[(&str, &str)]) -> Command {
        let w = self.work.path();
        let mut c = Command::new("ansible-playbook");
        c.env("ANSIBLE_CONFIG", w.join("ansible.cfg"))
            .env("HOME", w)
            .arg("-i")
            .arg(w.join("inventory.ini"))
            .arg(format!("obs_upgrade.fleet.{name}"));
        for (k, v) in vars {
            c.arg("-e").arg(extra_var(k, v));
        }
        c
    }

    /// Runs a playbook of the collection with extra variables; its output
    /// (stdout and stderr) and whether it succeeded.
    pub fn playbook(&self, name: &str, vars: &[(&str, &str)], check: bool) -> (bool, String) {
        let mut c = self.ansible_playbook(name, vars);
        if check {
            c.arg("--check");
        }
        let out = c.output().expect("run ansible-playbook");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// The same, streaming: the output, success, and the seconds since the
    /// start at which each line containing `marker` appeared (a play's or a
    /// batch's banner).
    pub fn playbook_timed(
        &self,
        name: &str,
        vars: &[(&str, &str)],
        marker: &str,
    ) -> (bool, String, Vec<f64>) {
        use std::io::BufRead as _;
        let mut c = self.ansible_playbook(name, vars);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        let start = std::time::Instant::now();
        let mut child = c.spawn().expect("run ansible-playbook");
        let stdout = child.stdout.take().expect("stdout");
        let mut text = String::new();
        let mut marks = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(marker) {
                marks.push(start.elapsed().as_secs_f64());
            }
            text.push_str(&line);
            text.push('\n');
        }
        marks.push(start.elapsed().as_secs_f64());
        let ok = child.wait().expect("wait").success();
        (ok, text, marks)
    }

    /// The PLAY RECAP counters per host (`ok`, `changed`, `failed`, …).
    pub fn recap(output: &str) -> BTreeMap<String, BTreeMap<String, u32>> {
        let mut out = BTreeMap::new();
        let Some(recap) = output.split("PLAY RECAP").nth(1) else {
            return out;
        };
        for line in recap.lines() {
            let Some((host, rest)) = line.split_once(" : ") else {
                continue;
            };
            let counters = rest
                .split_whitespace()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.parse().ok()?))
                })
                .collect();
            out.insert(host.trim().to_owned(), counters);
        }
        out
    }

    /// The release API requests seen so far.
    pub fn api_requests(&self) -> usize {
        self.api.seen("/repos/").len()
    }
}

impl FleetHost {
    /// sshd, the bookworm exporters with their units, the stack file.
    fn provision(&self, api: &str, ca_pem: &str, key_pub: &Path) {
        let fleet_dir = self.path("/run/fleet");
        std::fs::create_dir_all(&fleet_dir).expect("fleet dir");
        std::fs::create_dir_all(self.path("/run/sshd")).expect("privsep dir");
        let host_key = fleet_dir.join("host_key");
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key));
        std::fs::copy(key_pub, fleet_dir.join("authorized_keys")).expect("authorized keys");
        std::fs::write(
            fleet_dir.join("sshd_config"),
            format!(
                "ListenAddress {}\nHostKey /run/fleet/host_key\nPermitRootLogin \
                 prohibit-password\nAuthorizedKeysFile /run/fleet/authorized_keys\nUsePAM no\n\
                 StrictModes no\nPidFile /run/fleet/sshd.pid\nSubsystem sftp \
                 /usr/lib/openssh/sftp-server\nMaxStartups 100\n",
                self.addr
            ),
        )
        .expect("sshd_config");
        let sd = self.ns.systemd();
        sd.install_unit(
            "fleet-sshd.service",
            "[Service]\nExecStart=/usr/sbin/sshd -D -e -f /run/fleet/sshd_config\n",
        )
        .expect("sshd unit");
        sd.systemctl("start", "sshd", &["start", "fleet-sshd.service"])
            .expect("start sshd");
        self.write("etc/obs-upgrade/ca.pem", ca_pem);
        self.write(
            "etc/obs-upgrade/stack.yaml",
            &stack_text(api, &format!("{ROOT}/etc/obs-upgrade/ca.pem"), &self.ports),
        );
        self.write(
            "etc/mysqld_exporter/my.cnf",
            "[client]\nuser=exporter\npassword=secret\nhost=127.0.0.1\nport=1\n",
        );
        for c in COMPONENTS {
            let bin = fixtures::binary("bookworm", e2e::debian_package(c), e2e::debian_binary(c))
                .expect("fixture");
            let to = self.root(&format!("usr/local/bin/{c}"));
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&bin, &to).expect("install binary");
            let p = self.ports[c];
            let b = format!("{ROOT}/usr/local/bin/{c}");
            let exec = match c {
                "node_exporter" => {
                    format!("{b} --web.listen-address=127.0.0.1:{p} --no-collector.systemd")
                }
                _ => format!(
                    "{b} --config.my-cnf={ROOT}/etc/mysqld_exporter/my.cnf \
                     --web.listen-address=127.0.0.1:{p}"
                ),
            };
            let unit = format!(
                "[Unit]\nDescription={c}\n\n[Service]\nExecStart={exec}\nRestart=on-failure\n\n\
                 [Install]\nWantedBy=multi-user.target\n"
            );
            let spec = &catalog::builtin()[c];
            sd.install_unit(&spec.unit, &unit).expect("install unit");
            sd.systemctl("start", c, &["start", &spec.unit])
                .expect("start unit");
        }
        for c in COMPONENTS {
            assert!(
                self.wait_version(c, &e2e::tag_version("bookworm", c)),
                "{}: {c} did not come up at its bookworm version",
                self.name
            );
        }
    }
}
