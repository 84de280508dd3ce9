//! Fleets: resolve once on a controller into a pin file, fill a mirror
//! with the pinned releases. The hosts apply the pin file (see
//! [`Host::with_pin_file`]) and ask no release API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use upgrade_core::catalog::Platform;
use upgrade_core::holds::Holds;
use upgrade_core::pins::{self, Pin, PinFile, PinPlatform, PinnedAsset};
use upgrade_core::planner::{self, PlanInput, Release};
use upgrade_core::version::Version;
use upgrade_fetch::download::download;
use upgrade_fetch::mirror::{self, FillReport};
use upgrade_fetch::sources::Sources;
use upgrade_fetch::store::Store;

use super::Ui;
use crate::Error;
use crate::host::{Host, read_pin_file};

/// The largest file copied into a mirror (the store's download limit).
pub const MAX_MIRROR_FILE: u64 = 1 << 30;

/// What to pin.
#[derive(Debug, Clone, Default)]
pub struct PinOptions {
    /// The fleet's installed version per component (what the hosts run):
    /// the target is what the stack's policy plans from it. Components
    /// not given are planned from the version installed on this host.
    pub from: BTreeMap<String, Version>,
    /// Exact versions to pin (must be published), whatever the policy.
    pub versions: BTreeMap<String, Version>,
    /// The mirror the hosts download from (recorded in the file).
    pub mirror: Option<String>,
    /// The platform of the fleet (default: this one).
    pub platform: Option<Platform>,
}

/// What `pin` resolved.
#[derive(Debug, Clone, Serialize)]
pub struct PinReport {
    /// The pin file.
    pub pins: PinFile,
    /// Per component: why its version was chosen.
    pub reasons: BTreeMap<String, String>,
    /// Release API requests sent.
    pub api_requests: u64,
}

/// Why `pin` could not pin a component.
fn pin_error(errors: &BTreeMap<String, String>) -> Error {
    let lines: Vec<String> = errors.iter().map(|(c, e)| format!("{c}: {e}")).collect();
    Error::Usage(format!(
        "nothing was pinned, because {} component(s) could not be: {}",
        errors.len(),
        lines.join("; ")
    ))
}

