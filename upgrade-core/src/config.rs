//! The stack file: components, policies, phases, environments and rules.
//!
//! YAML or TOML by extension, one schema, unknown keys refused. See
//! `docs/config.md` for every key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::{self, ArchiveKind, BinarySpec, ComponentSpec, Reload, SourceKind};
use crate::policy::{Age, Allow, Policy, PolicyOverride, Track, VersionMatcher};
use crate::risk::Risk;
use crate::rules::Rules;
use crate::window::Schedule;

/// The environment variable that chooses the environment when no flag does.
pub const ENVIRONMENT_VAR: &str = "OBS_UPGRADE_ENVIRONMENT";

/// What to do with the rest of the run when a component in a phase fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop the run (the default).
    #[default]
    Stop,
    /// Go on with the next component.
    Continue,
}

/// One phase as written in the stack file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// The phase's name, used by components' `phase`.
    pub name: String,
    /// What a failure does to the rest of the run.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Roll back every component of the phase when one fails.
    #[serde(default)]
    pub atomic: bool,
}

/// One component as written in the stack file: policy, placement, and
/// overrides of any catalog fact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// `latest`, `lts`, a version or a semver range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<Track>,
    /// `none`, `patch`, `minor` or `major`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Allow>,
    /// Releases younger than this are held back (`3d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_release_age: Option<Age>,
    /// Versions or ranges never planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<Vec<VersionMatcher>>,
    /// Whether pre-releases are candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prereleases: Option<bool>,
    /// The phase this component is upgraded in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Components upgraded before this one in the same or an earlier phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Catalog override: where releases are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceKind>,
    /// Catalog override: the repository or project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Catalog override: the API base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Catalog override: tag prefixes that mark releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_prefixes: Option<Vec<String>>,
    /// Catalog override: the asset base name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// Catalog override: the asset name template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Catalog override: the archive kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveKind>,
    /// Catalog override: the archive's top directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_dir: Option<String>,
    /// Catalog override: the binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binaries: Option<Vec<BinarySpec>>,
    /// Catalog override: the checksum file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksums: Option<String>,
    /// Catalog override: asset spelling of architectures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch_names: Option<BTreeMap<String, String>>,
    /// Catalog override: the word before the version in `--version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_marker: Option<String>,
    /// Catalog override: the build-info metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<String>,
    /// Catalog override: older names of the build-info metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info_aliases: Option<Vec<String>>,
    /// Catalog override: the listen port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Catalog override: the liveness path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    /// Catalog override: the readiness path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_path: Option<String>,
    /// Catalog override: the configuration file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
    /// Catalog override: the configuration check command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_check: Option<Vec<String>>,
    /// Catalog override: how to reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<Reload>,
    /// Catalog override: the systemd unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Catalog override: LTS lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lts: Option<Vec<semver::VersionReq>>,
    /// Catalog override: the health deadline in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_deadline_secs: Option<u64>,
    /// Install even when no checksum or digest can prove the download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_unverified: Option<bool>,
    /// SHA-256 digests pinned per version (strongest proof).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sha256: BTreeMap<String, String>,
    /// The highest risk applied unattended for this component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve: Option<Risk>,
}

/// When unattended runs may switch, and what they may apply by themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Windows and blackout dates.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The highest risk applied unattended (default `low`).
    #[serde(default = "low")]
    pub auto_approve: Risk,
}

fn low() -> Risk {
    Risk::Low
}

impl Default for Maintenance {
    fn default() -> Self {
        Maintenance {
            schedule: Schedule::default(),
            auto_approve: Risk::Low,
        }
    }
}

/// How much to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReportLevel {
    /// Every event.
    Always,
    /// Events that change something (and updates available).
    #[default]
    OnChange,
    /// Failures and rollbacks only.
    OnError,
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The documented JSON event.
    #[default]
    Json,
    /// `{"text": "…"}`, for Slack and compatible chats.
    Slack,
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where to POST.
    pub url: String,
    /// The body's shape.
    #[serde(default)]
    pub format: WebhookFormat,
}

