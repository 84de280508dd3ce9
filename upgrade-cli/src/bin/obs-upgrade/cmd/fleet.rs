//! `pin` and `mirror fill`: arguments → options → one library call → render.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use upgrade_cli::host::Host;
use upgrade_cli::ops::{self, MirrorFillOptions, PinOptions};
use upgrade_core::catalog::Platform;
use upgrade_core::version::Version;

use crate::args::Global;
use crate::exit;
use crate::render::{self, Table};
use crate::terminal::Terminal;

pub struct PinArgs {
    pub output: Option<PathBuf>,
    pub from: Vec<String>,
    pub set: Vec<String>,
    pub mirror_url: Option<String>,
    pub platform: Option<String>,
}

/// `NAME=VERSION` pairs, each name once.
fn pairs(flag: &str, items: &[String]) -> Result<BTreeMap<String, Version>> {
    let mut out = BTreeMap::new();
    for item in items {
        let (name, v) = item.split_once('=').ok_or_else(|| {
            upgrade_cli::Error::Usage(format!(
                "--{flag} {item}: write NAME=VERSION (for example node_exporter=1.9.1)"
            ))
        })?;
        let version = Version::parse(v).map_err(|e| {
            upgrade_cli::Error::Usage(format!("--{flag} {item}: {v:?} is not a version: {e}"))
        })?;
        if out.insert(name.to_owned(), version).is_some() {
            return Err(
                upgrade_cli::Error::Usage(format!("--{flag} names {name} more than once")).into(),
            );
        }
    }
    Ok(out)
}

pub fn pin(g: &Global, host: &Host, args: &PinArgs) -> Result<u8> {
    let platform = match &args.platform {
        None => None,
        Some(p) => {
            let (os, arch) = p
                .split_once('/')
                .filter(|(o, a)| !o.is_empty() && !a.is_empty())
                .ok_or_else(|| {
                    upgrade_cli::Error::Usage(format!(
                        "--platform {p}: write OS/ARCH with Go's names (linux/amd64, linux/arm64)"
                    ))
                })?;
            Some(Platform::new(os, arch))
        }
    };
    let opts = PinOptions {
        from: pairs("from", &args.from)?,
        versions: pairs("set", &args.set)?,
        mirror: args.mirror_url.clone(),
        platform,
    };
    let stop = &host.options().stop;
    let report = ops::pin(host, &opts, &Terminal::new(g, true, stop))?;
    let text = report.pins.to_json();
    if let Some(out) = &args.output {
        upgrade_state::fsutil::atomic_write_mode(out, text.as_bytes(), None, 0o644)
            .map_err(upgrade_cli::Error::from)?;
    }
    if g.json {
        render::json("pin", &report)?;
        return Ok(exit::OK);
    }
    if args.output.is_none() {
        out!("{text}");
        return Ok(exit::OK);
    }
    let mut t = Table::new(&["COMPONENT", "VERSION", "VERIFIED", "WHY"]);
    for (name, pin) in &report.pins.components {
        t.row(vec![
            name.clone(),
            pin.version.to_string(),
            pin.verification.clone(),
            report.reasons.get(name).cloned().unwrap_or_default(),
        ]);
    }
    t.print()?;
    outln!(
        "Wrote {} ({} components for {}; {} release API requests).",
        args.output
            .as_deref()
            .map_or(String::new(), |p| p.display().to_string()),
        report.pins.components.len(),
        report.pins.platform,
        report.api_requests
    );
    Ok(exit::OK)
}

pub fn mirror_fill(
    g: &Global,
    host: &Host,
    dir: &Path,
    pins: &Path,
    from: Option<&str>,
) -> Result<u8> {
    let report = ops::mirror_fill(
        host,
        &MirrorFillOptions {
            pins: pins.to_owned(),
            dir: dir.to_owned(),
            from: from.map(str::to_owned),
        },
    )?;
    if g.json {
        render::json("mirror-fill", &report)?;
        return Ok(exit::OK);
    }
    let copied: Vec<_> = report.files.iter().filter(|f| f.copied).collect();
    let bytes: u64 = copied.iter().map(|f| f.bytes).sum();
    for f in &copied {
        outln!(
            "copied {}/{}/{} ({} bytes)",
            f.component,
            f.tag,
            f.name,
            f.bytes
        );
    }
    outln!(
        "{} files copied ({bytes} bytes), {} already there; {} indexes written under {}.",
        copied.len(),
        report.files.len() - copied.len(),
        report.indexes.len(),
        dir.display()
    );
    Ok(exit::OK)
}