/// Resolves the stack's targets once: lists every component's releases,
/// chooses each target (an exact version, else what the policy plans from
/// the fleet's version), then downloads and verifies each target's asset
/// by the ladder, so the file records digests the controller checked. Any
/// component that cannot be pinned fails the whole pin: a partial pin file
/// would send its hosts to ask the API.
pub fn pin(host: &Host, opts: &PinOptions, ui: &dyn Ui) -> Result<PinReport, Error> {
    let platform = opts.platform.clone().unwrap_or_else(Platform::current);
    let stack = host.stack();
    for name in opts.from.keys().chain(opts.versions.keys()) {
        if !stack.components.contains_key(name) {
            return Err(Error::Usage(format!(
                "{name} is not in the stack file (components: {})",
                stack
                    .components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    // Upstream (or the stack's mirrors), never a pin file this host applies.
    let sources: Sources = host.sources();
    let comps: Vec<_> = stack.components.values().collect();
    let listed = sources.resolve_all(&comps, host.options().list_concurrency);
    let (detected, _) = host.detect();
    let mut errors = BTreeMap::new();
    let mut chosen: BTreeMap<String, (Release, String)> = BTreeMap::new();
    for c in &comps {
        let releases = match &listed[c.name.as_str()] {
            Ok(r) => r,
            Err(e) => {
                errors.insert(c.name.clone(), format!("cannot list releases: {e}"));
                continue;
            }
        };
        let find = |v: &Version| releases.iter().find(|r| r.version.same_release(v));
        if let Some(v) = opts.versions.get(&c.name) {
            match find(v) {
                Some(r) => {
                    chosen.insert(c.name.clone(), (r.clone(), format!("{v} was asked for")));
                }
                None => {
                    errors.insert(
                        c.name.clone(),
                        format!(
                            "{v} is not among its releases (newest: {})",
                            releases
                                .last()
                                .map_or("none".into(), |r| r.version.to_string())
                        ),
                    );
                }
            }
            continue;
        }
        let Some(from) = opts.from.get(&c.name).or_else(|| detected.get(&c.name)) else {
            errors.insert(
                c.name.clone(),
                "its version is not installed here; pass --from NAME=VERSION (what the fleet \
                 runs) or --version NAME=VERSION"
                    .into(),
            );
            continue;
        };
        let installed = BTreeMap::from([(c.name.clone(), from.clone())]);
        let available = BTreeMap::from([(c.name.clone(), releases.clone())]);
        let mut single = stack.clone();
        single.components.retain(|k, _| k == &c.name);
        for other in single.components.values_mut() {
            other.depends_on.clear();
        }
        let plan = planner::plan(PlanInput {
            stack: &single,
            installed: &installed,
            available: &available,
            now: jiff::Timestamp::now(),
            holds: &Holds::default(),
            advisories: &BTreeMap::new(),
        });
        let (target, why) = match plan.steps().next() {
            Some(s) => (
                s.to.clone(),
                format!("the policy plans {} → {}", s.from, s.to),
            ),
            None => {
                let why = plan
                    .skipped
                    .iter()
                    .map(|s| super::skip_text(&s.reason))
                    .chain(plan.blocked.iter().map(|b| super::block_text(&b.reason)))
                    .next()
                    .unwrap_or_else(|| "nothing newer is allowed".into());
                (from.clone(), format!("stays at {from}: {why}"))
            }
        };
        match find(&target) {
            Some(r) => {
                chosen.insert(c.name.clone(), (r.clone(), why));
            }
            None => {
                errors.insert(
                    c.name.clone(),
                    format!(
                        "{target} ({why}) is not among its releases; pin a published version \
                         with --version {}=VERSION",
                        c.name
                    ),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(pin_error(&errors));
    }
    // The download cache is shared with this host's own runs.
    let _lock = host.lock()?;
    let store = Store::new(
        host.layout().cache_dir().join("pin-store"),
        host.layout().cache_dir(),
        host.http(),
        platform.clone(),
    );
    let mut pinned = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    for (name, (release, why)) in chosen {
        let comp = &stack.components[&name];
        ui.staging(&name, &release.version);
        let fetched = store.fetch_verified(comp, &release, &mut |d, t| ui.bytes(d, t));
        ui.staged();
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                errors.insert(name, format!("{} did not verify: {e}", release.version));
                continue;
            }
        };
        let _ = std::fs::remove_file(&fetched.path);
        let mut files = Vec::new();
        let sums = comp.spec.checksums_name(&release.version, &platform);
        // The checksum file and its signatures: a mirror filled from the
        // pin serves hosts that verify them.
        let signature = comp.spec.checksums_signature(&release.version);
        for extra in sums.iter().flat_map(|n| {
            let mut names = vec![n.clone(), format!("{n}.minisig")];
            names.extend(signature.map(|s| s.file_name(n)));
            names.dedup();
            names
        }) {
            let Some(a) = release.asset(&extra) else {
                continue;
            };
            match small_digest(host, &store, &name, &release.version, &a.url, &a.name) {
                Ok((sha256, size)) => files.push(PinnedAsset {
                    name: a.name.clone(),
                    url: a.url.clone(),
                    size,
                    sha256,
                }),
                Err(e) => {
                    errors.insert(name.clone(), e);
                }
            }
        }
        pinned.insert(
            name.clone(),
            Pin {
                repo: comp.spec.repo.clone(),
                version: release.version.clone(),
                tag: release.tag.clone(),
                published_at: release.published_at,
                release_url: release.url.clone(),
                asset: PinnedAsset {
                    name: fetched.asset.name.clone(),
                    url: fetched.asset.url.clone(),
                    size: fetched.size,
                    sha256: fetched.sha256,
                },
                files,
                verification: fetched.proof.to_string(),
            },
        );
        reasons.insert(name, why);
    }
    if !errors.is_empty() {
        return Err(pin_error(&errors));
    }
    Ok(PinReport {
        pins: PinFile {
            format: pins::FORMAT,
            created_at: jiff::Timestamp::now(),
            platform: PinPlatform::from(&platform),
            mirror: opts.mirror.clone(),
            components: pinned,
        },
        reasons,
        api_requests: sources.client().requests_sent(),
    })
}

/// Downloads a small file of a release (a checksum file, a signature) and
/// returns its digest and size.
fn small_digest(
    host: &Host,
    store: &Store,
    component: &str,
    version: &Version,
    url: &str,
    name: &str,
) -> Result<(String, u64), String> {
    let dir = store.dir().join(".pin-files");
    upgrade_state::fsutil::create_dir_all_mode(&dir, 0o700).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{component}-{version}-{name}"));
    let got = download(
        &host.http(),
        url,
        &path,
        upgrade_fetch::store::MAX_CHECKSUMS,
        &mut |_, _| {},
    )
    .map_err(|e| format!("cannot download {name}: {e}"))?;
    let _ = std::fs::remove_file(&path);
    Ok((got.sha256, got.bytes))
}

/// What to put in a mirror.
#[derive(Debug, Clone)]
pub struct MirrorFillOptions {
    /// The pin file whose releases to copy.
    pub pins: PathBuf,
    /// The mirror directory.
    pub dir: PathBuf,
    /// Copy from this mirror (a directory or `http(s)://` URL) instead of upstream.
    pub from: Option<String>,
}

/// Copies the pinned releases into a mirror directory, each file checked
/// against its pinned digest, and writes the indexes a web server serves.
pub fn mirror_fill(host: &Host, opts: &MirrorFillOptions) -> Result<FillReport, Error> {
    let file = read_pin_file(&opts.pins)?;
    let mut http = host.http();
    if let Some(from) = opts.from.as_deref().filter(|f| f.starts_with("http://")) {
        // Every file is checked against a pinned digest.
        http = http.with_plain_http(from);
    }
    mirror::fill(
        &http,
        &file,
        &opts.dir,
        opts.from.as_deref(),
        MAX_MIRROR_FILE,
    )
    .map_err(|e| Error::port(format!("cannot fill the mirror {}", opts.dir.display()))(e.into()))
}
