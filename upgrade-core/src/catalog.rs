//! The built-in catalog: upstream facts about well-known components.
//!
//! A stack file names a component and a policy; everything else comes from
//! here unless the stack file overrides it.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::date;
use semver::VersionReq;
use serde::{Deserialize, Serialize};

use crate::rules::{BreakingChange, EndOfLife, Requires, Rules, SteppingStone};
use crate::version::Version;

/// Where releases are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The GitHub releases API (or GitHub Enterprise, or a mirror that speaks it).
    #[default]
    Github,
    /// The GitLab releases API.
    Gitlab,
    /// A plain mirror directory or `file://` URL, for air-gapped hosts.
    Mirror,
}

/// How a release asset is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    /// A gzip-compressed tarball.
    #[serde(rename = "tar.gz")]
    TarGz,
    /// A zip file.
    Zip,
    /// The binary itself.
    Raw,
}

impl fmt::Display for ArchiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArchiveKind::TarGz => "tar.gz",
            ArchiveKind::Zip => "zip",
            ArchiveKind::Raw => "raw",
        })
    }
}

/// A binary shipped in a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinarySpec {
    /// The installed name (`promtool`), linked from `/usr/local/bin`.
    pub name: String,
    /// Its path inside the archive, a template (`{artifact}-{version}.{os}-{arch}/promtool`).
    pub path: String,
}

/// The OIDC issuer of GitHub Actions' workflow identities.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A keyless Sigstore signature over a release's checksum file: cosign's
/// bundle (`cosign sign-blob --bundle`) beside the checksum file, whose
/// certificate must carry this identity from this issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigstoreSpec {
    /// The signing certificate's identity (its SAN): for a GitHub workflow
    /// `https://github.com/<owner>/<repo>/.github/workflows/<file>@<ref>`.
    /// A trailing `*` matches any rest (any git ref).
    pub identity: String,
    /// The OIDC issuer that vouched for the identity.
    #[serde(default = "github_actions_issuer")]
    pub issuer: String,
    /// What follows the checksum file's name in the bundle's name.
    #[serde(default = "sigstore_bundle_suffix")]
    pub bundle_suffix: String,
    /// The versions upstream signs this way; other releases go down the
    /// verification ladder as if unsigned.
    #[serde(default = "any_version")]
    pub versions: VersionReq,
}

fn github_actions_issuer() -> String {
    GITHUB_ACTIONS_ISSUER.into()
}

fn sigstore_bundle_suffix() -> String {
    ".sigstore.json".into()
}

fn any_version() -> VersionReq {
    VersionReq::STAR
}

impl SigstoreSpec {
    /// Whether a certificate identity is the one this asks for.
    pub fn identity_matches(&self, identity: &str) -> bool {
        match self.identity.strip_suffix('*') {
            Some(prefix) => identity.starts_with(prefix),
            None => identity == self.identity,
        }
    }

    /// Whether it is sound: an identity, `*` only at its end, a bundle
    /// suffix that stays a file name beside the checksum file.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let prefix = self.identity.strip_suffix('*').unwrap_or(&self.identity);
        if prefix.is_empty() {
            return Err((
                "identity",
                "is empty; give the signing identity (a workflow URL or an email)".into(),
            ));
        }
        if prefix.contains('*') {
            return Err((
                "identity",
                format!("`{}`: `*` may only end the identity", self.identity),
            ));
        }
        if self.issuer.is_empty() {
            return Err(("issuer", "is empty; give the OIDC issuer URL".into()));
        }
        if self.bundle_suffix.is_empty()
            || self.bundle_suffix.contains('/')
            || self.bundle_suffix.contains('\\')
        {
            return Err((
                "bundle_suffix",
                format!(
                    "`{}` must be a non-empty file name ending (`.sigstore.json`, `.bundle`)",
                    self.bundle_suffix
                ),
            ));
        }
        Ok(())
    }
}

/// The signature over a release's checksum file that a component calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumsSignature<'a> {
    /// A minisign signature (`<checksum file>.minisig`) by this public key.
    Minisign {
        /// The public key (`RW…`).
        key: &'a str,
    },
    /// A keyless Sigstore bundle by this identity.
    Sigstore(&'a SigstoreSpec),
}

impl ChecksumsSignature<'_> {
    /// The signature file's name beside the checksum file `checksums`.
    pub fn file_name(&self, checksums: &str) -> String {
        match self {
            ChecksumsSignature::Minisign { .. } => format!("{checksums}.minisig"),
            ChecksumsSignature::Sigstore(s) => format!("{checksums}{}", s.bundle_suffix),
        }
    }
}

/// Asset naming for a range of versions: each fact set here replaces the
/// component's own for versions in `versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetVariant {
    /// The versions this naming applies to (`<0.6.0`, `>=0.6.0, <0.8.0`).
    pub versions: VersionReq,
    /// The base name of the assets in that range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The asset file name template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// How the asset is packed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveKind>,
    /// The archive's single top directory (an empty string: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_dir: Option<String>,
    /// The binaries and their paths inside the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binaries: Option<Vec<BinarySpec>>,
    /// The checksum file's name template (an empty string: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksums: Option<String>,
}

impl Default for AssetVariant {
    /// A variant for every version that changes nothing.
    fn default() -> Self {
        AssetVariant {
            versions: VersionReq::STAR,
            artifact: None,
            asset: None,
            archive: None,
            top_dir: None,
            binaries: None,
            checksums: None,
        }
    }
}

