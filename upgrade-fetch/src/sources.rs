//! Release sources: GitHub, GitLab and a mirror directory, behind one
//! dispatcher that implements the `ReleaseSource` port.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use upgrade_core::advisory::Advisory;
use upgrade_core::catalog::{ComponentSpec, SourceKind};
use upgrade_core::config::Component;
use upgrade_core::planner::{Asset, Release};
use upgrade_core::ports::{PortError, ReleaseSource};
use upgrade_core::version::Version;

use crate::api::ApiClient;
use crate::http::{Forge, Http, HttpOptions, Token};

/// The public GitHub API.
pub const GITHUB_API: &str = "https://api.github.com";
/// The public GitLab instance.
pub const GITLAB_API: &str = "https://gitlab.com";

/// The forges' API bases and tokens: what [`Forges::client`] binds each
/// token and CA file to.
#[derive(Debug, Clone)]
pub struct Forges {
    /// The default GitHub API base ([`GITHUB_API`]).
    pub github_api: String,
    /// The default GitLab base ([`GITLAB_API`]).
    pub gitlab_api: String,
    /// The GitHub token, sent only to GitHub API origins.
    pub github_token: Option<Token>,
    /// The GitLab token, sent only to GitLab origins.
    pub gitlab_token: Option<Token>,
}

impl Forges {
    /// The public forges (or `github_api` for GitHub) with the tokens of
    /// the environment ([`Token::github_from_env`], [`Token::gitlab_from_env`]).
    pub fn from_env(github_api: Option<&str>) -> Forges {
        Forges {
            github_api: github_api
                .unwrap_or(GITHUB_API)
                .trim_end_matches('/')
                .to_owned(),
            gitlab_api: GITLAB_API.to_owned(),
            github_token: Token::github_from_env(),
            gitlab_token: Token::gitlab_from_env(),
        }
    }

    /// The API base a component's releases are listed from (`None` for a mirror).
    pub fn base_for(&self, component: &Component) -> Option<String> {
        api_base(&component.spec, &self.github_api, &self.gitlab_api).map(str::to_owned)
    }

    /// The HTTP client for `components`: the GitHub token bound to the
    /// GitHub API origins (the default base and each GitHub component's
    /// `api_url`), the GitLab token to the GitLab ones, each component's
    /// `ca_file` to its API origin.
    pub fn client(&self, opts: HttpOptions, components: &[&Component]) -> Http {
        let mut http = Http::new(opts);
        let bind = |http: Http, base: &str, forge: Forge| {
            let token = match forge {
                Forge::Github => &self.github_token,
                Forge::Gitlab => &self.gitlab_token,
            };
            match token {
                Some(t) => http.with_token(base, forge, t.clone()),
                None => http,
            }
        };
        http = bind(http, &self.github_api, Forge::Github);
        http = bind(http, &self.gitlab_api, Forge::Gitlab);
        for c in components {
            let Some(base) = self.base_for(c) else {
                continue;
            };
            let forge = match c.spec.source {
                SourceKind::Gitlab => Forge::Gitlab,
                _ => Forge::Github,
            };
            http = bind(http, &base, forge);
            if let Some(ca) = &c.spec.ca_file {
                http = http.with_ca_file(&base, Path::new(ca));
            }
        }
        http
    }
}

/// The API base a component's releases are listed from: its `api_url`, else
/// its forge's default; `None` for a mirror.
fn api_base<'a>(
    spec: &'a ComponentSpec,
    github_api: &'a str,
    gitlab_api: &'a str,
) -> Option<&'a str> {
    let default = match spec.source {
        SourceKind::Github => github_api,
        SourceKind::Gitlab => gitlab_api,
        SourceKind::Mirror => return None,
    };
    Some(
        spec.api_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/'),
    )
}

