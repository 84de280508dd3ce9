//! A real systemd booted as PID 1 of a private PID, mount and cgroup
//! namespace, for tests.
//!
//! /run, /tmp and /var/tmp are private tmpfs inside the namespace (mounted
//! before systemd starts, so its tmpfiles cleanup never reaches the host's
//! /tmp), and so is /var/log/journal where the host keeps a persistent
//! journal: namespaces share the machine id, and their journald would
//! otherwise write into one journal that each reads (a unit of one test
//! would show the lines of the same unit in another). Units that would
//! touch the shared kernel or devices (udev, sysctl, module loading,
//! binfmt, …) are masked in the private /run. Runtime units
//! are written into the namespace's `/run/systemd/system` through
//! `/proc/<pid>/root`. The network namespace is shared (services listen
//! on the host's loopback), except for [`NsSystemd::boot_networked`].

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_systemd::systemctl::Systemd;

const MASKED: &[&str] = &[
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-sysctl.service",
    "systemd-modules-load.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "systemd-random-seed.service",
    "systemd-hwdb-update.service",
    "systemd-firstboot.service",
    "systemd-machine-id-commit.service",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "systemd-remount-fs.service",
    "systemd-pstore.service",
    "modprobe@.service",
    "getty.target",
    "serial-getty@.service",
    "console-getty.service",
    "systemd-journald-audit.socket",
];

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|r| r.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

/// Whether CI is running us (then nothing may be skipped).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Why a namespace systemd cannot be had here, or `None` when it can.
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("needs root (unshare of PID and mount namespaces)".into());
    }
    for tool in ["unshare", "nsenter", "systemctl"] {
        if Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    if !std::path::Path::new("/lib/systemd/systemd").exists() {
        return Some("/lib/systemd/systemd is not installed".into());
    }
    None
}

/// A booted systemd; powered off on drop.
#[derive(Debug)]
pub struct NsSystemd {
    unshare: Child,
    /// systemd's pid in the host's PID namespace.
    pub pid: u32,
}

impl NsSystemd {
    /// Boots and waits until `systemctl is-system-running --wait` answers.
    pub fn boot() -> Self {
        Self::boot_in(false)
    }

    /// The same in a network namespace of its own as well (only `lo`,
    /// down, until the caller plugs a veth in): a host of a fleet.
    pub fn boot_networked() -> Self {
        Self::boot_in(true)
    }

    fn boot_in(own_network: bool) -> Self {
        let script = format!(
            concat!(
                "set -e\n",
                "mount -t tmpfs -o mode=755 tmpfs /run\n",
                "mount -t tmpfs -o mode=1777 tmpfs /tmp\n",
                "mount -t tmpfs -o mode=1777 tmpfs /var/tmp\n",
                "if [ -d /var/log/journal ]; then ",
                "mount -t tmpfs -o mode=2755 tmpfs /var/log/journal; fi\n",
                "mkdir -p /run/systemd/system\n",
                "for u in {}; do ln -sf /dev/null /run/systemd/system/$u; done\n",
                "exec /lib/systemd/systemd --system --unit=basic.target",
            ),
            MASKED.join(" ")
        );
        let unshare = Command::new("unshare")
            .args(own_network.then_some("--net"))
            .args([
                "--fork",
                "--pid",
                "--mount",
                "--mount-proc",
                "--cgroup",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let start = Instant::now();
        let upid = unshare.id();
        let pid = loop {
            let children = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                .unwrap_or_default();
            if let Some(p) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                && std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "systemd")
            {
                break p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "systemd did not start in the namespace"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let ns = NsSystemd { unshare, pid };
        // Until its private socket exists, systemctl answers nothing: ask again.
        let mut state = String::new();
        while start.elapsed() < Duration::from_secs(30) {
            let out = Command::new("nsenter")
                .args([
                    "-t",
                    &pid.to_string(),
                    "-a",
                    "timeout",
                    "10",
                    "systemctl",
                    "is-system-running",
                    "--wait",
                ])
                .output()
                .expect("nsenter");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .clone_into(&mut state);
            if state == "running" || state == "degraded" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            state == "running" || state == "degraded",
            "namespace systemd is {state:?}"
        );
        ns
    }

    /// The prefix that runs a command inside.
    pub fn prefix(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            "-t".into(),
            self.pid.to_string(),
            "-a".into(),
        ]
    }

    /// The namespace's runtime unit directory, seen from the host.
    pub fn unit_dir(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/run/systemd/system", self.pid))
    }

    /// Copies a host file into the namespace's private `/run/obs-upgrade-test/`
    /// and returns its path as seen inside. Services must not run binaries from
    /// /tmp, /var/tmp or /run of the host: inside, those are private tmpfs.
    pub fn stage_file(&self, src: &std::path::Path) -> PathBuf {
        let inside =
            PathBuf::from("/run/obs-upgrade-test").join(src.file_name().expect("file name"));
        let host_view = PathBuf::from(format!("/proc/{}/root", self.pid))
            .join(inside.strip_prefix("/").expect("absolute"));
        std::fs::create_dir_all(host_view.parent().expect("parent")).expect("mkdir in namespace");
        std::fs::copy(src, &host_view).expect("copy into namespace");
        inside
    }

    /// The systemd backend pointed at this instance.
    pub fn systemd(&self) -> Systemd {
        Systemd::new(std::path::Path::new("/"))
            .with_prefix(self.prefix())
            .with_unit_dir(self.unit_dir())
    }

    /// Runs a command inside; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-a"])
            .args(args)
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for NsSystemd {
    fn drop(&mut self) {
        let _ = Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-a", "systemctl", "poweroff"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.unshare.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}