/// How a switch reaches the running service.
///
/// A socket-activated unit (a `.socket` triggers it) keeps its listening
/// socket either way: only the service restarts, so connections queue
/// instead of being refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartStrategy {
    /// Swap the binary, then one `restart` (the shortest gap).
    #[default]
    Restart,
    /// Stop, swap, start: for services that must not run while the binary
    /// changes (they re-exec themselves, or hold the old file open).
    StopStart,
}

impl RestartStrategy {
    /// Runs the switch: `swap` changes the binary (the `current` link).
    pub fn apply(
        self,
        control: &dyn crate::ports::ServiceControl,
        unit: &str,
        swap: &mut dyn FnMut() -> Result<(), crate::ports::PortError>,
    ) -> Result<(), crate::ports::PortError> {
        match self {
            RestartStrategy::Restart => {
                swap()?;
                control.restart(unit)
            }
            RestartStrategy::StopStart => {
                control.stop(unit)?;
                swap()?;
                control.start(unit)
            }
        }
    }
}

/// Checks beyond "the process answers", each off unless set: they decide
/// like any probe (a failure rolls back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// A Prometheus that scrapes the component: its targets must be `up`,
    /// scraped after the restart, within the health deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusTarget>,
    /// Metric names that must be in the component's exposition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<String>,
    /// Regular expressions: a line of the unit's journal since the restart
    /// matching any of them fails the check (`level=error`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journal_errors: Vec<String>,
    /// Seconds the unit must then stay up without a restart (same main
    /// process, checks passing at the end) before the version is marked good.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settle_secs: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Verify {
    /// Whether any check is set.
    pub fn is_empty(&self) -> bool {
        self == &Verify::default()
    }
}

/// Which targets of which Prometheus must be up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusTarget {
    /// Its base URL (`http://127.0.0.1:9090`, with any route prefix).
    pub url: String,
    /// The targets' `job` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The targets' `instance` label; without `job` or `instance`, the
    /// targets scraping the component's own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// A PEM CA file trusted for that URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// A file holding a bearer token for its API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
}

/// The catalog facts of a component, each written once, here: `name: Type =
/// default`, with its doc and its serde attributes in [`ComponentSpec`].
/// Invoked with a callback macro that receives the whole list: this module
/// declares [`ComponentSpec`] and its `Default` from it, and `config`
/// declares the stack file's override of every fact (an optional field of
/// `ComponentConfig`) and applies them. Adding a fact is one entry here (and
/// its line in `docs/config.md`).
macro_rules! component_facts {
    ($callback:ident) => {
        $callback! {
            /// Where releases are listed.
            source: crate::catalog::SourceKind = crate::catalog::SourceKind::Github,
            /// `owner/name` on GitHub, the project path on GitLab, or the mirror's folder name.
            repo: String = String::new(),
            /// API base URL (GitHub Enterprise, GitLab, a local mirror); `None` is the public
            /// service.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            api_url: Option<String> = None,
            /// A PEM file of CA certificates trusted for `api_url`'s origin (and downloads
            /// from it) besides the system's trust store: a GitHub Enterprise, GitLab or
            /// mirror behind a private CA.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            ca_file: Option<String> = None,
            /// Only tags starting with one of these are releases (empty: every tag).
            #[serde(default)]
            tag_prefixes: Vec<String> = Vec::new(),
            /// The base name upstream gives its assets (`nginx-prometheus-exporter`).
            artifact: String = String::new(),
            /// The asset file name template.
            asset: String = String::new(),
            /// How the asset is packed.
            archive: crate::catalog::ArchiveKind = crate::catalog::ArchiveKind::TarGz,
            /// The archive's single top directory, stripped on extraction (template).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            top_dir: Option<String> = None,
            /// The binaries it ships; the first is the service's own.
            binaries: Vec<crate::catalog::BinarySpec> = Vec::new(),
            /// The checksum file's name template (`sha256sums.txt`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            checksums: Option<String> = None,
            /// Asset spelling of Go architecture names where upstream differs (`arm` → `armv7`).
            #[serde(default)]
            arch_names: std::collections::BTreeMap<String, String> = Default::default(),
            /// Other asset naming for ranges of versions (an upstream that renamed its
            /// assets): the first variant whose range holds a version replaces the facts
            /// it sets for that version.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            asset_variants: Vec<crate::catalog::AssetVariant> = Vec::new(),
            /// The arguments that make the main binary print its version (`--version`,
            /// or `version` for a subcommand).
            version_args: Vec<String> = vec!["--version".into()],
            /// The word before the version in that output.
            version_marker: String = "version".into(),
            /// The metric carrying the running version in a label (`*_build_info`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            build_info: Option<String> = None,
            /// The label of that metric holding the version.
            version_label: String = "version".into(),
            /// Whether the metric must be there after a restart (`false`: an absent
            /// metric passes, a wrong version still fails).
            version_metric_required: bool = true,
            /// Older names of that metric, tried when it is missing.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            build_info_aliases: Vec<String> = Vec::new(),
            /// The default listen port.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            port: Option<u16> = None,
            /// Where and how to reach the service, over what its unit's command line
            /// says (address, scheme, CA, client certificate, credentials, metrics path).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            endpoint: Option<crate::endpoint::EndpointOverride> = None,
            /// The liveness path (`/-/healthy`, `/metrics`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            health_path: Option<String> = None,
            /// The readiness path (`/-/ready`, `/ready`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            ready_path: Option<String> = None,
            /// Paths probed and reported after the deciding checks whose failure never
            /// rolls back (an endpoint that also reflects something else's health, like
            /// the fail2ban exporter's `/health`).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            advisory_paths: Vec<String> = Vec::new(),
            /// The main configuration file.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            config_path: Option<String> = None,
            /// The configuration check, run with the new release's binaries (argv template).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            config_check: Option<Vec<String>> = None,
            /// How a switch reaches the running service (`restart`, `stop-start`).
            #[serde(default)]
            restart: crate::catalog::RestartStrategy = crate::catalog::RestartStrategy::Restart,
            /// Checks beyond "the process answers" (Prometheus target, metrics, journal,
            /// settle period).
            #[serde(default, skip_serializing_if = "crate::catalog::Verify::is_empty")]
            verify: crate::catalog::Verify = crate::catalog::Verify::default(),
            /// The systemd unit.
            unit: String = String::new(),
            /// The phase it belongs to.
            phase: String = crate::catalog::DEFAULT_PHASES[0].into(),
            /// LTS lines (`~2.53`, `~3.5`) for `track: lts`.
            #[serde(default)]
            lts: Vec<semver::VersionReq> = Vec::new(),
            /// Seconds a restart may take before health checks give up.
            health_deadline_secs: u64 = 30,
            /// Install without any checksum or digest (refused otherwise).
            #[serde(default)]
            allow_unverified: bool = false,
            /// A minisign public key (`RW…`, the second line of a
            /// `minisign.pub`) that must have signed the release's checksum
            /// file: `<checksum file>.minisig` beside it, verified before
            /// any digest in it is trusted. For mirrors an operator signs.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            minisign_key: Option<String> = None,
            /// Install when the signature the component calls for is
            /// missing (a signature that is present and wrong is refused
            /// whatever this says).
            #[serde(default)]
            allow_unsigned: bool = false,
            /// A keyless Sigstore signature upstream publishes over its
            /// checksum file (a bundle beside it), and the identity that
            /// must have made it. A `minisign_key` takes its place.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            sigstore: Option<crate::catalog::SigstoreSpec> = None,
            /// A Sigstore trusted root (`trusted_root.json`) used instead of
            /// the public-good one built into the binary: a newer copy, or a
            /// private Sigstore instance.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            sigstore_trusted_root: Option<String> = None,
        }
    };
}
pub(crate) use component_facts;