/// Mail through a sendmail-compatible command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// Recipients.
    pub to: Vec<String>,
    /// Sender.
    #[serde(default = "default_from")]
    pub from: String,
    /// The command (`sendmail -t -i` is called with the message on stdin).
    #[serde(default = "default_sendmail")]
    pub sendmail: String,
}

fn default_from() -> String {
    "obs-upgrade@localhost".into()
}

fn default_sendmail() -> String {
    "/usr/sbin/sendmail".into()
}

/// Where events go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// How much to report.
    #[serde(default)]
    pub level: ReportLevel,
    /// Webhooks.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// Commands run with the event in the environment and as JSON on stdin.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
    /// Mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
}

/// Self-metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// The file for `node_exporter`'s textfile collector.
    #[serde(default = "default_textfile")]
    pub textfile: String,
}

fn default_textfile() -> String {
    "/var/lib/prometheus/node-exporter/obs_upgrade.prom".into()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            textfile: default_textfile(),
        }
    }
}

/// An environment's overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Policy defaults for every component in this environment.
    #[serde(default)]
    pub defaults: PolicyOverride,
    /// Policy per component in this environment.
    #[serde(default)]
    pub components: BTreeMap<String, PolicyOverride>,
}

/// The stack file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// The environment used when neither `--environment` nor
    /// `OBS_UPGRADE_ENVIRONMENT` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Policy defaults for every component.
    #[serde(default)]
    pub defaults: PolicyOverride,
    /// Phases in order; the catalog's phases when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Vec<PhaseSpec>>,
    /// The components, by name.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentConfig>,
    /// Named environments.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentConfig>,
    /// Rules added to the built-in ones.
    #[serde(default)]
    pub rules: Rules,
    /// Whether the built-in rules apply (default true).
    #[serde(default = "yes")]
    pub builtin_rules: bool,
    /// Maintenance windows and auto-approval.
    #[serde(default)]
    pub maintenance: Maintenance,
    /// Notifications.
    #[serde(default)]
    pub notifications: Notifications,
    /// Self-metrics.
    #[serde(default)]
    pub metrics: Metrics,
}

fn yes() -> bool {
    true
}

impl Default for StackFile {
    fn default() -> Self {
        StackFile {
            environment: None,
            defaults: PolicyOverride::default(),
            phases: None,
            components: BTreeMap::new(),
            environments: BTreeMap::new(),
            rules: Rules::default(),
            builtin_rules: true,
            maintenance: Maintenance::default(),
            notifications: Notifications::default(),
            metrics: Metrics::default(),
        }
    }
}

/// A component of a resolved stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Its name.
    pub name: String,
    /// Upstream facts, catalog merged with overrides.
    pub spec: ComponentSpec,
    /// The resolved policy for the chosen environment.
    pub policy: Policy,
    /// Its phase.
    pub phase: String,
    /// What it depends on.
    pub depends_on: Vec<String>,
    /// Pinned SHA-256 digests by version.
    pub sha256: BTreeMap<String, String>,
    /// The highest risk applied unattended.
    pub auto_approve: Risk,
}

impl Component {
    /// A component from its upstream facts alone, with the default policy
    /// (a journal's copy of a component that left the stack).
    pub fn from_spec(name: &str, spec: ComponentSpec, phase: &str) -> Component {
        Component {
            name: name.to_owned(),
            spec,
            policy: Policy::default(),
            phase: phase.to_owned(),
            depends_on: Vec::new(),
            sha256: BTreeMap::new(),
            auto_approve: Risk::Low,
        }
    }
}

/// A stack resolved for one environment: what the planner and engine use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stack {
    /// Where it was read from (`None`: built-in catalog).
    pub source: Option<PathBuf>,
    /// The chosen environment.
    pub environment: Option<String>,
    /// Phases in order.
    pub phases: Vec<PhaseSpec>,
    /// Components by name.
    pub components: BTreeMap<String, Component>,
    /// All rules in force.
    pub rules: Rules,
    /// Maintenance windows and auto-approval.
    pub maintenance: Maintenance,
    /// Notifications.
    pub notifications: Notifications,
    /// Self-metrics.
    pub metrics: Metrics,
}

