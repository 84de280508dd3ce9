//! Extraction of a release-shaped tar.gz (one 48 MiB binary of
//! incompressible bytes, a LICENSE, a long-named file and a PAX header, as
//! GNU tar writes them), each run beside a baseline in the same process:
//! - `baseline_tar_unpack`: the tar crate's own `Archive::unpack` (no bounds:
//!   it reads extension headers whole and follows what it is told);
//! - `bounded_extract`: `extract::extract` with the default limits (raw
//!   entries, extension headers read with a bound, the stream capped, names
//!   and links checked).
//!
//! `cargo bench -p upgrade-fetch --bench extract`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use upgrade_core::catalog::ArchiveKind;
use upgrade_fetch::extract::{self, Limits};

const TOP: &str = "exporter-1.0.0.linux-amd64";

fn archive() -> Vec<u8> {
    // xorshift: incompressible and reproducible.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = vec![0u8; 48 << 20];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let files: [(String, &[u8], u32); 3] = [
        (format!("{TOP}/exporter"), &data, 0o755),
        (format!("{TOP}/LICENSE"), b"Apache-2.0\n", 0o644),
        (
            format!("{TOP}/{}/NOTICE", "long-directory-name".repeat(8)),
            b"x\n",
            0o644,
        ),
    ];
    for (path, bytes, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(mode);
        b.append_data(&mut h, path, bytes).unwrap();
    }
    b.append_pax_extensions([("comment", &b"built for the bench"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    h.set_mode(0o644);
    b.append_data(&mut h, format!("{TOP}/VERSION"), &b"1.0"[..])
        .unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

fn bench(crit: &mut Criterion) {
    let dir =
        tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))
            .unwrap();
    let path = dir.path().join("release.tar.gz");
    std::fs::write(&path, archive()).unwrap();
    let fresh = |name: &str| {
        let d = dir.path().join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let mut group = crit.benchmark_group("extract_48mib_tar_gz");
    group.sample_size(10);
    group.bench_function("baseline_tar_unpack", |bencher| {
        bencher.iter(|| {
            let d = fresh("baseline");
            let f = std::fs::File::open(&path).unwrap();
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
            tar.unpack(black_box(&d)).unwrap();
        });
    });
    group.bench_function("bounded_extract", |bencher| {
        bencher.iter(|| {
            let d = fresh("bounded");
            extract::extract(
                &path,
                ArchiveKind::TarGz,
                black_box(&d),
                Some(TOP),
                "exporter",
                Limits::default(),
            )
            .unwrap();
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
