//! Hostile input through the real CLI: every case is refused (or its
//! hostile part dropped) with a clear message, the host tree is left as it
//! was, `state.json` and `history.jsonl` stay small, and the process's peak
//! memory stays under 100 MiB (measured with `getrusage` of the children).
//! Each test is its own process under nextest, so the peak is this case's.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use obs_upgrade_tests::archives::{checksums, fake_binary, header, promu, sha256, streamed_tar_gz};
use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease, ReleaseServer};
use obs_upgrade_tests::{bin, obs_upgrade, output_text, sandbox};

/// The peak memory any single hostile input may cost.
const MAX_PEAK_KIB: i64 = 100 * 1024;
/// The most `state.json` or `history.jsonl` may grow to in one hostile run.
const MAX_STATE_BYTES: u64 = 256 * 1024;

const ARCHIVE: &str = "node_exporter-1.9.1.linux-amd64.tar.gz";

struct Host {
    _dir: tempfile::TempDir,
    root: PathBuf,
    server: ReleaseServer,
}

impl Drop for Host {
    fn drop(&mut self) {
        sandbox::stop_all(&self.root);
    }
}

fn asset(name: &str, data: Vec<u8>) -> FakeAsset {
    FakeAsset {
        name: name.into(),
        data: Arc::new(data),
        with_digest: false,
    }
}

impl Host {
    /// A sandbox whose `node_exporter` (1.8.2) lists its releases from a
    /// loopback server publishing `archive` as 1.9.1 (with a correct
    /// checksum file).
    fn new(archive: Vec<u8>) -> Host {
        let server = ReleaseServer::start();
        let sums = checksums(&[(ARCHIVE, &archive)]);
        server.state().github.insert(
            "prometheus/node_exporter".into(),
            vec![FakeRelease::new(
                "v1.9.1",
                "2026-01-01T00:00:00Z",
                vec![asset(ARCHIVE, archive), asset("sha256sums.txt", sums)],
            )],
        );
        // The sandbox: three exporters running under the supervisor; its
        // node_exporter (1.8.2) now lists its releases from the server.
        let dir = tempfile::tempdir().unwrap();
        let created = sandbox::create(dir.path(), &bin("sandbox-exporter")).unwrap();
        let root = created.root;
        let stack_path = root.join("etc/obs-upgrade/stack.yaml");
        let stack = std::fs::read_to_string(&stack_path).unwrap();
        let from = format!(
            "  node_exporter:\n    source: mirror\n    api_url: \"file://{}\"\n",
            created.mirror.display()
        );
        assert!(stack.contains(&from), "{stack}");
        let to = format!("  node_exporter:\n    api_url: '{}'\n", server.url());
        std::fs::write(&stack_path, stack.replace(&from, &to)).unwrap();
        Host {
            _dir: dir,
            root,
            server,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        obs_upgrade(&self.root, args)
    }

    /// Every file of the host outside obs-upgrade's own state, cache and
    /// logs, with its content's digest and mode (links by target).
    fn tree(&self) -> BTreeMap<PathBuf, String> {
        fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_owned();
                // obs-upgrade's own state, cache, logs and self-metrics.
                if [
                    "var/lib/obs-upgrade",
                    "var/cache/obs-upgrade",
                    "var/log",
                    "var/lib/prometheus/node-exporter/obs_upgrade.prom",
                ]
                .iter()
                .any(|x| rel.starts_with(x))
                {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&p).unwrap();
                if meta.is_dir() {
                    walk(root, &p, out);
                } else if meta.file_type().is_symlink() {
                    out.insert(
                        rel,
                        format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                    );
                } else if !meta.is_file() {
                    out.insert(rel, format!("special {:o}", meta.permissions().mode()));
                } else {
                    let digest = sha256(&std::fs::read(&p).unwrap());
                    out.insert(rel, format!("{digest} {:o}", meta.permissions().mode()));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &self.root, &mut out);
        out
    }

    fn state_sizes(&self) -> Vec<(String, u64)> {
        ["state.json", "history.jsonl"]
            .iter()
            .map(|f| {
                let p = self.root.join("var/lib/obs-upgrade").join(f);
                (
                    (*f).to_owned(),
                    std::fs::metadata(&p).map_or(0, |m| m.len()),
                )
            })
            .collect()
    }
}

/// The largest resident set of any child this test process has waited for, in KiB.
fn children_peak_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss()
}

/// Runs `args` and checks the contract: exit `code`, `want` said, the host
/// tree unchanged, the state small, the memory bounded.
fn hostile(host: &Host, args: &[&str], code: i32, want: &str) -> String {
    let before = host.tree();
    let o = host.run(args);
    let shown = output_text(&o);
    assert_eq!(o.status.code(), Some(code), "{shown}");
    assert!(shown.contains(want), "expected `{want}` in:\n{shown}");
    assert!(
        shown.len() < 16 * 1024,
        "the output is bounded: {} bytes",
        shown.len()
    );
    assert_eq!(host.tree(), before, "the host tree is unchanged");
    for (file, size) in host.state_sizes() {
        assert!(size <= MAX_STATE_BYTES, "{file} is {size} bytes");
    }
    let peak = children_peak_kib();
    assert!(peak > 0, "the measurement works");
    assert!(peak < MAX_PEAK_KIB, "peak memory {peak} KiB for {args:?}");
    shown
}