/// Why a stack file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read stack file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The extension says neither YAML nor TOML.
    #[error("{}: unknown stack file type; name it `.yaml`, `.yml` or `.toml`", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The text does not parse, or a value does not fit the schema.
    #[error("{file}:{line}:{column}: {key}{message}")]
    Syntax {
        /// The file (or `<input>`).
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// The key path with a trailing `: `, or empty.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file parses but says something inconsistent.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file (or `<input>`).
        file: String,
        /// The key path (`components.prometheus.depends_on[0]`).
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The stack file's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
    /// TOML.
    Toml,
}

impl Format {
    /// By extension: `.yaml`/`.yml` or `.toml`.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |p| before.len() - p - 1)
        + 1;
    (line, column)
}

fn key_prefix(path: &serde_path_to_error::Path) -> String {
    let p = path.to_string();
    if p == "." || p.is_empty() {
        String::new()
    } else {
        format!("{p}: ")
    }
}

impl StackFile {
    /// Parses stack-file text; `file` names it in errors.
    pub fn parse(text: &str, format: Format, file: &str) -> Result<StackFile, Error> {
        match format {
            Format::Yaml => {
                if text.trim().is_empty() {
                    return Ok(StackFile {
                        builtin_rules: true,
                        ..StackFile::default()
                    });
                }
                let de = yaml_serde::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let key = key_prefix(e.path());
                    let inner = e.inner();
                    let (line, column) =
                        inner.location().map_or((0, 0), |l| (l.line(), l.column()));
                    let mut message = inner.to_string();
                    // The YAML error repeats the path and position; keep what is new.
                    if let Some(pos) = message.find(" at line ") {
                        message.truncate(pos);
                    }
                    // The YAML error may start with the path again (or a parent of it).
                    let path = key.trim_end_matches(": ");
                    if let Some((head, rest)) = message.split_once(": ")
                        && !head.contains(' ')
                        && path.starts_with(head)
                    {
                        message = rest.to_owned();
                    }
                    Error::Syntax {
                        file: file.to_owned(),
                        line,
                        column,
                        key,
                        message,
                    }
                })
            }
            Format::Toml => {
                let syntax = |e: toml::de::Error| {
                    let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
                    (line, column, e.message().to_owned())
                };
                let de = toml::Deserializer::parse(text).map_err(|e| {
                    let (line, column, message) = syntax(e);
                    Error::Syntax {
                        file: file.to_owned(),
                        line,
                        column,
                        key: String::new(),
                        message,
                    }
                })?;
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let key = key_prefix(e.path());
                    let (line, column, message) = syntax(e.into_inner());
                    Error::Syntax {
                        file: file.to_owned(),
                        line,
                        column,
                        key,
                        message,
                    }
                })
            }
        }
    }

    /// Resolves the file for an environment (`None`: the file's own
    /// `environment`, if any) against the built-in catalog.
    pub fn resolve(&self, environment: Option<&str>, file: &str) -> Result<Stack, Error> {
        let invalid = |key: String, message: String| Error::Invalid {
            file: file.to_owned(),
            key,
            message,
        };
        let catalog = catalog::builtin();

        // Environment.
        let environment = environment
            .map(str::to_owned)
            .or_else(|| self.environment.clone());
        let env_cfg = match &environment {
            None => None,
            Some(e) => match self.environments.get(e) {
                Some(cfg) => Some(cfg),
                None => {
                    let known: Vec<&str> = self.environments.keys().map(String::as_str).collect();
                    return Err(invalid(
                        "environment".into(),
                        format!(
                            "unknown environment `{e}`; {}",
                            if known.is_empty() {
                                "this stack file defines none under `environments`".to_owned()
                            } else {
                                format!("defined: {}", known.join(", "))
                            }
                        ),
                    ));
                }
            },
        };

        // Phases.
        let phases: Vec<PhaseSpec> = self.phases.clone().unwrap_or_else(|| {
            catalog::DEFAULT_PHASES
                .iter()
                .map(|n| PhaseSpec {
                    name: (*n).into(),
                    on_failure: OnFailure::Stop,
                    atomic: false,
                })
                .collect()
        });
        let mut seen = BTreeSet::new();
        for (i, p) in phases.iter().enumerate() {
            if p.name.is_empty() {
                return Err(invalid(
                    format!("phases[{i}].name"),
                    "a phase needs a name".into(),
                ));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(invalid(
                    format!("phases[{i}].name"),
                    format!("phase `{}` is listed twice", p.name),
                ));
            }
        }
        let phase_index: BTreeMap<&str, usize> = phases
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();

        // Components: every catalog entry when the file names none.
        let configs: BTreeMap<String, ComponentConfig> = if self.components.is_empty() {
            catalog
                .keys()
                .map(|k| (k.clone(), ComponentConfig::default()))
                .collect()
        } else {
            self.components.clone()
        };
        let mut components = BTreeMap::new();
        for (name, cfg) in &configs {
            let key = format!("components.{name}");
            let spec = merge_spec(catalog.get(name), cfg).map_err(|m| invalid(key.clone(), m))?;
            let mut policy = Policy::default();
            self.defaults.apply_to(&mut policy);
            if let Some(env) = env_cfg {
                env.defaults.apply_to(&mut policy);
            }
            cfg.policy_override().apply_to(&mut policy);
            if let Some(o) = env_cfg.and_then(|e| e.components.get(name)) {
                o.apply_to(&mut policy);
            }
            let phase = cfg.phase.clone().unwrap_or_else(|| spec.phase.clone());
            if !phase_index.contains_key(phase.as_str()) {
                let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
                return Err(invalid(
                    format!("{key}.phase"),
                    format!("unknown phase `{phase}`; phases: {}", known.join(", ")),
                ));
            }
            for (version, digest) in &cfg.sha256 {
                crate::version::Version::parse(version)
                    .map_err(|e| invalid(format!("{key}.sha256"), e.to_string()))?;
                if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        format!("{key}.sha256.{version}"),
                        "a SHA-256 digest is 64 hex digits".into(),
                    ));
                }
            }
            components.insert(
                name.clone(),
                Component {
                    name: name.clone(),
                    spec,
                    policy,
                    phase,
                    depends_on: cfg.depends_on.clone(),
                    sha256: cfg.sha256.clone(),
                    auto_approve: cfg.auto_approve.unwrap_or(self.maintenance.auto_approve),
                },
            );
        }

        for (env_name, env) in &self.environments {
            for name in env.components.keys() {
                if !components.contains_key(name) {
                    return Err(invalid(
                        format!("environments.{env_name}.components.{name}"),
                        format!(
                            "unknown component `{name}`; components in this stack: {}",
                            names(&components)
                        ),
                    ));
                }
            }
        }

        // Dependencies: known, not in a later phase, no cycles.
        for c in components.values() {
            for (i, dep) in c.depends_on.iter().enumerate() {
                let key = format!("components.{}.depends_on[{i}]", c.name);
                let Some(d) = components.get(dep) else {
                    return Err(invalid(
                        key,
                        format!(
                            "unknown component `{dep}`; components in this stack: {}",
                            names(&components)
                        ),
                    ));
                };
                if phase_index[d.phase.as_str()] > phase_index[c.phase.as_str()] {
                    return Err(invalid(
                        key,
                        format!(
                            "`{dep}` is in phase `{}`, after `{}`'s phase `{}`; move one of them \
                                or reorder `phases`",
                            d.phase, c.name, c.phase
                        ),
                    ));
                }
            }
        }
        if let Some(cycle) = find_cycle(&components) {
            return Err(invalid(
                "components".into(),
                format!(
                    "dependency cycle: {}; remove one of these `depends_on` entries",
                    cycle.join(" → ")
                ),
            ));
        }

        // Rules.
        for (key, name) in self.rules.named_components() {
            if !components.contains_key(name) && !catalog.contains_key(name) {
                return Err(invalid(
                    key,
                    format!(
                        "unknown component `{name}`; components in this stack: {}",
                        names(&components)
                    ),
                ));
            }
        }
        let mut rules = if self.builtin_rules {
            catalog::builtin_rules()
        } else {
            Rules::default()
        };
        rules.extend(self.rules.clone());

        for (i, u) in self.notifications.webhooks.iter().enumerate() {
            if !(u.url.starts_with("https://") || u.url.starts_with("http://")) {
                return Err(invalid(
                    format!("notifications.webhooks[{i}].url"),
                    format!("`{}` is not an http(s) URL", u.url),
                ));
            }
        }
        for (i, c) in self.notifications.commands.iter().enumerate() {
            if c.is_empty() {
                return Err(invalid(
                    format!("notifications.commands[{i}]"),
                    "an empty command; \
                    write it as a list: [\"/usr/local/bin/notify\", \"--quiet\"]"
                        .into(),
                ));
            }
        }
        Ok(Stack {
            source: None,
            environment,
            phases,
            components,
            rules,
            maintenance: self.maintenance.clone(),
            notifications: self.notifications.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

fn names(components: &BTreeMap<String, Component>) -> String {
    components
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first dependency cycle found, as a closed path (`a → b → a`).
fn find_cycle(components: &BTreeMap<String, Component>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        comps: &'a BTreeMap<String, Component>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(n, Mark::Active);
        stack.push(n);
        for d in &comps[n].depends_on {
            match marks.get(d.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Active => {
                    let start = stack.iter().position(|s| *s == d.as_str()).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| (*s).to_owned()).collect();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d, comps, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in components.keys() {
        if marks.get(n.as_str()).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(n, components, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

impl ComponentConfig {
    /// The policy fields of this component.
    pub fn policy_override(&self) -> PolicyOverride {
        PolicyOverride {
            track: self.track.clone(),
            allow: self.allow,
            min_release_age: self.min_release_age,
            deny: self.deny.clone(),
            prereleases: self.prereleases,
        }
    }
}

fn merge_spec(base: Option<&ComponentSpec>, c: &ComponentConfig) -> Result<ComponentSpec, String> {
    let mut s = match base {
        Some(b) => b.clone(),
        None => {
            let mut missing = Vec::new();
            for (k, set) in [
                ("repo", c.repo.is_some()),
                ("asset", c.asset.is_some()),
                ("archive", c.archive.is_some()),
                ("binaries", c.binaries.is_some()),
            ] {
                if !set {
                    missing.push(k);
                }
            }
            if !missing.is_empty() {
                let known: Vec<String> = catalog::builtin().into_keys().collect();
                return Err(format!(
                    "not in the built-in catalog ({}); describe it completely: missing {}",
                    known.join(", "),
                    missing.join(", ")
                ));
            }
            let artifact = c.artifact.clone().unwrap_or_default();
            ComponentSpec {
                source: SourceKind::Github,
                repo: String::new(),
                api_url: None,
                tag_prefixes: Vec::new(),
                artifact,
                asset: String::new(),
                archive: ArchiveKind::TarGz,
                top_dir: None,
                binaries: Vec::new(),
                checksums: None,
                arch_names: BTreeMap::new(),
                version_marker: "version".into(),
                build_info: None,
                build_info_aliases: Vec::new(),
                port: None,
                health_path: None,
                ready_path: None,
                config_path: None,
                config_check: None,
                reload: None,
                unit: String::new(),
                phase: catalog::DEFAULT_PHASES[0].into(),
                lts: Vec::new(),
                health_deadline_secs: 30,
                allow_unverified: false,
            }
        }
    };
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = &c.$field {
                s.$field = v.clone();
            }
        };
        (opt $field:ident) => {
            if let Some(v) = &c.$field {
                s.$field = Some(v.clone());
            }
        };
    }
    set!(source);
    set!(repo);
    set!(opt api_url);
    set!(tag_prefixes);
    set!(artifact);
    set!(asset);
    set!(archive);
    set!(opt top_dir);
    set!(binaries);
    set!(opt checksums);
    set!(arch_names);
    set!(version_marker);
    set!(opt build_info);
    set!(build_info_aliases);
    set!(opt port);
    set!(opt health_path);
    set!(opt ready_path);
    set!(opt config_path);
    set!(opt config_check);
    set!(opt reload);
    set!(unit);
    set!(lts);
    set!(health_deadline_secs);
    set!(allow_unverified);
    if s.binaries.is_empty() {
        return Err("`binaries` is empty; name at least the service's own binary".into());
    }
    if s.artifact.is_empty() {
        s.artifact = s.binaries[0].name.clone();
    }
    if s.unit.is_empty() {
        s.unit = format!("{}.service", s.binaries[0].name);
    }
    Ok(s)
}

impl Stack {
    /// Resolves the text of the stack file at `path` (read by the caller:
    /// this crate does no I/O) for `environment`; YAML or TOML by extension.
    pub fn from_file(path: &Path, text: &str, environment: Option<&str>) -> Result<Stack, Error> {
        let format = Format::from_path(path).ok_or_else(|| Error::UnknownFormat {
            path: path.to_owned(),
        })?;
        let file = path.display().to_string();
        let mut stack = StackFile::parse(text, format, &file)?.resolve(environment, &file)?;
        stack.source = Some(path.to_owned());
        Ok(stack)
    }

    /// Parses and resolves stack-file text.
    pub fn from_text(
        text: &str,
        format: Format,
        file: &str,
        environment: Option<&str>,
    ) -> Result<Stack, Error> {
        StackFile::parse(text, format, file)?.resolve(environment, file)
    }

    /// The built-in catalog with default policies: the zero-config stack.
    pub fn builtin() -> Stack {
        StackFile {
            builtin_rules: true,
            ..StackFile::default()
        }
        .resolve(None, "<built-in>")
        .expect("the built-in catalog resolves")
    }

    /// The index of a phase by name.
    pub fn phase_index(&self, name: &str) -> Option<usize> {
        self.phases.iter().position(|p| p.name == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Stack, Error> {
        Stack::from_text(text, Format::Yaml, "stack.yaml", None)
    }

    #[test]
    fn minimal_component_gets_catalog_facts() {
        let s = yaml("components:\n  prometheus:\n    track: lts\n    allow: patch\n").unwrap();
        let p = &s.components["prometheus"];
        assert_eq!(p.spec.repo, "prometheus/prometheus");
        assert_eq!(p.policy.track, Track::Lts);
        assert_eq!(p.policy.allow, Allow::Patch);
        assert_eq!(p.phase, "prometheus");
        assert_eq!(s.components.len(), 1);
    }

    #[test]
    fn empty_file_is_the_whole_catalog() {
        let s = yaml("").unwrap();
        assert_eq!(s.components.len(), catalog::builtin().len());
        assert_eq!(Stack::builtin().components.len(), catalog::builtin().len());
    }

    #[test]
    fn unknown_key_gives_line_column_and_path() {
        let err = yaml("components:\n  prometheus:\n    alow: minor\n").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Syntax { line: 3, .. }), "{msg}");
        assert!(msg.starts_with("stack.yaml:3:"), "{msg}");
        assert!(msg.contains("components.prometheus"), "{msg}");
        assert!(msg.contains("alow"), "{msg}");
    }

    #[test]
    fn yaml_syntax_error_has_position() {
        let err = yaml("components:\n  prometheus: [\n").unwrap_err();
        assert!(
            matches!(err, Error::Syntax { line, .. } if line >= 2),
            "{err}"
        );
    }

    #[test]
    fn toml_errors_have_position_and_path() {
        let err = Stack::from_text(
            "[components.prometheus]\ntrack = \"newest\"\n",
            Format::Toml,
            "stack.toml",
            None,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("stack.toml:2:"), "{msg}");
        assert!(msg.contains("components.prometheus.track"), "{msg}");
        assert!(msg.contains("`newest`"), "{msg}");
        let err = Stack::from_text("[components\n", Format::Toml, "stack.toml", None).unwrap_err();
        assert!(matches!(err, Error::Syntax { line: 1, .. }), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            (
                "defaults:\n  min_release_age: 3y\n",
                "defaults.min_release_age",
            ),
            (
                "components:\n  prometheus:\n    track: \">>2\"\n",
                "components.prometheus.track",
            ),
            (
                "components:\n  prometheus:\n    deny: [\"nope\"]\n",
                "components.prometheus.deny",
            ),
            (
                "components:\n  prometheus:\n    allow: huge\n",
                "components.prometheus.allow",
            ),
        ] {
            let msg = yaml(text).unwrap_err().to_string();
            assert!(msg.contains(key), "{key}: {msg}");
        }
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let cases = [
            (
                "components:\n  prometheus:\n    depends_on: [alertmanagr]\n",
                "components.prometheus.depends_on[0]",
                "alertmanagr",
            ),
            (
                "components:\n  frobnicator: {}\n",
                "components.frobnicator",
                "not in the built-in catalog",
            ),
            (
                "components:\n  prometheus:\n    phase: nowhere\n",
                "components.prometheus.phase",
                "nowhere",
            ),
            (
                "environment: prod\ncomponents:\n  prometheus: {}\n",
                "environment",
                "prod",
            ),
            (
                "environments:\n  staging:\n    components:\n      loky: {allow: major}\n\
                    components:\n  loki: {}\n",
                "environments.staging.components.loky",
                "loky",
            ),
            (
                "components:\n  node_exporter:\n    depends_on: [prometheus]\n  prometheus: {}\n",
                "components.node_exporter.depends_on[0]",
                "after",
            ),
            (
                "components:\n  loki: {}\nrules:\n  requires:\n    - {component: loki, versions: \
                    '>=3', needs: lokii, needs_versions: '>=1'}\n",
                "rules.requires[0].needs",
                "lokii",
            ),
        ];
        for (text, key, word) in cases {
            let err = yaml(text).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, Error::Invalid { .. }), "{msg}");
            assert!(msg.contains(key), "{key}: {msg}");
            assert!(msg.contains(word), "{word}: {msg}");
        }
    }

    #[test]
    fn cycle_is_named() {
        let text = "components:\n  loki:\n    depends_on: [promtail]\n  promtail:\n    \
            depends_on: [alloy]\n  alloy:\n    depends_on: [loki]\n";
        let msg = yaml(text).unwrap_err().to_string();
        assert!(
            msg.contains("dependency cycle: alloy → loki → promtail → alloy"),
            "{msg}"
        );
    }

    #[test]
    fn environments_override_in_order() {
        let text = "
defaults: {allow: patch, min_release_age: 3d}
environment: production
environments:
  production: {}
  staging:
    defaults: {allow: major, min_release_age: '0'}
    components:
      prometheus: {track: latest}
components:
  prometheus: {track: lts, allow: minor}
  node_exporter: {}
";
        let prod = yaml(text).unwrap();
        assert_eq!(prod.environment.as_deref(), Some("production"));
        assert_eq!(prod.components["prometheus"].policy.track, Track::Lts);
        assert_eq!(prod.components["prometheus"].policy.allow, Allow::Minor);
        assert_eq!(prod.components["node_exporter"].policy.allow, Allow::Patch);
        assert_eq!(
            prod.components["node_exporter"]
                .policy
                .min_release_age
                .0
                .as_secs(),
            3 * 86_400
        );
        let staging = Stack::from_text(text, Format::Yaml, "s.yaml", Some("staging")).unwrap();
        assert_eq!(staging.components["prometheus"].policy.track, Track::Latest);
        // The component's own `allow` beats the environment's defaults.
        assert_eq!(staging.components["prometheus"].policy.allow, Allow::Minor);
        assert_eq!(
            staging.components["node_exporter"].policy.allow,
            Allow::Major
        );
        assert_eq!(
            staging.components["node_exporter"]
                .policy
                .min_release_age
                .0
                .as_secs(),
            0
        );
    }

    #[test]
    fn custom_component_described_completely() {
        let text = "
components:
  blackbox_exporter:
    repo: prometheus/blackbox_exporter
    asset: '{artifact}-{version}.{os}-{arch}.tar.gz'
    archive: tar.gz
    top_dir: '{artifact}-{version}.{os}-{arch}'
    binaries:
      - name: blackbox_exporter
        path: '{artifact}-{version}.{os}-{arch}/blackbox_exporter'
    checksums: sha256sums.txt
    port: 9115
";
        let s = yaml(text).unwrap();
        let b = &s.components["blackbox_exporter"];
        assert_eq!(b.spec.artifact, "blackbox_exporter");
        assert_eq!(b.spec.unit, "blackbox_exporter.service");
        assert_eq!(b.phase, "exporters");
    }
}