macro_rules! declare_component_spec {
    ($(
        $(#[doc = $doc:literal])*
        $(#[serde($($serde:tt)*)])?
        $field:ident : $ty:ty = $default:expr,
    )*) => {
        /// Everything known about one component. Templates take `{artifact}`,
        /// `{version}` (no leading `v`), `{os}` and `{arch}`; commands also take
        /// `{dir}` (the release directory) and `{config}`.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ComponentSpec {
            $(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])?
                pub $field: $ty,
            )*
        }

        /// An empty description (no repository, asset or binaries) with the
        /// defaults of every fact: a base for catalog entries and for
        /// components the stack file describes completely.
        impl Default for ComponentSpec {
            fn default() -> Self {
                ComponentSpec {
                    $($field: $default,)*
                }
            }
        }
    };
}

component_facts!(declare_component_spec);

/// An operating system and architecture in Go's spelling (`linux`, `amd64`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`, `darwin`, …
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `386`, …
    pub arch: String,
}

impl Platform {
    /// A platform from Go names.
    pub fn new(os: &str, arch: &str) -> Self {
        Platform {
            os: os.to_owned(),
            arch: arch.to_owned(),
        }
    }

    /// The platform this program runs on.
    pub fn current() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            a if a.starts_with("arm") => "arm",
            other => other,
        };
        Platform::new(std::env::consts::OS, arch)
    }
}

impl ComponentSpec {
    /// The asset variant that holds `version`, if any.
    pub fn variant_for(&self, version: &Version) -> Option<&AssetVariant> {
        self.asset_variants
            .iter()
            .find(|v| v.versions.matches(version.as_semver()))
    }

    fn artifact_for(&self, version: &Version) -> &str {
        self.variant_for(version)
            .and_then(|v| v.artifact.as_deref())
            .unwrap_or(&self.artifact)
    }

    /// Fills a template for a version and platform.
    pub fn render(&self, template: &str, version: &Version, platform: &Platform) -> String {
        let arch = self
            .arch_names
            .get(&platform.arch)
            .unwrap_or(&platform.arch);
        template
            .replace("{artifact}", self.artifact_for(version))
            .replace("{version}", &version.to_string())
            .replace("{os}", &platform.os)
            .replace("{arch}", arch)
    }

    /// The asset's file name.
    pub fn asset_name(&self, version: &Version, platform: &Platform) -> String {
        let template = self
            .variant_for(version)
            .and_then(|v| v.asset.as_deref())
            .unwrap_or(&self.asset);
        self.render(template, version, platform)
    }

    /// How the asset of `version` is packed.
    pub fn archive_for(&self, version: &Version) -> ArchiveKind {
        self.variant_for(version)
            .and_then(|v| v.archive)
            .unwrap_or(self.archive)
    }

