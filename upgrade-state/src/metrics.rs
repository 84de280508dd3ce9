//! Self-metrics for `node_exporter`'s textfile collector, written atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;
use upgrade_core::journal::{HistoryRecord, Outcome, RunStatus};

use crate::fsutil::{self, IoError};

/// What the caller knows about each component now.
#[derive(Debug, Clone, Default)]
pub struct ComponentNow {
    /// The component.
    pub name: String,
    /// Its installed version, if installed.
    pub installed: Option<String>,
    /// Releases newer than the installed one.
    pub versions_behind: u64,
    /// Whether the plan has a step for it.
    pub update_pending: bool,
    /// Publish time of the oldest release newer than the installed one.
    pub outdated_since: Option<Timestamp>,
}

/// Everything the metrics file says.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Per component.
    pub components: Vec<ComponentNow>,
    /// When releases were last listed without error.
    pub last_check: Option<Timestamp>,
    /// Whether the apply timer is installed.
    pub unattended: bool,
    /// Held components and the version each is held at.
    pub held: Vec<(String, String)>,
    /// Releases that failed here (component, version), never planned again.
    pub failed_here: Vec<(String, String)>,
    /// When the last run started, if it is unfinished.
    pub unfinished_since: Option<Timestamp>,
    /// Whether that unfinished run is interrupted (nobody holds the lock).
    pub interrupted: bool,
    /// Security advisories affecting an installed version.
    pub advisories: Vec<AdvisoryNow>,
}

/// A security advisory that affects an installed version.
#[derive(Debug, Clone, Default)]
pub struct AdvisoryNow {
    /// The component.
    pub component: String,
    /// The advisory id (`GHSA-…`).
    pub advisory: String,
    /// Its severity (`low` … `critical`, `unknown`).
    pub severity: String,
    /// The lowest release that fixes it, when one exists.
    pub fixed_in: Option<String>,
}

const STATUSES: [RunStatus; 3] = [
    RunStatus::Completed,
    RunStatus::RolledBack,
    RunStatus::Failed,
];

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[allow(clippy::cast_precision_loss)] // milliseconds since 1970 fit an f64 exactly
fn secs(t: Timestamp) -> String {
    format!("{:.3}", t.as_millisecond() as f64 / 1000.0)
}

/// Renders the exposition text from `now` and the history records.
#[allow(clippy::cast_precision_loss)] // timestamps in seconds fit an f64
pub fn render(now: &Input, history: &[HistoryRecord]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let label = |c: &str| format!("{{component=\"{}\"}}", escape(c));
    family(
        "obs_upgrade_component_info",
        "gauge",
        "The installed version of each component (1 per component and version).",
        now.components
            .iter()
            .filter_map(|c| {
                c.installed.as_ref().map(|v| {
                    (
                        format!(
                            "{{component=\"{}\",version=\"{}\"}}",
                            escape(&c.name),
                            escape(v)
                        ),
                        "1".to_owned(),
                    )
                })
            })
            .collect(),
    );
    family(
        "obs_upgrade_component_versions_behind",
        "gauge",
        "Releases newer than the installed version.",
        now.components
            .iter()
            .filter(|c| c.installed.is_some())
            .map(|c| (label(&c.name), c.versions_behind.to_string()))
            .collect(),
    );
    family(
        "obs_upgrade_component_update_pending",
        "gauge",
        "1 when the plan has an upgrade for the component.",
        now.components
            .iter()
            .filter(|c| c.installed.is_some())
            .map(|c| (label(&c.name), u8::from(c.update_pending).to_string()))
            .collect(),
    );
    family(
        "obs_upgrade_component_outdated_since_timestamp_seconds",
        "gauge",
        "Publish time of the oldest release newer than the installed version.",
        now.components
            .iter()
            .filter_map(|c| c.outdated_since.map(|t| (label(&c.name), secs(t))))
            .collect(),
    );
    family(
        "obs_upgrade_advisory_affected",
        "gauge",
        "1 per security advisory affecting an installed component version.",
        now.advisories
            .iter()
            .map(|a| {
                (
                    format!(
                        concat!(
                            "{{component=\"{}\",advisory=\"{}\",",
                            "advisory_severity=\"{}\",fixed_in=\"{}\"}}"
                        ),
                        escape(&a.component),
                        escape(&a.advisory),
                        escape(&a.severity),
                        escape(a.fixed_in.as_deref().unwrap_or(""))
                    ),
                    "1".to_owned(),
                )
            })
            .collect(),
    );
    family(
        "obs_upgrade_updates_pending",
        "gauge",
        "Components with an upgrade planned.",
        vec![(
            String::new(),
            now.components
                .iter()
                .filter(|c| c.update_pending)
                .count()
                .to_string(),
        )],
    );

    let runs: Vec<(&Timestamp, &Timestamp, RunStatus)> = history
        .iter()
        .filter_map(|r| match r {
            HistoryRecord::Run {
                started_at,
                finished_at,
                status,
                ..
            } => Some((started_at, finished_at, *status)),
            _ => None,
        })
        .collect();
    if let Some((start, end, status)) = runs.last() {
        family(
            "obs_upgrade_last_run_timestamp_seconds",
            "gauge",
            "When the last run finished.",
            vec![(String::new(), secs(**end))],
        );
        family(
            "obs_upgrade_last_run_duration_seconds",
            "gauge",
            "How long the last run took.",
            vec![(
                String::new(),
                format!(
                    "{:.3}",
                    (**end - **start).total(jiff::Unit::Second).unwrap_or(0.0)
                ),
            )],
        );
        family(
            "obs_upgrade_last_run_status",
            "gauge",
            "The final status of the last run (1 for the status it ended in).",
            STATUSES
                .iter()
                .map(|s| {
                    (
                        format!("{{status=\"{}\"}}", s.name()),
                        u8::from(s == status).to_string(),
                    )
                })
                .collect(),
        );
    }
    if let Some((_, end, _)) = runs
        .iter()
        .rev()
        .find(|(_, _, s)| *s == RunStatus::Completed)
    {
        family(
            "obs_upgrade_last_success_timestamp_seconds",
            "gauge",
            "When the last run that completed finished.",
            vec![(String::new(), secs(**end))],
        );
    }
    let mut rollbacks: BTreeMap<&str, u64> = now
        .components
        .iter()
        .map(|c| (c.name.as_str(), 0))
        .collect();
    for r in history {
        if let HistoryRecord::Component {
            component,
            outcome: Outcome::RolledBack,
            ..
        } = r
        {
            *rollbacks.entry(component.as_str()).or_default() += 1;
        }
    }
    family(
        "obs_upgrade_rollbacks_total",
        "counter",
        "Automatic and atomic-phase rollbacks, per component, in the history kept.",
        rollbacks
            .iter()
            .map(|(c, n)| (label(c), n.to_string()))
            .collect(),
    );
    if let Some(t) = now.last_check {
        family(
            "obs_upgrade_last_check_timestamp_seconds",
            "gauge",
            "When releases were last listed without an error.",
            vec![(String::new(), secs(t))],
        );
    }
    let pair =
        |c: &str, v: &str| format!("{{component=\"{}\",version=\"{}\"}}", escape(c), escape(v));
    family(
        "obs_upgrade_component_held",
        "gauge",
        "1 for each component held at a version (a manual rollback, or by hand).",
        now.held
            .iter()
            .map(|(c, v)| (pair(c, v), "1".to_owned()))
            .collect(),
    );
    family(
        "obs_upgrade_release_quarantined",
        "gauge",
        "1 for each release that failed verification here and is never planned again.",
        now.failed_here
            .iter()
            .map(|(c, v)| (pair(c, v), "1".to_owned()))
            .collect(),
    );
    if let Some(t) = now.unfinished_since {
        family(
            "obs_upgrade_run_unfinished_since_timestamp_seconds",
            "gauge",
            "When the run that is still under way (or was interrupted) started.",
            vec![(String::new(), secs(t))],
        );
    }
    family(
        "obs_upgrade_run_interrupted",
        "gauge",
        "1 when the last run was interrupted and nobody is finishing it.",
        vec![(String::new(), u8::from(now.interrupted).to_string())],
    );
    family(
        "obs_upgrade_unattended_enabled",
        "gauge",
        "1 when the apply timer is installed.",
        vec![(String::new(), u8::from(now.unattended).to_string())],
    );
    out
}