/// A release as upstream lists it, before per-component filtering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRelease {
    /// The tag.
    pub tag: String,
    /// Marked draft.
    pub draft: bool,
    /// Marked pre-release.
    pub prerelease: bool,
    /// Publish time.
    pub published_at: Option<Timestamp>,
    /// Assets.
    pub assets: Vec<Asset>,
    /// The release page.
    pub url: Option<String>,
    /// The release notes (bounded by [`upgrade_core::release::MAX_NOTES`]).
    pub notes: Option<String>,
}

/// A GitHub release as the API lists it (the fields used).
#[derive(Deserialize)]
pub struct GithubRelease {
    tag_name: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    prerelease: bool,
    published_at: Option<Timestamp>,
    #[serde(default)]
    assets: Vec<GithubAsset>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize)]
struct GithubAsset {
    name: String,
    browser_download_url: String,
    size: Option<u64>,
    digest: Option<String>,
}

/// A GitLab release as the API lists it (the fields used).
#[derive(Deserialize)]
pub struct GitlabRelease {
    tag_name: String,
    released_at: Option<Timestamp>,
    #[serde(default)]
    upcoming_release: bool,
    #[serde(default)]
    assets: GitlabAssets,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "_links")]
    links: Option<GitlabLinks>,
}

#[derive(Deserialize)]
struct GitlabLinks {
    #[serde(default, rename = "self")]
    page: Option<String>,
}

#[derive(Deserialize, Default)]
struct GitlabAssets {
    #[serde(default)]
    links: Vec<GitlabLink>,
}

#[derive(Deserialize)]
struct GitlabLink {
    name: String,
    url: String,
    direct_asset_url: Option<String>,
}

/// The longest tag kept (longer ones are never a version this tool reads).
pub const MAX_TAG: usize = 128;
/// The longest asset name kept.
pub const MAX_ASSET_NAME: usize = 255;
/// The longest asset URL kept.
pub const MAX_ASSET_URL: usize = 4096;

/// Whether an asset's name and URL are within bounds (a release data
/// field no real release comes near is dropped, not carried around).
fn asset_in_bounds(name: &str, url: &str) -> bool {
    let ok = name.len() <= MAX_ASSET_NAME && url.len() <= MAX_ASSET_URL;
    if !ok {
        log::warn!(
            "skipping an asset with a {}-byte name and a {}-byte URL (limits {MAX_ASSET_NAME} \
             and {MAX_ASSET_URL})",
            name.len(),
            url.len()
        );
    }
    ok
}

/// A release page URL within bounds, and the notes cut to their bound.
fn facts(url: Option<String>, notes: Option<String>) -> (Option<String>, Option<String>) {
    (
        url.filter(|u| u.len() <= MAX_ASSET_URL),
        notes
            .filter(|n| !n.trim().is_empty())
            .map(upgrade_core::release::bounded_notes),
    )
}

fn tag_in_bounds(tag: &str) -> bool {
    let ok = tag.len() <= MAX_TAG;
    if !ok {
        log::warn!(
            "skipping a release with a {}-byte tag (limit {MAX_TAG})",
            tag.len()
        );
    }
    ok
}