    /// The top directory stripped on extraction, if any.
    pub fn top_dir_name(&self, version: &Version, platform: &Platform) -> Option<String> {
        let template = match self.variant_for(version).and_then(|v| v.top_dir.as_deref()) {
            Some("") => None,
            Some(t) => Some(t),
            None => self.top_dir.as_deref(),
        };
        template.map(|t| self.render(t, version, platform))
    }

    /// Each binary's installed name with its path inside the archive.
    pub fn binary_paths(&self, version: &Version, platform: &Platform) -> Vec<(String, String)> {
        self.variant_for(version)
            .and_then(|v| v.binaries.as_ref())
            .unwrap_or(&self.binaries)
            .iter()
            .map(|b| (b.name.clone(), self.render(&b.path, version, platform)))
            .collect()
    }

    /// The signature a release's checksum file must carry, if any: the
    /// operator's `minisign_key` first, else upstream's Sigstore signature
    /// for the versions it signs.
    pub fn checksums_signature(&self, version: &Version) -> Option<ChecksumsSignature<'_>> {
        if let Some(key) = &self.minisign_key {
            return Some(ChecksumsSignature::Minisign { key });
        }
        self.sigstore
            .as_ref()
            .filter(|s| s.versions.matches(version.as_semver()))
            .map(ChecksumsSignature::Sigstore)
    }

    /// The checksum file's name, if upstream publishes one.
    pub fn checksums_name(&self, version: &Version, platform: &Platform) -> Option<String> {
        let template = match self
            .variant_for(version)
            .and_then(|v| v.checksums.as_deref())
        {
            Some("") => None,
            Some(t) => Some(t),
            None => self.checksums.as_deref(),
        };
        template.map(|t| self.render(t, version, platform))
    }

    /// The tag a release of `version` is expected under, for display.
    pub fn main_binary(&self) -> &str {
        self.binaries
            .first()
            .map_or(self.artifact.as_str(), |b| b.name.as_str())
    }

    /// Whether a tag belongs to this component's releases.
    pub fn tag_is_release(&self, tag: &str) -> bool {
        self.tag_prefixes.is_empty()
            || self
                .tag_prefixes
                .iter()
                .any(|p| tag.starts_with(p.as_str()))
    }
}

/// The default phases, in order.
pub const DEFAULT_PHASES: [&str; 4] = ["exporters", "alerting", "prometheus", "logs"];

fn promu(repo: &str, artifact: &str, binaries: &[&str], port: u16, phase: &str) -> ComponentSpec {
    ComponentSpec {
        repo: repo.into(),
        tag_prefixes: vec!["v".into()],
        artifact: artifact.into(),
        asset: "{artifact}-{version}.{os}-{arch}.tar.gz".into(),
        archive: ArchiveKind::TarGz,
        top_dir: Some("{artifact}-{version}.{os}-{arch}".into()),
        binaries: binaries
            .iter()
            .map(|b| BinarySpec {
                name: (*b).into(),
                path: format!("{{artifact}}-{{version}}.{{os}}-{{arch}}/{b}"),
            })
            .collect(),
        checksums: Some("sha256sums.txt".into()),
        arch_names: [("arm".to_string(), "armv7".to_string())].into(),
        build_info: Some(format!("{artifact}_build_info")),
        port: Some(port),
        health_path: Some("/metrics".into()),
        unit: format!("{artifact}.service"),
        phase: phase.into(),
        ..ComponentSpec::default()
    }
}

fn grafana(repo: &str, artifact: &str, port: u16, ready: &str, phase: &str) -> ComponentSpec {
    ComponentSpec {
        repo: repo.into(),
        tag_prefixes: vec!["v".into()],
        artifact: artifact.into(),
        asset: "{artifact}-{os}-{arch}.zip".into(),
        archive: ArchiveKind::Zip,
        binaries: vec![BinarySpec {
            name: artifact.into(),
            path: "{artifact}-{os}-{arch}".into(),
        }],
        checksums: Some("SHA256SUMS".into()),
        build_info: Some(format!("{artifact}_build_info")),
        port: Some(port),
        health_path: Some("/metrics".into()),
        ready_path: Some(ready.into()),
        unit: format!("{artifact}.service"),
        phase: phase.into(),
        health_deadline_secs: 60,
        ..ComponentSpec::default()
    }
}

fn req(s: &str) -> VersionReq {
    VersionReq::parse(s).expect("built-in range is valid")
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_string()).collect()
}