#[test]
fn a_gnu_long_name_of_256_mib_is_refused_with_bounded_memory_and_state() {
    let archive = streamed_tar_gz(&[
        (
            header(tar::EntryType::GNULongName, "././@LongLink", 256 << 20),
            256 << 20,
            b'a',
        ),
        (header(tar::EntryType::Regular, "node_exporter", 1), 1, b'x'),
    ]);
    let host = Host::new(archive);
    let shown = hostile(
        &host,
        &["apply", "--yes", "--component", "node_exporter"],
        1,
        "a GNU long-name header exceeds the limit of 65536",
    );
    // The refusal is in the history, once, and short.
    let history =
        std::fs::read_to_string(host.root.join("var/lib/obs-upgrade/history.jsonl")).unwrap();
    assert!(history.contains("GNU long-name header"), "{history}");
    assert!(!shown.contains("aaaaaaaaaaaaaaaa"), "{shown}");
    // And status, resume and a second apply still work on that state.
    assert_eq!(host.run(&["status"]).status.code(), Some(0));
    hostile(
        &host,
        &["apply", "--yes", "--component", "node_exporter"],
        1,
        "GNU long-name header",
    );
}

#[test]
fn a_pax_header_of_64_mib_is_refused_not_installed() {
    let archive = streamed_tar_gz(&[
        (
            header(tar::EntryType::XHeader, "PaxHeader/x", 64 << 20),
            64 << 20,
            b'9',
        ),
        (header(tar::EntryType::Regular, "node_exporter", 1), 1, b'x'),
    ]);
    let host = Host::new(archive);
    hostile(
        &host,
        &["apply", "--yes", "--component", "node_exporter"],
        1,
        "a PAX header exceeds the limit of 65536",
    );
}

fn good_archive() -> Vec<u8> {
    promu(
        "node_exporter",
        "1.9.1",
        "amd64",
        &[("node_exporter", &fake_binary("node_exporter", "1.9.1"))],
    )
    .1
}

#[test]
fn an_api_page_over_the_limit_is_refused() {
    let host = Host::new(good_archive());
    host.server.state().faults.notes_bytes = 20 << 20;
    hostile(
        &host,
        &["check"],
        1,
        "answered more than 16777216 bytes for one page",
    );
}

#[test]
fn a_listing_of_many_large_pages_stops_at_its_limits() {
    let host = Host::new(good_archive());
    {
        let mut st = host.server.state();
        let releases = st.github.get_mut("prometheus/node_exporter").unwrap();
        for i in 0..40 {
            releases.push(FakeRelease::new(
                &format!("v1.8.{}", 100 - i),
                "2025-01-01T00:00:00Z",
                vec![],
            ));
        }
        st.per_page_max = 1;
        st.rate_remaining = 1000;
        st.faults.notes_bytes = 4 << 20;
    }
    hostile(&host, &["check"], 0, "stopped listing");
    let pages = host.server.seen("/repos/").len();
    assert!(pages <= 13, "48 MiB of 4 MiB pages: {pages} requests");
}

#[test]
fn an_asset_size_near_u64_max_is_refused_without_overflow() {
    let host = Host::new(good_archive());
    host.server.state().faults.asset_size = Some(u64::MAX - 1);
    hostile(
        &host,
        &["apply", "--yes", "--component", "node_exporter"],
        1,
        "the release lists it at 18446744073709551614 bytes, over the download limit",
    );
}

#[test]
fn a_checksum_file_over_the_limit_is_refused() {
    let host = Host::new(good_archive());
    {
        let mut st = host.server.state();
        let r = &mut st.github.get_mut("prometheus/node_exporter").unwrap()[0];
        let mut sums = checksums(&[(ARCHIVE, &good_archive())]);
        sums.extend(std::iter::repeat_n(b'#', 8 << 20));
        r.assets[1] = asset("sha256sums.txt", sums);
    }
    hostile(
        &host,
        &["apply", "--yes", "--component", "node_exporter"],
        1,
        "over the limit of 4194304 bytes",
    );
}

#[test]
fn a_tag_of_a_mebibyte_is_dropped_from_the_listing() {
    let host = Host::new(good_archive());
    {
        let mut st = host.server.state();
        let releases = st.github.get_mut("prometheus/node_exporter").unwrap();
        releases.push(FakeRelease::new(
            &"v9".repeat(512 * 1024),
            "2026-01-01T00:00:00Z",
            vec![],
        ));
    }
    let o = host.run(&["-v", "check"]);
    let shown = output_text(&o);
    assert_eq!(o.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("skipping a release with a 1048576-byte tag"),
        "{shown}"
    );
    assert!(shown.contains("1.9.1"), "{shown}");
    assert!(shown.len() < 16 * 1024);
    assert!(children_peak_kib() < MAX_PEAK_KIB);
}

#[test]
fn stack_files_that_are_devices_fifos_or_huge_are_refused_at_once() {
    let host = Host::new(good_archive());
    let fifo = host.root.join("etc/obs-upgrade/fifo.yaml");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let huge = host.root.join("etc/obs-upgrade/huge.yaml");
    std::fs::write(&huge, vec![b'#'; 5 << 20]).unwrap();
    for (stack, want) in [
        ("/dev/zero", "not a regular file"),
        (fifo.to_str().unwrap(), "not a regular file"),
        (huge.to_str().unwrap(), "over the limit of 4194304"),
    ] {
        hostile(&host, &["--config", stack, "config", "check"], 2, want);
    }
}

#[test]
fn names_that_would_climb_out_are_refused_before_anything_runs() {
    let host = Host::new(good_archive());
    let stack = host.root.join("etc/obs-upgrade/evil.yaml");
    std::fs::write(
        &stack,
        "components:\n  ../evil:\n    repo: a/b\n    asset: x\n    \
         binaries: [{name: ../../bin/sh, path: sh}]\n",
    )
    .unwrap();
    hostile(
        &host,
        &["--config", stack.to_str().unwrap(), "config", "check"],
        2,
        "../evil",
    );
}