/// Turns a GitHub `/releases` listing into releases (out-of-bounds tags and
/// assets dropped).
pub fn parse_github(items: Vec<GithubRelease>) -> Vec<RawRelease> {
    items
        .into_iter()
        .filter(|r| tag_in_bounds(&r.tag_name))
        .map(|r| {
            let (url, notes) = facts(r.html_url, r.body);
            RawRelease {
                tag: r.tag_name,
                draft: r.draft,
                prerelease: r.prerelease,
                published_at: r.published_at,
                url,
                notes,
                assets: r
                    .assets
                    .into_iter()
                    .filter(|a| asset_in_bounds(&a.name, &a.browser_download_url))
                    .map(|a| Asset {
                        name: a.name,
                        url: a.browser_download_url,
                        size: a.size,
                        digest: a.digest.filter(|d| d.len() <= 160),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Turns a GitLab `/releases` listing into releases (out-of-bounds tags and
/// assets dropped).
pub fn parse_gitlab(items: Vec<GitlabRelease>) -> Vec<RawRelease> {
    items
        .into_iter()
        .filter(|r| tag_in_bounds(&r.tag_name))
        .map(|r| {
            let (url, notes) = facts(r.links.and_then(|l| l.page), r.description);
            RawRelease {
                tag: r.tag_name,
                draft: false,
                prerelease: r.upcoming_release,
                published_at: r.released_at,
                url,
                notes,
                assets: r
                    .assets
                    .links
                    .into_iter()
                    .map(|l| (l.name, l.direct_asset_url.unwrap_or(l.url)))
                    .filter(|(name, url)| asset_in_bounds(name, url))
                    .map(|(name, url)| Asset {
                        name,
                        url,
                        size: None,
                        digest: None,
                    })
                    .collect(),
            }
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MirrorMeta {
    published_at: Option<Timestamp>,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    notes: Option<String>,
}

/// The URL of a mirror given as `http(s)://…` (else it is a directory).
pub fn mirror_url(mirror: &Path) -> Option<&str> {
    mirror
        .to_str()
        .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
}

/// One release in a mirror's `<component>/index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The tag (the release's directory name).
    pub tag: String,
    /// When upstream published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<Timestamp>,
    /// Upstream marked it a pre-release.
    #[serde(default)]
    pub prerelease: bool,
    /// Its upstream release page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its release notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Its files.
    #[serde(default)]
    pub assets: Vec<IndexAsset>,
}

/// One file of a release in a mirror's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexAsset {
    /// The file name.
    pub name: String,
    /// Its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its SHA-256, hex (as the API's digest: a rung below a signed
    /// checksum file, above an unsigned one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Reads a mirror directory: `<mirror>/<component>/<tag>/<files>`, with an
/// optional `<tag>/release.json` (`{"published_at": "…", "prerelease":
/// false, "url": "…", "notes": "…"}`, every key optional); without a
/// `published_at` the tag directory's modification time stands for the
/// publish date. Files at the component level (`advisories.json`) are not
/// releases.
pub fn read_mirror(mirror: &Path, component: &str) -> Result<Vec<RawRelease>, std::io::Error> {
    let dir = mirror.join(component);
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot read mirror directory {}: {e}", dir.display()),
        )
    })? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let tag = entry.file_name().to_string_lossy().into_owned();
        if !tag_in_bounds(&tag) {
            continue;
        }
        let meta_path = entry.path().join("release.json");
        let meta: MirrorMeta = match upgrade_state::fsutil::read_capped(&meta_path, 256 * 1024) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", meta_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MirrorMeta::default(),
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", meta_path.display()),
                ));
            }
        };
        let published_at = meta.published_at.or_else(|| {
            entry
                .metadata()
                .ok()?
                .modified()
                .ok()
                .and_then(|m| Timestamp::try_from(m).ok())
        });
        let mut assets = Vec::new();
        for f in fs::read_dir(entry.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            // Hidden files are a fill's downloads in progress, never assets.
            if name == "release.json" || name.starts_with('.') || !f.file_type()?.is_file() {
                continue;
            }
            assets.push(Asset {
                name,
                url: format!("file://{}", f.path().display()),
                size: f.metadata().ok().map(|m| m.len()),
                digest: None,
            });
        }
        assets.sort_by(|a, b| a.name.cmp(&b.name));
        let (url, notes) = facts(meta.url, meta.notes);
        out.push(RawRelease {
            tag,
            draft: false,
            prerelease: meta.prerelease,
            published_at,
            assets,
            url,
            notes,
        });
    }
    Ok(out)
}

/// Keeps a component's releases: no drafts, tags of its releases only,
/// versions that parse, pre-releases only when its policy asks.
pub fn filter_for(component: &Component, raw: &[RawRelease]) -> Vec<Release> {
    let mut out: Vec<Release> = raw
        .iter()
        .filter(|r| !r.draft && component.spec.tag_is_release(&r.tag))
        .filter_map(|r| {
            let version = Version::parse(&r.tag).ok()?;
            let prerelease = r.prerelease || version.is_prerelease();
            (component.policy.prereleases || !prerelease).then(|| Release {
                version,
                tag: r.tag.clone(),
                published_at: r.published_at,
                prerelease,
                assets: r.assets.clone(),
                url: r.url.clone(),
                notes: r.notes.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.version.cmp(&b.version));
    out
}

/// One repository's listing, filled by the first caller.
type Slot<T> = Arc<Mutex<Option<Arc<Vec<T>>>>>;

/// The dispatcher: GitHub, GitLab or a mirror per component, with at most
/// one listing per repository per run (Loki and Promtail share one).
#[derive(Debug)]
pub struct Sources {
    client: ApiClient,
    github_api: String,
    gitlab_api: String,
    mirror: Option<PathBuf>,
    memo: Mutex<BTreeMap<String, Slot<RawRelease>>>,
    advisory_memo: Mutex<BTreeMap<String, Slot<Advisory>>>,
}

impl Sources {
    /// Sources using `client`; `github_api` / `gitlab_api` are the default
    /// base URLs (a component's `api_url` wins); `mirror` is the default
    /// mirror directory.
    pub fn new(
        client: ApiClient,
        github_api: &str,
        gitlab_api: &str,
        mirror: Option<PathBuf>,
    ) -> Self {
        Sources {
            client,
            github_api: github_api.trim_end_matches('/').to_owned(),
            gitlab_api: gitlab_api.trim_end_matches('/').to_owned(),
            mirror,
            memo: Mutex::new(BTreeMap::new()),
            advisory_memo: Mutex::new(BTreeMap::new()),
        }
    }

    /// The API client (rate limit, request count).
    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// The memo key of a component's repository (Loki and Promtail share one).
    fn key(&self, component: &Component) -> (String, String) {
        let spec = &component.spec;
        let base = api_base(spec, &self.github_api, &self.gitlab_api).unwrap_or_default();
        let key = match spec.source {
            SourceKind::Github => format!("github {base} {}", spec.repo),
            SourceKind::Gitlab => format!("gitlab {base} {}", spec.repo),
            SourceKind::Mirror => format!("mirror {}", component.name),
        };
        (key, base.to_owned())
    }

    /// The mirror a mirror component reads: a directory, or an
    /// `http(s)://` URL serving one.
    fn mirror_dir(&self, component: &Component) -> Result<PathBuf, PortError> {
        match component.spec.api_url.as_deref() {
            Some(u) => Ok(PathBuf::from(u.strip_prefix("file://").unwrap_or(u))),
            None => self.mirror.clone().ok_or_else(|| {
                format!(
                    "{} uses a mirror but no mirror directory is configured; set its api_url \
                     or pass --mirror",
                    component.name
                )
                .into()
            }),
        }
    }

    /// Memoized per repository: concurrent callers for the same one wait for the first.
    fn memo<T>(
        memo: &Mutex<BTreeMap<String, Slot<T>>>,
        key: String,
        fill: impl FnOnce() -> Result<Vec<T>, PortError>,
    ) -> Result<Arc<Vec<T>>, PortError> {
        let slot = memo
            .lock()
            .expect("memo lock")
            .entry(key)
            .or_default()
            .clone();
        let mut slot = slot.lock().expect("slot lock");
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let filled = Arc::new(fill()?);
        *slot = Some(filled.clone());
        Ok(filled)
    }

    fn raw(&self, component: &Component) -> Result<Arc<Vec<RawRelease>>, PortError> {
        let spec = &component.spec;
        let (key, base) = self.key(component);
        Self::memo(&self.memo, key, || {
            Ok(match spec.source {
                SourceKind::Github => {
                    let url = format!("{base}/repos/{}/releases?per_page=100", spec.repo);
                    parse_github(self.client.list(&url)?)
                }
                SourceKind::Gitlab => {
                    let project = spec.repo.replace('/', "%2F");
                    let url = format!("{base}/api/v4/projects/{project}/releases?per_page=100");
                    parse_gitlab(self.client.list(&url)?)
                }
                SourceKind::Mirror => {
                    let dir = self.mirror_dir(component)?;
                    match mirror_url(&dir) {
                        Some(url) => self.read_http_mirror(url, &component.name)?,
                        None => read_mirror(&dir, &component.name)?,
                    }
                }
            })
        })
    }

    /// A mirror served over http(s): `<url>/<component>/index.json` (what
    /// `obs-upgrade mirror fill` writes), cached and revalidated like an API
    /// listing; each file at `<url>/<component>/<tag>/<name>`.
    fn read_http_mirror(&self, url: &str, component: &str) -> Result<Vec<RawRelease>, PortError> {
        let base = url.trim_end_matches('/');
        let entries: Vec<IndexEntry> = self
            .client
            .list(&format!("{base}/{component}/index.json"))?;
        Ok(entries
            .into_iter()
            .filter(|e| tag_in_bounds(&e.tag) && !e.tag.contains('/'))
            .map(|e| {
                let (url, notes) = facts(e.url, e.notes);
                RawRelease {
                    assets: e
                        .assets
                        .into_iter()
                        .filter(|a| !a.name.contains('/') && !a.name.starts_with('.'))
                        .map(|a| Asset {
                            url: format!("{base}/{component}/{}/{}", e.tag, a.name),
                            name: a.name,
                            size: a.size,
                            digest: a.sha256.map(|d| format!("sha256:{d}")),
                        })
                        .collect(),
                    tag: e.tag,
                    draft: false,
                    prerelease: e.prerelease,
                    published_at: e.published_at,
                    url,
                    notes,
                }
            })
            .collect())
    }

    /// Resolves many components in parallel with at most `workers` threads.
    pub fn resolve_all<'c>(
        &self,
        components: &[&'c Component],
        workers: usize,
    ) -> BTreeMap<&'c str, Result<Vec<Release>, PortError>> {
        let next = Mutex::new(0usize);
        let results = Mutex::new(BTreeMap::new());
        std::thread::scope(|s| {
            for _ in 0..workers.clamp(1, components.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = {
                            let mut n = next.lock().expect("queue lock");
                            let i = *n;
                            *n += 1;
                            i
                        };
                        let Some(c) = components.get(i) else { break };
                        let r = self.releases(c);
                        results
                            .lock()
                            .expect("results lock")
                            .insert(c.name.as_str(), r);
                    }
                });
            }
        });
        results.into_inner().expect("results lock")
    }
}

