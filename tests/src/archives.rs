//! Release archives shaped as upstream shapes them, for tests.

use std::io::Write;

use sha2::{Digest, Sha256};

/// A file inside an archive: path, bytes, mode.
pub type Entry<'a> = (&'a str, &'a [u8], u32);

/// A gzip-compressed tarball of `entries` (directories created as needed).
pub fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (path, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, *data).expect("tar entry");
    }
    b.into_inner().expect("tar").finish().expect("gzip")
}

/// A zip of `entries`.
pub fn zip(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, data, mode) in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        w.start_file(*path, opts).expect("zip entry");
        w.write_all(data).expect("zip data");
    }
    w.finish().expect("zip").into_inner()
}

/// A promu release: `<artifact>-<version>.<os>-<arch>/…` with the binaries at mode 0755.
pub fn promu(
    artifact: &str,
    version: &str,
    arch: &str,
    binaries: &[(&str, &[u8])],
) -> (String, Vec<u8>) {
    let top = format!("{artifact}-{version}.linux-{arch}");
    let paths: Vec<String> = binaries.iter().map(|(n, _)| format!("{top}/{n}")).collect();
    let mut entries: Vec<Entry<'_>> = binaries
        .iter()
        .zip(&paths)
        .map(|((_, d), p)| (p.as_str(), *d, 0o755))
        .collect();
    let license = format!("{top}/LICENSE");
    entries.push((license.as_str(), b"Apache-2.0\n", 0o644));
    (format!("{top}.tar.gz"), tar_gz(&entries))
}

/// The hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A GNU-format checksum file.
pub fn checksums(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = String::new();
    for (n, d) in files {
        out.push_str(&sha256(d));
        out.push_str("  ");
        out.push_str(n);
        out.push('\n');
    }
    out.into_bytes()
}

/// A shell script that prints a `--version` line the way promu builds do.
pub fn fake_binary(name: &str, version: &str) -> Vec<u8> {
    format!("#!/bin/sh\necho \"{name}, version {version} (branch: HEAD, revision: test)\"\n")
        .into_bytes()
}

/// A tar.gz whose entries are written block by block: `(header, data
/// length, data byte)`; data is streamed through the encoder, so a header
/// may announce (and carry) hundreds of MiB without the test holding them.
pub fn streamed_tar_gz(entries: &[(tar::Header, u64, u8)]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1024 * 1024];
    for (h, len, byte) in entries {
        gz.write_all(h.as_bytes()).unwrap();
        let fill: Vec<u8> = chunk.iter().map(|_| *byte).collect();
        let mut left = *len;
        while left > 0 {
            let n = left.min(fill.len() as u64);
            gz.write_all(&fill[..usize::try_from(n).unwrap()]).unwrap();
            left -= n;
        }
        let pad = (512 - len % 512) % 512;
        gz.write_all(&vec![0u8; usize::try_from(pad).unwrap()])
            .unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

/// A GNU tar header of `kind` for `name` announcing `size` bytes.
pub fn header(kind: tar::EntryType, name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o755);
    h.set_size(size);
    h.set_cksum();
    h
}