/// The built-in catalog: every well-known component by name.
pub fn builtin() -> BTreeMap<String, ComponentSpec> {
    let mut c = BTreeMap::new();
    c.insert(
        "node_exporter".into(),
        promu(
            "prometheus/node_exporter",
            "node_exporter",
            &["node_exporter"],
            9100,
            "exporters",
        ),
    );
    c.insert(
        "mysqld_exporter".into(),
        promu(
            "prometheus/mysqld_exporter",
            "mysqld_exporter",
            &["mysqld_exporter"],
            9104,
            "exporters",
        ),
    );

    let mut am = promu(
        "prometheus/alertmanager",
        "alertmanager",
        &["alertmanager", "amtool"],
        9093,
        "alerting",
    );
    am.health_path = Some("/-/healthy".into());
    am.ready_path = Some("/-/ready".into());
    am.config_path = Some("/etc/alertmanager/alertmanager.yml".into());
    am.config_check = Some(argv(&["{dir}/amtool", "check-config", "{config}"]));
    c.insert("alertmanager".into(), am);

    let mut prom = promu(
        "prometheus/prometheus",
        "prometheus",
        &["prometheus", "promtool"],
        9090,
        "prometheus",
    );
    // Prometheus also tags Go-module versions v0.3xx.y: only v2/v3 are releases.
    prom.tag_prefixes = vec!["v2.".into(), "v3.".into()];
    prom.health_path = Some("/-/healthy".into());
    prom.ready_path = Some("/-/ready".into());
    prom.config_path = Some("/etc/prometheus/prometheus.yml".into());
    prom.config_check = Some(argv(&["{dir}/promtool", "check", "config", "{config}"]));
    prom.lts = vec![req("~2.53"), req("~3.5")];
    prom.health_deadline_secs = 120;
    c.insert("prometheus".into(), prom);

    c.insert(
        "nginx_exporter".into(),
        ComponentSpec {
            repo: "nginx/nginx-prometheus-exporter".into(),
            tag_prefixes: vec!["v".into()],
            artifact: "nginx-prometheus-exporter".into(),
            asset: "{artifact}_{version}_{os}_{arch}.tar.gz".into(),
            archive: ArchiveKind::TarGz,
            binaries: vec![BinarySpec {
                name: "nginx-prometheus-exporter".into(),
                path: "nginx-prometheus-exporter".into(),
            }],
            checksums: Some("{artifact}_{version}_checksums.txt".into()),
            // From 1.5.3 the release workflow signs the checksum file with
            // cosign, keyless (goreleaser `signs`, `--bundle`); earlier
            // releases carry a `.sig` and `.pem` without a log entry, which
            // cannot be verified offline.
            sigstore: Some(SigstoreSpec {
                identity: "https://github.com/nginx/nginx-prometheus-exporter/.github/workflows/\
                           release.yml@*"
                    .into(),
                issuer: GITHUB_ACTIONS_ISSUER.into(),
                bundle_suffix: ".bundle".into(),
                versions: req(">=1.5.3"),
            }),
            arch_names: [("arm".to_string(), "armv7".to_string())].into(),
            build_info: Some("nginx_exporter_build_info".into()),
            // 0.x called it nginxexporter_build_info.
            build_info_aliases: vec!["nginxexporter_build_info".into()],
            port: Some(9113),
            health_path: Some("/metrics".into()),
            unit: "nginx_exporter.service".into(),
            phase: "exporters".into(),
            ..ComponentSpec::default()
        },
    );

    // php-fpm_exporter: goreleaser defaults (raw binaries and tarballs, no top
    // directory), a `version` subcommand, no build_info metric.
    c.insert(
        "phpfpm_exporter".into(),
        ComponentSpec {
            repo: "hipages/php-fpm_exporter".into(),
            tag_prefixes: vec!["v".into()],
            artifact: "php-fpm_exporter".into(),
            asset: "{artifact}_{version}_{os}_{arch}.tar.gz".into(),
            archive: ArchiveKind::TarGz,
            binaries: vec![BinarySpec {
                name: "php-fpm_exporter".into(),
                path: "php-fpm_exporter".into(),
            }],
            checksums: Some("{artifact}_{version}_checksums.txt".into()),
            version_args: argv(&["version"]),
            version_marker: "php-fpm_exporter".into(),
            port: Some(9253),
            health_path: Some("/metrics".into()),
            unit: "phpfpm_exporter.service".into(),
            phase: "exporters".into(),
            ..ComponentSpec::default()
        },
    );

    // The fail2ban exporter on GitLab renamed its assets twice and changed
    // tag style at 0.8 (`0.7.2` → `v0.8.0`); its version is the `exporter`
    // label of `f2b_version` (present only while fail2ban answers), and its
    // `/health` fails whenever fail2ban is down, so it never decides.
    c.insert(
        "fail2ban_exporter".into(),
        ComponentSpec {
            source: SourceKind::Gitlab,
            repo: "hectorjsmith/fail2ban-prometheus-exporter".into(),
            artifact: "fail2ban_exporter".into(),
            asset: "{artifact}_{version}_{os}_{arch}.tar.gz".into(),
            archive: ArchiveKind::TarGz,
            binaries: vec![BinarySpec {
                name: "fail2ban_exporter".into(),
                path: "fail2ban_exporter".into(),
            }],
            checksums: Some("{artifact}_{version}_checksums.txt".into()),
            asset_variants: vec![
                AssetVariant {
                    versions: req("<0.6.0"),
                    artifact: Some("fail2ban-prometheus-exporter".into()),
                    binaries: Some(vec![BinarySpec {
                        name: "fail2ban_exporter".into(),
                        path: "fail2ban-prometheus-exporter".into(),
                    }]),
                    checksums: Some("checksums.txt".into()),
                    ..AssetVariant::default()
                },
                AssetVariant {
                    versions: req(">=0.6.0, <0.8.0"),
                    top_dir: Some("{artifact}_{version}_{os}_{arch}".into()),
                    binaries: Some(vec![BinarySpec {
                        name: "fail2ban_exporter".into(),
                        path: "{artifact}_{version}_{os}_{arch}/fail2ban_exporter".into(),
                    }]),
                    checksums: Some("checksums.txt".into()),
                    ..AssetVariant::default()
                },
            ],
            arch_names: [("arm".to_string(), "armv7".to_string())].into(),
            build_info: Some("f2b_version".into()),
            version_label: "exporter".into(),
            version_metric_required: false,
            port: Some(9191),
            health_path: Some("/metrics".into()),
            advisory_paths: vec!["/health".into()],
            unit: "fail2ban_exporter.service".into(),
            phase: "exporters".into(),
            ..ComponentSpec::default()
        },
    );

    let mut loki = grafana("grafana/loki", "loki", 3100, "/ready", "logs");
    loki.config_path = Some("/etc/loki/config.yml".into());
    loki.config_check = Some(argv(&[
        "{dir}/loki",
        "-verify-config",
        "-config.file={config}",
    ]));
    loki.health_deadline_secs = 120;
    c.insert("loki".into(), loki);

    let mut promtail = grafana("grafana/loki", "promtail", 9080, "/ready", "logs");
    promtail.config_path = Some("/etc/promtail/config.yml".into());
    promtail.config_check = Some(argv(&[
        "{dir}/promtail",
        "-check-syntax",
        "-config.file={config}",
    ]));
    c.insert("promtail".into(), promtail);

    let mut alloy = grafana("grafana/alloy", "alloy", 12345, "/-/ready", "logs");
    alloy.config_path = Some("/etc/alloy/config.alloy".into());
    alloy.config_check = Some(argv(&["{dir}/alloy", "validate", "{config}"]));
    c.insert("alloy".into(), alloy);
    c
}