impl ReleaseSource for Sources {
    fn releases(&self, component: &Component) -> Result<Vec<Release>, PortError> {
        Ok(filter_for(component, &self.raw(component)?))
    }

    /// GitHub: the repository's published security advisories (cached like
    /// the releases); GitLab: none (it has no such feed); a mirror: its
    /// `<component>/advisories.json`.
    fn advisories(&self, component: &Component) -> Result<Vec<Advisory>, PortError> {
        let spec = &component.spec;
        let (key, base) = self.key(component);
        let list = Self::memo(&self.advisory_memo, key, || {
            Ok(match spec.source {
                SourceKind::Github => {
                    let url = format!(
                        "{base}/repos/{}/security-advisories?state=published&per_page=100",
                        spec.repo
                    );
                    crate::advisories::parse_github(self.client.list(&url)?, &spec.repo)
                }
                SourceKind::Gitlab => Vec::new(),
                SourceKind::Mirror => {
                    let dir = self.mirror_dir(component)?;
                    match mirror_url(&dir) {
                        Some(url) => {
                            let url = format!(
                                "{}/{}/advisories.json",
                                url.trim_end_matches('/'),
                                component.name
                            );
                            match self.client.list(&url) {
                                Ok(items) => crate::advisories::parse_github(items, &url),
                                // A mirror without advisories: none known.
                                Err(crate::api::Error::Http(crate::http::Error::Status {
                                    status: 404,
                                    ..
                                })) => Vec::new(),
                                Err(e) => return Err(e.into()),
                            }
                        }
                        None => crate::advisories::read_mirror(&dir, &component.name)?,
                    }
                }
            })
        })?;
        Ok(list.as_ref().clone())
    }
}
