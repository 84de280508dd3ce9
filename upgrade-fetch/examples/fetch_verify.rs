//! Downloads a URL with upgrade-fetch (streamed, hashed in the same pass,
//! fsynced), checks the SHA-256, and reports the peak RSS. Used by
//! `scripts/bench-fetch`.
//!
//! ```text
//! cargo run --release -p upgrade-fetch --example fetch_verify -- URL SHA256 DEST
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::process::ExitCode;

use upgrade_fetch::download::download;
use upgrade_fetch::http::{Http, HttpOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, want, dest] = args.as_slice() else {
        eprintln!("usage: fetch_verify URL SHA256 DEST");
        return ExitCode::from(2);
    };
    let http = Http::new(HttpOptions::default());
    let _ = std::fs::remove_file(dest);
    match download(&http, url, Path::new(dest), u64::MAX, &mut |_, _| {}) {
        Ok(d) if &d.sha256 == want => {
            let hwm = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
                })
                .unwrap_or_default();
            println!("ok bytes={} peak_rss_kib={hwm}", d.bytes);
            ExitCode::SUCCESS
        }
        Ok(d) => {
            eprintln!("digest mismatch: got {}", d.sha256);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
