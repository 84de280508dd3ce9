//! Notifications: webhooks (the documented JSON, or a Slack-compatible
//! `{"text": …}`), a command hook (the event as environment variables and
//! as JSON on stdin), and mail through a sendmail-compatible command. A
//! report level filters events first. Failures are returned to the engine,
//! which logs them and records them in history; they never fail a run.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use upgrade_core::config::{Notifications, ReportLevel, WebhookFormat};
use upgrade_core::ports::{Event, Notifier, PortError};

/// The webhook body (`format: json`), documented in docs/notifications.md.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// Always `obs-upgrade`.
    pub source: &'static str,
    /// The host it ran on.
    pub host: &'a str,
    /// When the event was sent.
    pub at: jiff::Timestamp,
    /// One line for people.
    pub summary: String,
    /// The event itself.
    pub event: &'a Event,
}

/// One line for people: the host, then the event in words.
pub fn summary(host: &str, e: &Event) -> String {
    format!("{host}: {e}")
}

/// The event's fields as `OBS_UPGRADE_*` environment variables.
pub fn env_vars(host: &str, e: &Event) -> Vec<(String, String)> {
    let v = serde_json::to_value(e).unwrap_or_default();
    let mut out = vec![
        ("OBS_UPGRADE_HOST".to_owned(), host.to_owned()),
        ("OBS_UPGRADE_SUMMARY".to_owned(), summary(host, e)),
    ];
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => other.to_string(),
            };
            out.push((format!("OBS_UPGRADE_{}", k.to_ascii_uppercase()), text));
        }
    }
    out
}

/// Whether a level lets an event through.
pub fn passes(level: ReportLevel, e: &Event) -> bool {
    match level {
        ReportLevel::Always => true,
        ReportLevel::OnChange => e.is_change() || matches!(e, Event::UpdatesAvailable { .. }),
        ReportLevel::OnError => e.is_error(),
    }
}

/// Every configured target, filtered by the report level.
#[derive(Debug, Clone)]
pub struct Notifiers {
    config: Notifications,
    host: String,
    timeout: Duration,
}

impl Notifiers {
    /// From the stack file's `notifications` section.
    pub fn new(config: Notifications, host: &str) -> Self {
        Notifiers {
            config,
            host: host.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Whether anything is configured.
    pub fn is_empty(&self) -> bool {
        self.config.webhooks.is_empty()
            && self.config.commands.is_empty()
            && self.config.email.is_none()
    }

    fn webhook(&self, url: &str, format: WebhookFormat, e: &Event) -> Result<(), String> {
        // Webhook URLs carry their secret in the path or query (Slack, chat
        // bridges): errors, logs and history show the host only.
        let shown = host_only(url);
        let body = match format {
            WebhookFormat::Json => serde_json::to_vec(&Envelope {
                source: "obs-upgrade",
                host: &self.host,
                at: jiff::Timestamp::now(),
                summary: summary(&self.host, e),
                event: e,
            }),
            WebhookFormat::Slack => {
                serde_json::to_vec(&serde_json::json!({ "text": summary(&self.host, e) }))
            }
        }
        .map_err(|e| e.to_string())?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(self.timeout))
            .build()
            .into();
        let resp = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("obs-upgrade/", env!("CARGO_PKG_VERSION")),
            )
            .send(&body[..])
            .map_err(|e| {
                let e = e.to_string().replace(url, &shown);
                format!("webhook {shown}: {}", upgrade_core::names::shorten(&e, 300))
            })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("webhook {shown} answered HTTP {status}"))
        }
    }

    fn run(&self, argv: &[String], env: &[(String, String)], stdin: &[u8]) -> Result<(), String> {
        let (prog, rest) = argv.split_first().ok_or("an empty command")?;
        let mut child = Command::new(prog)
            .args(rest)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {prog}: {e}"))?;
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                if status.success() {
                    return Ok(());
                }
                let mut err = Vec::new();
                if let Some(e) = child.stderr.take() {
                    // A hook's answer is read with a bound, whatever it prints.
                    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(e, 4096), &mut err);
                }
                return Err(format!(
                    "{} exited {}: {}",
                    prog,
                    status.code().unwrap_or(-1),
                    upgrade_core::names::shorten(String::from_utf8_lossy(&err).trim(), 500)
                ));
            }
            if start.elapsed() > self.timeout * 3 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not finish within {} s",
                    prog,
                    (self.timeout * 3).as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `scheme://host/…` of a URL: what may be shown of a webhook.
fn host_only(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a webhook URL)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}/…")
}

impl Notifier for Notifiers {
    fn notify(&self, e: &Event) -> Result<(), PortError> {
        if !passes(self.config.level, e) {
            return Ok(());
        }
        let mut failures = Vec::new();
        for w in &self.config.webhooks {
            if let Err(err) = self.webhook(&w.url, w.format, e) {
                failures.push(err);
            }
        }
        let json = serde_json::to_vec(e)?;
        let env = env_vars(&self.host, e);
        for c in &self.config.commands {
            if let Err(err) = self.run(c, &env, &json) {
                failures.push(format!("command hook: {err}"));
            }
        }
        if let Some(mail) = &self.config.email {
            let subject = summary(&self.host, e);
            let message = format!(
                "To: {}\nFrom: {}\nSubject: [obs-upgrade] {}\nContent-Type: text/plain; \
                    charset=utf-8\n\n{}\n\n{}\n",
                mail.to.join(", "),
                mail.from,
                subject.chars().take(150).collect::<String>(),
                subject,
                serde_json::to_string_pretty(e)?
            );
            let argv = vec![mail.sendmail.clone(), "-t".into(), "-i".into()];
            if let Err(err) = self.run(&argv, &env, message.as_bytes()) {
                failures.push(format!("mail: {err}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; ").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_only;

    #[test]
    fn secret_bearing_urls_are_shown_by_host() {
        assert_eq!(
            host_only("https://hooks.example/services/T0/B0/secret?token=x"),
            "https://hooks.example/…"
        );
        assert_eq!(
            host_only("https://user:pw@hooks.example:8443/x"),
            "https://hooks.example:8443/…"
        );
        assert_eq!(host_only("not a url"), "(a webhook URL)");
    }
}