/// Writes the file atomically (temp file in the same directory, rename), mode 0644.
pub fn write(path: &Path, text: &str) -> Result<(), IoError> {
    if let Some(dir) = path.parent() {
        // node_exporter, running as its own user, reads it.
        fsutil::create_dir_all_mode(dir, 0o755)?;
    }
    fsutil::atomic_write_mode(path, text.as_bytes(), None, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_help_and_type() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let input = Input {
            components: vec![ComponentNow {
                name: "node_exporter".into(),
                installed: Some("1.9.1".into()),
                versions_behind: 2,
                update_pending: true,
                outdated_since: Some(t),
            }],
            last_check: Some(t),
            unattended: true,
            held: vec![("node_exporter".into(), "1.9.1".into())],
            failed_here: vec![("node_exporter".into(), "1.10.0".into())],
            unfinished_since: Some(t),
            interrupted: true,
            advisories: vec![AdvisoryNow {
                component: "node_exporter".into(),
                advisory: "GHSA-aaaa-bbbb-cccc".into(),
                severity: "high".into(),
                fixed_in: Some("1.9.2".into()),
            }],
        };
        let history = vec![HistoryRecord::Run {
            run_id: "r".into(),
            started_at: t,
            finished_at: t + jiff::SignedDuration::from_secs(30),
            status: RunStatus::Completed,
            mode: "standard".into(),
            environment: None,
            host: "h".into(),
            user: "u".into(),
            command: vec![],
            summary: String::new(),
        }];
        let text = render(&input, &history);
        assert!(text.contains(
            "obs_upgrade_component_held{component=\"node_exporter\",version=\"1.9.1\"} 1"
        ));
        assert!(text.contains("obs_upgrade_run_interrupted 1"));
        assert!(text.contains("obs_upgrade_run_unfinished_since_timestamp_seconds 1800000000"));
        assert!(text.contains(
            "obs_upgrade_release_quarantined{component=\"node_exporter\",version=\"1.10.0\"} 1"
        ));
        assert!(
            text.contains(
                "obs_upgrade_component_info{component=\"node_exporter\",version=\"1.9.1\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("obs_upgrade_last_run_status{status=\"COMPLETED\"} 1\n"));
        assert!(text.contains("obs_upgrade_last_run_duration_seconds 30.000\n"));
        assert!(text.contains("obs_upgrade_rollbacks_total{component=\"node_exporter\"} 0\n"));
        assert!(text.contains("# TYPE obs_upgrade_rollbacks_total counter\n"));
        assert!(text.contains(concat!(
            "obs_upgrade_advisory_affected{component=\"node_exporter\",",
            "advisory=\"GHSA-aaaa-bbbb-cccc\",advisory_severity=\"high\",fixed_in=\"1.9.2\"} 1\n"
        )));
    }
}