/// The built-in compatibility rules for the known stack.
pub fn builtin_rules() -> Rules {
    Rules {
        requires: vec![Requires {
            component: "prometheus".into(),
            versions: req(">=3.0.0"),
            needs: "alertmanager".into(),
            needs_versions: req(">=0.16.0"),
            note: Some("Prometheus 3 speaks only the Alertmanager v2 API".into()),
        }],
        stepping_stones: vec![SteppingStone {
            component: "prometheus".into(),
            crossing: Version::new(3, 0, 0),
            via: req("~2.55"),
            note: Some(
                "a 3.x TSDB is readable only by 2.55 or later, so 2.55.x is the last safe \
                rollback point"
                    .into(),
            ),
        }],
        end_of_life: vec![EndOfLife {
            component: "promtail".into(),
            date: date(2026, 3, 2),
            successor: Some("alloy".into()),
            last_release: Some(Version::new(3, 6, 11)),
        }],
        breaking: vec![
            BreakingChange {
                component: "prometheus".into(),
                crossing: Version::new(3, 0, 0),
                note: "Prometheus 3 changes defaults (UTF-8 names, scrape protocols, removed \
                    flags); read the migration guide"
                    .into(),
            },
            BreakingChange {
                component: "loki".into(),
                crossing: Version::new(3, 0, 0),
                note: "Loki 3.0 enables structured metadata by default, which needs the tsdb \
                    index and schema v13 (or `allow_structured_metadata: false`), and removes \
                    long-deprecated settings; read the 3.0 upgrade guide"
                    .into(),
            },
            BreakingChange {
                component: "nginx_exporter".into(),
                crossing: Version::new(1, 0, 0),
                note: "nginx-prometheus-exporter 1.0 renamed its command-line flags to the \
                    --nginx.* / --web.* form"
                    .into(),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    struct Expect {
        name: &'static str,
        version: &'static str,
        asset: [&'static str; 2],
        kind: ArchiveKind,
        inner: [&'static str; 2],
        checksums: &'static str,
    }

    #[test]
    fn asset_names_match_upstream() {
        let cases = [
            Expect {
                name: "node_exporter",
                version: "1.9.1",
                asset: [
                    "node_exporter-1.9.1.linux-amd64.tar.gz",
                    "node_exporter-1.9.1.linux-arm64.tar.gz",
                ],
                kind: ArchiveKind::TarGz,
                inner: [
                    "node_exporter-1.9.1.linux-amd64/node_exporter",
                    "node_exporter-1.9.1.linux-arm64/node_exporter",
                ],
                checksums: "sha256sums.txt",
            },
            Expect {
                name: "prometheus",
                version: "3.5.0",
                asset: [
                    "prometheus-3.5.0.linux-amd64.tar.gz",
                    "prometheus-3.5.0.linux-arm64.tar.gz",
                ],
                kind: ArchiveKind::TarGz,
                inner: [
                    "prometheus-3.5.0.linux-amd64/prometheus",
                    "prometheus-3.5.0.linux-arm64/prometheus",
                ],
                checksums: "sha256sums.txt",
            },
            Expect {
                name: "alertmanager",
                version: "0.28.1",
                asset: [
                    "alertmanager-0.28.1.linux-amd64.tar.gz",
                    "alertmanager-0.28.1.linux-arm64.tar.gz",
                ],
                kind: ArchiveKind::TarGz,
                inner: [
                    "alertmanager-0.28.1.linux-amd64/alertmanager",
                    "alertmanager-0.28.1.linux-arm64/alertmanager",
                ],
                checksums: "sha256sums.txt",
            },
            Expect {
                name: "mysqld_exporter",
                version: "0.17.2",
                asset: [
                    "mysqld_exporter-0.17.2.linux-amd64.tar.gz",
                    "mysqld_exporter-0.17.2.linux-arm64.tar.gz",
                ],
                kind: ArchiveKind::TarGz,
                inner: [
                    "mysqld_exporter-0.17.2.linux-amd64/mysqld_exporter",
                    "mysqld_exporter-0.17.2.linux-arm64/mysqld_exporter",
                ],
                checksums: "sha256sums.txt",
            },
            Expect {
                name: "nginx_exporter",
                version: "1.4.1",
                asset: [
                    "nginx-prometheus-exporter_1.4.1_linux_amd64.tar.gz",
                    "nginx-prometheus-exporter_1.4.1_linux_arm64.tar.gz",
                ],
                kind: ArchiveKind::TarGz,
                inner: ["nginx-prometheus-exporter", "nginx-prometheus-exporter"],
                checksums: "nginx-prometheus-exporter_1.4.1_checksums.txt",
            },
            Expect {
                name: "phpfpm_exporter",
                version: "2.2.0",
                asset: [
                    "php-fpm_exporter_2.2.0_linux_amd64.tar.gz",
                    "php-fpm_exporter_2.2.0_linux_arm64.tar.gz",
                ],
                kind: ArchiveKind::TarGz,
                inner: ["php-fpm_exporter", "php-fpm_exporter"],
                checksums: "php-fpm_exporter_2.2.0_checksums.txt",
            },
            Expect {
                name: "fail2ban_exporter",
                version: "0.10.1",
                asset: [
                    "fail2ban_exporter_0.10.1_linux_amd64.tar.gz",
                    "fail2ban_exporter_0.10.1_linux_arm64.tar.gz",
                ],
                kind: ArchiveKind::TarGz,
                inner: ["fail2ban_exporter", "fail2ban_exporter"],
                checksums: "fail2ban_exporter_0.10.1_checksums.txt",
            },
            Expect {
                name: "loki",
                version: "3.5.0",
                asset: ["loki-linux-amd64.zip", "loki-linux-arm64.zip"],
                kind: ArchiveKind::Zip,
                inner: ["loki-linux-amd64", "loki-linux-arm64"],
                checksums: "SHA256SUMS",
            },
            Expect {
                name: "promtail",
                version: "3.6.11",
                asset: ["promtail-linux-amd64.zip", "promtail-linux-arm64.zip"],
                kind: ArchiveKind::Zip,
                inner: ["promtail-linux-amd64", "promtail-linux-arm64"],
                checksums: "SHA256SUMS",
            },
            Expect {
                name: "alloy",
                version: "1.18.1",
                asset: ["alloy-linux-amd64.zip", "alloy-linux-arm64.zip"],
                kind: ArchiveKind::Zip,
                inner: ["alloy-linux-amd64", "alloy-linux-arm64"],
                checksums: "SHA256SUMS",
            },
        ];
        let catalog = builtin();
        assert_eq!(catalog.len(), cases.len(), "every catalog entry is tested");
        for e in cases {
            let spec = &catalog[e.name];
            for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
                let p = Platform::new("linux", arch);
                let ver = v(e.version);
                assert_eq!(spec.asset_name(&ver, &p), e.asset[i], "{} {arch}", e.name);
                assert_eq!(spec.archive, e.kind, "{}", e.name);
                assert_eq!(
                    spec.binary_paths(&ver, &p)[0].1,
                    e.inner[i],
                    "{} {arch}",
                    e.name
                );
                assert_eq!(
                    spec.checksums_name(&ver, &p).as_deref(),
                    Some(e.checksums),
                    "{}",
                    e.name
                );
            }
        }
    }

    /// The fail2ban exporter's three namings, as its `.goreleaser.yml` at each
    /// tag produced them (goreleaser's default name templates).
    #[test]
    fn fail2ban_naming_follows_each_release_range() {
        let spec = &builtin()["fail2ban_exporter"];
        let p = Platform::new("linux", "amd64");
        let arm = Platform::new("linux", "arm");
        // 0.5: project fail2ban-prometheus-exporter, binary at the root, checksums.txt.
        let v05 = v("0.5.0");
        assert_eq!(
            spec.asset_name(&v05, &p),
            "fail2ban-prometheus-exporter_0.5.0_linux_amd64.tar.gz"
        );
        assert_eq!(
            spec.asset_name(&v05, &arm),
            "fail2ban-prometheus-exporter_0.5.0_linux_armv7.tar.gz"
        );
        assert_eq!(spec.top_dir_name(&v05, &p), None);
        assert_eq!(
            spec.binary_paths(&v05, &p),
            [(
                "fail2ban_exporter".to_string(),
                "fail2ban-prometheus-exporter".to_string()
            )]
        );
        assert_eq!(
            spec.checksums_name(&v05, &p).as_deref(),
            Some("checksums.txt")
        );
        // 0.6–0.7: renamed, wrapped in a directory, still checksums.txt.
        for ver in ["0.6.0", "0.7.2"] {
            let ver = v(ver);
            let dir = format!("fail2ban_exporter_{ver}_linux_amd64");
            assert_eq!(spec.asset_name(&ver, &p), format!("{dir}.tar.gz"));
            assert_eq!(spec.top_dir_name(&ver, &p), Some(dir.clone()));
            assert_eq!(
                spec.binary_paths(&ver, &p)[0].1,
                format!("{dir}/fail2ban_exporter")
            );
            assert_eq!(
                spec.checksums_name(&ver, &p).as_deref(),
                Some("checksums.txt")
            );
        }
        // 0.8 on: at the root, versioned checksum file.
        let v08 = v("0.8.0");
        assert_eq!(spec.top_dir_name(&v08, &p), None);
        assert_eq!(spec.binary_paths(&v08, &p)[0].1, "fail2ban_exporter");
        assert_eq!(
            spec.checksums_name(&v08, &p).as_deref(),
            Some("fail2ban_exporter_0.8.0_checksums.txt")
        );
        // Both tag styles are releases.
        assert!(spec.tag_is_release("0.7.2") && spec.tag_is_release("v0.8.0"));
    }

    #[test]
    fn arm_uses_upstream_spelling() {
        let cat = builtin();
        let p = Platform::new("linux", "arm");
        assert_eq!(
            cat["node_exporter"].asset_name(&v("1.9.1"), &p),
            "node_exporter-1.9.1.linux-armv7.tar.gz"
        );
        assert_eq!(
            cat["loki"].asset_name(&v("3.5.0"), &p),
            "loki-linux-arm.zip"
        );
    }

    #[test]
    fn nginx_exporter_asks_for_its_release_workflow_signature_from_1_5_3() {
        let nginx = &builtin()["nginx_exporter"];
        let p = Platform {
            os: "linux".into(),
            arch: "amd64".into(),
        };
        assert_eq!(nginx.checksums_signature(&v("1.5.2")), None);
        let sig = nginx.checksums_signature(&v("1.5.3")).unwrap();
        let sums = nginx.checksums_name(&v("1.5.3"), &p).unwrap();
        assert_eq!(
            sig.file_name(&sums),
            "nginx-prometheus-exporter_1.5.3_checksums.txt.bundle"
        );
        let ChecksumsSignature::Sigstore(spec) = sig else {
            panic!("{sig:?}")
        };
        assert!(spec.check().is_ok());
        let repo = "https://github.com/nginx/nginx-prometheus-exporter";
        for ok in [
            "/.github/workflows/release.yml@refs/heads/main",
            "/.github/workflows/release.yml@refs/heads/release-1.5",
        ] {
            assert!(spec.identity_matches(&format!("{repo}{ok}")), "{ok}");
        }
        for bad in [
            format!("{repo}/.github/workflows/ci.yml@refs/heads/main"),
            format!("{repo}/.github/workflows/release.yml"),
            "https://github.com/evil/nginx-prometheus-exporter/.github/workflows/release.yml@x"
                .into(),
            String::new(),
        ] {
            assert!(!spec.identity_matches(&bad), "{bad}");
        }
        // An operator's minisign key takes the place of upstream's signature.
        let mut mirrored = nginx.clone();
        mirrored.minisign_key = Some("RWQ".into());
        assert_eq!(
            mirrored.checksums_signature(&v("1.5.3")),
            Some(ChecksumsSignature::Minisign { key: "RWQ" })
        );
        assert_eq!(
            mirrored
                .checksums_signature(&v("1.5.3"))
                .unwrap()
                .file_name("sha256sums.txt"),
            "sha256sums.txt.minisig"
        );
    }

    #[test]
    fn a_sigstore_identity_is_exact_or_ends_in_one_star() {
        let spec = |identity: &str, suffix: &str| SigstoreSpec {
            identity: identity.into(),
            issuer: GITHUB_ACTIONS_ISSUER.into(),
            bundle_suffix: suffix.into(),
            versions: VersionReq::STAR,
        };
        let exact = spec("ops@example.org", ".sigstore.json");
        assert!(exact.check().is_ok());
        assert!(exact.identity_matches("ops@example.org"));
        assert!(!exact.identity_matches("ops@example.org.evil"));
        for (identity, suffix, key) in [
            ("", ".sigstore.json", "identity"),
            ("*", ".sigstore.json", "identity"),
            ("https://github.com/*/x.yml@*", ".sigstore.json", "identity"),
            ("ops@example.org", "", "bundle_suffix"),
            ("ops@example.org", "/../x", "bundle_suffix"),
        ] {
            assert_eq!(
                spec(identity, suffix).check().map_err(|(k, _)| k),
                Err(key),
                "{identity} {suffix}"
            );
        }
        let mut no_issuer = exact.clone();
        no_issuer.issuer.clear();
        assert_eq!(no_issuer.check().map_err(|(k, _)| k), Err("issuer"));
    }

    #[test]
    fn prometheus_module_tags_are_not_releases() {
        let prom = &builtin()["prometheus"];
        assert!(prom.tag_is_release("v3.5.0"));
        assert!(prom.tag_is_release("v2.53.3"));
        assert!(!prom.tag_is_release("v0.303.0"));
        assert!(builtin()["node_exporter"].tag_is_release("v1.9.1"));
    }

    #[test]
    fn top_dir_and_binaries() {
        let cat = builtin();
        let p = Platform::new("linux", "amd64");
        assert_eq!(
            cat["prometheus"].top_dir_name(&v("3.5.0"), &p).as_deref(),
            Some("prometheus-3.5.0.linux-amd64")
        );
        let bins: Vec<String> = cat["prometheus"]
            .binary_paths(&v("3.5.0"), &p)
            .into_iter()
            .map(|b| b.0)
            .collect();
        assert_eq!(bins, ["prometheus", "promtool"]);
        assert_eq!(cat["loki"].top_dir_name(&v("3.5.0"), &p), None);
    }
}
