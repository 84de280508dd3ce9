//! The stack file's schema, as written: every key and its default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{ComponentSpec, component_facts};
use crate::policy::{Age, Allow, PolicyOverride, Track, VersionMatcher};
use crate::risk::Risk;
use crate::rules::Rules;
use crate::window::Schedule;

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

macro_rules! declare_component_config {
    ($(
        $(#[doc = $doc:literal])*
        $(#[serde($($serde:tt)*)])?
        $field:ident : $ty:ty = $default:expr,
    )*) => {
        /// One component as written in the stack file: policy, placement, and
        /// an override of any catalog fact (one optional field per fact of
        /// [`ComponentSpec`], declared from the same list).
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
            /// Whether a release fixing an advisory that affects the
            /// installed version skips `min_release_age`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub advisories_bypass_age: Option<bool>,
            /// Components upgraded before this one in the same or an earlier phase.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub depends_on: Vec<String>,
            $(
                #[doc = "Catalog override."]
                #[doc = ""]
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            /// SHA-256 digests pinned per version (strongest proof).
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub sha256: BTreeMap<String, String>,
            /// The highest risk applied unattended for this component.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub auto_approve: Option<Risk>,
        }

        impl ComponentConfig {
            /// Sets every catalog fact this component overrides.
            pub fn apply_overrides(&self, spec: &mut ComponentSpec) {
                $(
                    if let Some(v) = &self.$field {
                        spec.$field = v.clone();
                    }
                )*
            }
        }
    };
}

component_facts!(declare_component_config);

/// When unattended runs may switch, and what they may apply by themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "MaintenanceFile")]
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

/// `maintenance` as written: its keys read in place (not through
/// `flatten`, which buffers them and loses the key path and line of an
/// error inside, like a bad `windows[0].time_zone`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceFile {
    #[serde(default)]
    windows: Vec<crate::window::Window>,
    #[serde(default)]
    blackout: std::collections::BTreeSet<jiff::civil::Date>,
    #[serde(default = "low")]
    auto_approve: Risk,
}

impl From<MaintenanceFile> for Maintenance {
    fn from(m: MaintenanceFile) -> Self {
        Maintenance {
            schedule: Schedule {
                windows: m.windows,
                blackout: m.blackout,
            },
            auto_approve: m.auto_approve,
        }
    }
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

/// What each successful run keeps (the rest is pruned by itself): never
/// the current version, the last known-good one, a held one, or what an
/// unfinished run may roll back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Versions kept per component besides those (default 3).
    #[serde(default = "three")]
    pub versions: usize,
    /// Days a run's configuration backups are kept (default 30).
    #[serde(default = "thirty")]
    pub backup_days: u64,
}

fn three() -> usize {
    3
}

fn thirty() -> u64 {
    30
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            versions: three(),
            backup_days: thirty(),
        }
    }
}

/// How long external actions may take, so that no hang holds the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// Seconds one `systemctl` call may take (default 150).
    #[serde(default = "systemctl_secs")]
    pub systemctl_secs: u64,
    /// A download slower than this many bytes per second over a whole
    /// window is given up (default 1024).
    #[serde(default = "min_download_speed")]
    pub min_download_speed: u64,
    /// The window of `min_download_speed`, in seconds (default 60).
    #[serde(default = "download_speed_window_secs")]
    pub download_speed_window_secs: u64,
    /// Seconds a `--version` run may take (default 10).
    #[serde(default = "version_secs")]
    pub version_secs: u64,
    /// Seconds a configuration check may take (default 120).
    #[serde(default = "config_check_secs")]
    pub config_check_secs: u64,
}

fn version_secs() -> u64 {
    10
}

fn config_check_secs() -> u64 {
    120
}

fn systemctl_secs() -> u64 {
    150
}

fn min_download_speed() -> u64 {
    1024
}

fn download_speed_window_secs() -> u64 {
    60
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            systemctl_secs: systemctl_secs(),
            min_download_speed: min_download_speed(),
            download_speed_window_secs: download_speed_window_secs(),
            version_secs: version_secs(),
            config_check_secs: config_check_secs(),
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
    /// What is kept after each successful run.
    #[serde(default)]
    pub retention: Retention,
    /// How long external actions may take.
    #[serde(default)]
    pub deadlines: Deadlines,
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
            retention: Retention::default(),
            deadlines: Deadlines::default(),
        }
    }
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
            advisories_bypass_age: self.advisories_bypass_age,
        }
    }
}
