//! Hostile archives are refused, nothing is written outside the staging
//! directory, and the store removes the partial release.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use obs_upgrade_tests::archives::{checksums, fake_binary, header, streamed_tar_gz};
use obs_upgrade_tests::release_server::{FakeAsset, FakeRelease, ReleaseServer};
use upgrade_core::catalog::{ArchiveKind, Platform};
use upgrade_core::config::{Format, Stack};
use upgrade_core::ports::ReleaseSource;
use upgrade_fetch::api::ApiClient;
use upgrade_fetch::extract::{self, Limits};
use upgrade_fetch::http::{Http, HttpOptions};
use upgrade_fetch::sources::Sources;
use upgrade_fetch::store::Store;

/// One raw tar entry, header written by hand so that nothing sanitises it.
enum Raw<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    CharDevice(&'a str),
}

fn raw_tar_gz(entries: &[Raw<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for e in entries {
        let mut h = tar::Header::new_old();
        let (path, kind, data, link): (&str, tar::EntryType, &[u8], Option<&str>) = match e {
            Raw::File(p, d) => (p, tar::EntryType::Regular, d, None),
            Raw::Symlink(p, t) => (p, tar::EntryType::Symlink, b"", Some(t)),
            Raw::Hardlink(p, t) => (p, tar::EntryType::Link, b"", Some(t)),
            Raw::CharDevice(p) => (p, tar::EntryType::Char, b"", None),
        };
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(t) = link {
            old.linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

struct Sandbox {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    dest: PathBuf,
    archive: PathBuf,
}

impl Sandbox {
    fn new(bytes: &[u8], ext: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        // Deep enough that `../../x` stays inside `base`, where we can look for it.
        let base = tmp.path().to_owned();
        let dest = base.join("a/b/stage");
        std::fs::create_dir_all(&dest).unwrap();
        let archive = base.join(format!("archive.{ext}"));
        std::fs::write(&archive, bytes).unwrap();
        Sandbox {
            _tmp: tmp,
            base,
            dest,
            archive,
        }
    }

    /// Every path under base that is not the archive, the stage dir's parents, or inside the stage dir.
    fn outside(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                out.push(e.path());
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
        let mut all = Vec::new();
        walk(&self.base, &mut all);
        all.into_iter()
            .filter(|p| {
                !p.starts_with(&self.dest)
                    && p != &self.archive
                    && p != &self.base.join("a")
                    && p != &self.base.join("a/b")
            })
            .collect()
    }

    fn extract(&self, kind: ArchiveKind, limits: Limits) -> Result<(), extract::Error> {
        extract::extract(&self.archive, kind, &self.dest, None, "bin", limits)
    }
}

fn refused(bytes: &[u8], kind: ArchiveKind, want: &str) {
    let ext = if kind == ArchiveKind::Zip {
        "zip"
    } else {
        "tar.gz"
    };
    let s = Sandbox::new(bytes, ext);
    let err = s
        .extract(
            kind,
            Limits {
                max_bytes: 1024 * 1024,
                max_entries: 50,
                max_stream: 8 * 1024 * 1024,
                ..Limits::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains(want), "expected `{want}` in: {err}");
    assert_eq!(
        s.outside(),
        Vec::<PathBuf>::new(),
        "nothing outside the staging directory"
    );
    assert!(!Path::new("/tmp/obs-upgrade-evil").exists());
}

#[test]
fn tar_traversal_absolute_links_and_devices_are_refused() {
    refused(
        &raw_tar_gz(&[Raw::File("../../evil", b"x")]),
        ArchiveKind::TarGz,
        "climbs out with `..`",
    );
    refused(
        &raw_tar_gz(&[Raw::File("ok/../../../evil", b"x")]),
        ArchiveKind::TarGz,
        "climbs out",
    );
    refused(
        &raw_tar_gz(&[Raw::File("/tmp/obs-upgrade-evil", b"x")]),
        ArchiveKind::TarGz,
        "absolute path",
    );
    refused(
        &raw_tar_gz(&[Raw::Symlink("link", "../../evil")]),
        ArchiveKind::TarGz,
        "outside the release directory",
    );
    refused(
        &raw_tar_gz(&[Raw::Symlink("link", "/etc")]),
        ArchiveKind::TarGz,
        "outside the release directory",
    );
    refused(
        &raw_tar_gz(&[Raw::Symlink("d", "sub"), Raw::File("d/x", b"x")]),
        ArchiveKind::TarGz,
        "written through a symbolic link",
    );
    refused(
        &raw_tar_gz(&[Raw::Hardlink("h", "../../evil")]),
        ArchiveKind::TarGz,
        "hard link",
    );
    refused(
        &raw_tar_gz(&[Raw::Hardlink("h", "/etc/passwd")]),
        ArchiveKind::TarGz,
        "hard link",
    );
    refused(
        &raw_tar_gz(&[Raw::CharDevice("null")]),
        ArchiveKind::TarGz,
        "devices, FIFOs, sparse files and others are refused",
    );
    refused(
        &raw_tar_gz(&[Raw::File("x", b"1"), Raw::File("x", b"2")]),
        ArchiveKind::TarGz,
        "appears twice",
    );
}

fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = 1 + k.len() + 1 + v.len() + 1; // " k=v\n"
        let mut len = body + 1;
        while len.to_string().len() + body != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// A tar.gz of `(header, data)` pairs written as given.
fn tar_gz_of(entries: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for (h, data) in entries {
        gz.write_all(h.as_bytes()).unwrap();
        gz.write_all(data).unwrap();
        gz.write_all(&vec![0u8; (512 - data.len() % 512) % 512])
            .unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

#[test]
fn huge_extension_headers_are_refused_before_they_are_read() {
    // A GNU long name announcing (and carrying) 256 MiB: once read whole,
    // then copied into every error, journal and history line.
    let long = streamed_tar_gz(&[
        (
            header(tar::EntryType::GNULongName, "././@LongLink", 256 << 20),
            256 << 20,
            b'a',
        ),
        (header(tar::EntryType::Regular, "bin", 1), 1, b'x'),
    ]);
    assert!(long.len() < 2 << 20, "small on the wire: {}", long.len());
    refused(
        &long,
        ArchiveKind::TarGz,
        "a GNU long-name header exceeds the limit of 65536",
    );
    let link = streamed_tar_gz(&[
        (
            header(tar::EntryType::GNULongLink, "././@LongLink", 1 << 20),
            1 << 20,
            b'a',
        ),
        (header(tar::EntryType::Symlink, "l", 0), 0, 0),
    ]);
    refused(
        &link,
        ArchiveKind::TarGz,
        "a GNU long-link header exceeds the limit",
    );
    // A PAX header of the same kind (it used to be read whole and installed).
    let pax_big = streamed_tar_gz(&[
        (
            header(tar::EntryType::XHeader, "PaxHeader/bin", 64 << 20),
            64 << 20,
            b'9',
        ),
        (header(tar::EntryType::Regular, "bin", 1), 1, b'x'),
    ]);
    refused(
        &pax_big,
        ArchiveKind::TarGz,
        "a PAX header exceeds the limit of 65536",
    );
    let global = streamed_tar_gz(&[(
        header(tar::EntryType::XGlobalHeader, "pax_global_header", 1 << 20),
        1 << 20,
        b'9',
    )]);
    refused(
        &global,
        ArchiveKind::TarGz,
        "a PAX global header exceeds the limit",
    );
}

#[test]
fn names_and_pax_records_are_checked() {
    let name = "d/".repeat(2600);
    let records = pax(&[("path", name.as_bytes())]);
    let body = tar_gz_of(&[
        (
            header(tar::EntryType::XHeader, "p", records.len() as u64),
            records,
        ),
        (header(tar::EntryType::Regular, "bin", 1), b"x".to_vec()),
    ]);
    refused(
        &body,
        ArchiveKind::TarGz,
        "has a name of 5200 bytes, over the limit of 4096",
    );
    let err = {
        let s = Sandbox::new(&body, "tar.gz");
        s.extract(ArchiveKind::TarGz, Limits::default())
            .unwrap_err()
            .to_string()
    };
    assert!(
        err.len() < 600,
        "the refused name is shortened in the message: {err}"
    );

    let records = pax(&[("size", b"5")]);
    refused(
        &tar_gz_of(&[
            (
                header(tar::EntryType::XHeader, "p", records.len() as u64),
                records,
            ),
            (header(tar::EntryType::Regular, "bin", 1), b"x".to_vec()),
        ]),
        ArchiveKind::TarGz,
        "has a PAX size that differs from its header",
    );
    let records = pax(&[("GNU.sparse.map", b"0,1")]);
    refused(
        &tar_gz_of(&[
            (
                header(tar::EntryType::XHeader, "p", records.len() as u64),
                records,
            ),
            (header(tar::EntryType::Regular, "bin", 1), b"x".to_vec()),
        ]),
        ArchiveKind::TarGz,
        "describes a sparse file",
    );
    refused(
        &tar_gz_of(&[
            (header(tar::EntryType::XHeader, "p", 7), b"garbage".to_vec()),
            (header(tar::EntryType::Regular, "bin", 1), b"x".to_vec()),
        ]),
        ArchiveKind::TarGz,
        "has a malformed PAX record",
    );
    let records = pax(&[("linkpath", b"../../../etc/shadow")]);
    refused(
        &tar_gz_of(&[
            (
                header(tar::EntryType::XHeader, "p", records.len() as u64),
                records,
            ),
            (header(tar::EntryType::Symlink, "innocent", 0), Vec::new()),
        ]),
        ArchiveKind::TarGz,
        "outside the release directory",
    );
    let (a, b) = (pax(&[("path", b"one")]), b"two\0".to_vec());
    refused(
        &tar_gz_of(&[
            (header(tar::EntryType::GNULongName, "././@LongLink", 4), b),
            (header(tar::EntryType::XHeader, "p", a.len() as u64), a),
            (header(tar::EntryType::Regular, "bin", 1), b"x".to_vec()),
        ]),
        ArchiveKind::TarGz,
        "a GNU long name and a PAX name that disagree",
    );
}

#[test]
fn long_names_from_real_tools_still_unpack() {
    // tar::Builder writes GNU long names for paths over 100 bytes, as GNU tar does.
    let deep = format!("{}/tool", "long-directory-name".repeat(8));
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(3);
    b.append_data(&mut h, &deep, &b"abc"[..]).unwrap();
    let s = Sandbox::new(&b.into_inner().unwrap().finish().unwrap(), "tar.gz");
    s.extract(ArchiveKind::TarGz, Limits::default()).unwrap();
    assert_eq!(std::fs::read(s.dest.join(&deep)).unwrap(), b"abc");
}

#[test]
fn data_that_is_never_written_still_counts_against_the_stream() {
    // A directory entry carrying 32 MiB of zeros: nothing is written, but
    // inflating it is work an attacker could make endless.
    let bomb = streamed_tar_gz(&[
        (
            header(tar::EntryType::Directory, "d/", 32 << 20),
            32 << 20,
            0,
        ),
        (header(tar::EntryType::Regular, "bin", 1), 1, b'x'),
    ]);
    refused(
        &bomb,
        ArchiveKind::TarGz,
        "the bytes inflated from the compressed stream exceeds the limit of 8388608",
    );
}

#[test]
fn harmless_links_inside_are_kept() {
    let s = Sandbox::new(
        &raw_tar_gz(&[
            Raw::File("bin/tool", b"#!/bin/sh\n"),
            Raw::Symlink("tool", "bin/tool"),
            Raw::Hardlink("tool2", "bin/tool"),
        ]),
        "tar.gz",
    );
    s.extract(ArchiveKind::TarGz, Limits::default()).unwrap();
    assert_eq!(
        std::fs::read_link(s.dest.join("tool")).unwrap(),
        Path::new("bin/tool")
    );
    assert!(s.dest.join("tool2").is_file());
    assert_eq!(
        std::fs::metadata(s.dest.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755,
        "exec bit kept, nothing more"
    );
}

fn zip_with(build: impl FnOnce(&mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    build(&mut w);
    w.finish().unwrap().into_inner()
}

#[test]
fn zip_traversal_links_bombs_and_entry_counts_are_refused() {
    let opts = || {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
    };
    refused(
        &zip_with(|w| {
            w.start_file("../../evil", opts()).unwrap();
            w.write_all(b"x").unwrap();
        }),
        ArchiveKind::Zip,
        "climbs out",
    );
    refused(
        &zip_with(|w| {
            w.start_file("/tmp/obs-upgrade-evil", opts()).unwrap();
            w.write_all(b"x").unwrap();
        }),
        ArchiveKind::Zip,
        "absolute path",
    );
    refused(
        &zip_with(|w| w.add_symlink("link", "../../../etc", opts()).unwrap()),
        ArchiveKind::Zip,
        "outside the release directory",
    );
    // A bomb: 64 MiB of zeros compresses to a few KiB; the limit is 1 MiB.
    let bomb = zip_with(|w| {
        w.start_file("loki-linux-amd64", opts()).unwrap();
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            w.write_all(&zeros).unwrap();
        }
    });
    assert!(
        bomb.len() < 1024 * 1024,
        "the bomb is small: {}",
        bomb.len()
    );
    refused(&bomb, ArchiveKind::Zip, "unpacked size exceeds the limit");
    let many = zip_with(|w| {
        for i in 0..100 {
            w.start_file(format!("f{i}"), opts()).unwrap();
        }
    });
    refused(
        &many,
        ArchiveKind::Zip,
        "number of entries exceeds the limit",
    );
}

#[test]
fn zip_link_targets_and_central_directories_are_bounded() {
    let opts = || {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
    };
    // A "symlink" whose target is 16 MiB (it used to be read whole; the
    // zip writer stores link targets uncompressed).
    let target = "a".repeat(16 * 1024 * 1024);
    let link = zip_with(|w| w.add_symlink("link", &target, opts()).unwrap());
    refused(
        &link,
        ArchiveKind::Zip,
        "has a link target of 4097 bytes, over the limit",
    );
    // A central directory over its limit is refused from the end record.
    let fat = zip_with(|w| {
        for i in 0..40 {
            w.start_file(format!("{i}-{}", "n".repeat(3000)), opts())
                .unwrap();
        }
    });
    let s = Sandbox::new(&fat, "zip");
    let err = s
        .extract(
            ArchiveKind::Zip,
            Limits {
                max_index: 64 * 1024,
                ..Limits::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the zip central directory exceeds the limit of 65536"),
        "{err}"
    );
    // Garbage with no end record is damaged, not a panic.
    refused(
        b"PK\x03\x04 not a zip at all",
        ArchiveKind::Zip,
        "damaged or truncated",
    );
}

#[test]
fn a_truncated_archive_is_damaged_not_a_panic() {
    let good = raw_tar_gz(&[Raw::File("node_exporter", &vec![7u8; 200_000])]);
    let s = Sandbox::new(&good[..good.len() / 2], "tar.gz");
    let err = s
        .extract(ArchiveKind::TarGz, Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("damaged or truncated"), "{err}");
}

#[test]
fn the_store_removes_the_partial_of_a_hostile_release() {
    let server = ReleaseServer::start();
    let name = "node_exporter-1.9.1.linux-amd64.tar.gz";
    let bin = fake_binary("node_exporter", "1.9.1");
    let evil = raw_tar_gz(&[
        Raw::File("node_exporter-1.9.1.linux-amd64/node_exporter", &bin),
        Raw::File("node_exporter-1.9.1.linux-amd64/../../../../escaped", b"x"),
    ]);
    let sums = checksums(&[(name, &evil)]);
    server.state().github.insert(
        "prometheus/node_exporter".into(),
        vec![FakeRelease::new(
            "v1.9.1",
            "2026-01-01T00:00:00Z",
            vec![
                FakeAsset {
                    name: name.into(),
                    data: Arc::new(evil),
                    with_digest: false,
                },
                FakeAsset {
                    name: "sha256sums.txt".into(),
                    data: Arc::new(sums),
                    with_digest: false,
                },
            ],
        )],
    );
    let stack = Stack::from_text(
        &format!(
            "components:\n  node_exporter: {{api_url: '{}'}}\n",
            server.url()
        ),
        Format::Yaml,
        "t.yaml",
        None,
    )
    .unwrap();
    let node = &stack.components["node_exporter"];
    let root = tempfile::tempdir().unwrap();
    let http = Http::new(HttpOptions {
        backoff: Duration::from_millis(10),
        ..HttpOptions::default()
    });
    let src = Sources::new(
        ApiClient::new(http.clone(), root.path().join("api"), Duration::ZERO, false),
        &server.url(),
        &server.url(),
        None,
    );
    let release = src.releases(node).unwrap().pop().unwrap();
    let store = Store::new(
        root.path().join("opt/obs-upgrade"),
        root.path().join("cache"),
        http,
        Platform::new("linux", "amd64"),
    );
    let err = store
        .stage(node, &release, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("climbs out") && err.contains("the partial release was removed"),
        "{err}"
    );
    let comp_dir = root.path().join("opt/obs-upgrade/node_exporter");
    let left: Vec<_> = std::fs::read_dir(&comp_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "no version and no .partial directory: {left:?}"
    );
    assert!(!root.path().join("escaped").exists() && !root.path().join("opt/escaped").exists());
}
