//! Composable health probes, each with a timeout, an interval and retries,
//! all under one deadline; each result keeps its detail for the journal.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Serialize;
use upgrade_core::journal::HealthRecord;
use upgrade_core::ports::ServiceControl;

use crate::exposition;

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// The unit is active and running, and the manager did not restart it
    /// since `n_restarts` was read.
    UnitActive {
        /// The unit.
        unit: String,
        /// `NRestarts` at the start.
        n_restarts: u32,
    },
    /// A TCP connection succeeds.
    Tcp {
        /// `host:port`.
        addr: String,
    },
    /// An HTTP GET answers a 2xx (and contains `body` when given).
    Http {
        /// The URL.
        url: String,
        /// Text the body must contain.
        body: Option<String>,
    },
    /// The exposition at `url` has every metric in `names`.
    Metrics {
        /// The URL.
        url: String,
        /// Metric names.
        names: Vec<String>,
    },
    /// `metric{<label>="…"}` at `url` equals `version`.
    BuildInfo {
        /// The URL.
        url: String,
        /// The metric (`node_exporter_build_info`).
        metric: String,
        /// Older names of the metric, tried when it is missing.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        aliases: Vec<String>,
        /// The label holding the version (`version`).
        label: String,
        /// The expected version (build metadata ignored).
        version: String,
        /// An absent metric passes (a wrong version never does).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
    },
    /// The unit's main process runs `expected` (same file), not another
    /// release from `store`. A process running something else (a wrapper
    /// shell, a binary outside the store) cannot be judged and passes with
    /// that said.
    RunningBinary {
        /// The unit.
        unit: String,
        /// The release's binary.
        expected: std::path::PathBuf,
        /// The component's store directory.
        store: std::path::PathBuf,
    },
    /// A command exits 0.
    Command {
        /// The command line.
        argv: Vec<String>,
    },
    /// A Prometheus scrapes the component: every matching active target is
    /// `up` and was scraped after `since_ms` (the restart).
    PrometheusTarget {
        /// Its base URL.
        api: String,
        /// The targets' `job` label.
        job: Option<String>,
        /// The targets' `instance` label.
        instance: Option<String>,
        /// Without `job` and `instance`: targets whose scrape URL has this
        /// `host:port` (the component's address).
        address: String,
        /// Unix milliseconds: a scrape from before does not count.
        since_ms: i64,
    },
    /// No line of the unit's journal since `since_ms` matches a pattern.
    Journal {
        /// The unit.
        unit: String,
        /// Regular expressions.
        patterns: Vec<String>,
        /// Unix milliseconds: lines from before are not read.
        since_ms: i64,
    },
}

/// A check with its timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// What to check.
    pub check: Check,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Pause between attempts.
    pub interval: Duration,
    /// Attempts at most (the deadline may end them sooner).
    pub retries: u32,
    /// Whether a failure makes the report unhealthy (an advisory probe is
    /// tried once and reported, never decisive).
    pub decides: bool,
    /// How HTTP checks connect: trusted CA, client certificate, credentials.
    pub access: Access,
}

/// How an HTTP check connects to a service behind TLS or authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Access {
    /// PEM CA certificates trusted instead of the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// A client certificate and its key (PEM).
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Credentials, read from their files at each attempt.
    pub auth: Option<upgrade_core::endpoint::Auth>,
}

impl Access {
    /// An HTTP client trusting `ca_file` and presenting `client_cert`; each
    /// request sets its own timeout. Built once per probe, not per attempt.
    fn agent(&self) -> Result<ureq::Agent, String> {
        use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
        // No pooled connections: an attempt after a restart must not reuse
        // one to the process that was replaced.
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0);
        if self.ca_file.is_none() && self.client_cert.is_none() {
            return Ok(config.build().into());
        }
        let read = |p: &std::path::Path| {
            upgrade_state::fsutil::read_capped(p, 4 << 20)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let certs_of = |p: &std::path::Path| -> Result<Vec<Certificate<'static>>, String> {
            let bytes = read(p)?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&bytes)
                .filter_map(|i| match i {
                    Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!("{} holds no PEM certificate", p.display()));
            }
            Ok(certs)
        };
        let mut tls = TlsConfig::builder();
        if let Some(ca) = &self.ca_file {
            // Only this CA: a probe of one service trusts what signs it.
            let roots = certs_of(ca)?;
            tls = tls.root_certs(RootCerts::Specific(std::sync::Arc::new(roots)));
        }
        if let Some((cert, key)) = &self.client_cert {
            let certs = certs_of(cert)?;
            let key_bytes = read(key)?;
            let key: PrivateKey<'static> = ureq::tls::parse_pem(&key_bytes)
                .find_map(|i| match i {
                    Ok(PemItem::PrivateKey(k)) => Some(k.to_owned()),
                    _ => None,
                })
                .ok_or_else(|| format!("{} holds no PEM private key", key.display()))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&certs, key)));
        }
        config = config.tls_config(tls.build());
        Ok(config.build().into())
    }

    fn authorization(&self) -> Result<Option<String>, String> {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        use upgrade_core::endpoint::Auth;
        let secret = |p: &str| {
            let bytes = upgrade_state::fsutil::read_capped(std::path::Path::new(p), 64 << 10)
                .map_err(|e| format!("cannot read {p}: {e}"))?;
            Ok::<String, String>(
                String::from_utf8_lossy(&bytes)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            )
        };
        Ok(match &self.auth {
            None => None,
            Some(Auth::Basic(b)) => {
                let pass = secret(&b.password_file)?;
                let pair = format!("{}:{pass}", b.username);
                Some(format!("Basic {}", STANDARD.encode(pair)))
            }
            Some(Auth::BearerFile(f)) => Some(format!("Bearer {}", secret(f)?)),
        })
    }
}

impl Probe {
    /// A probe with defaults: 2 s timeout, 250 ms interval, unlimited retries until the deadline.
    pub fn new(check: Check) -> Self {
        Probe {
            check,
            timeout: Duration::from_secs(2),
            interval: Duration::from_millis(250),
            retries: u32::MAX,
            decides: true,
            access: Access::default(),
        }
    }

    /// The same probe connecting with `access`.
    #[must_use]
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// An advisory probe: one attempt, reported, never decisive.
    pub fn advisory(check: Check) -> Self {
        Probe {
            retries: 1,
            decides: false,
            ..Probe::new(check)
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> String {
        let name = match &self.check {
            Check::UnitActive { unit, .. } => format!("unit {unit} active"),
            Check::Tcp { addr } => format!("tcp {addr}"),
            Check::Http { url, .. } => format!("http {url}"),
            Check::Metrics { url, .. } => format!("metrics {url}"),
            Check::BuildInfo {
                metric, version, ..
            } => format!("{metric} version {version}"),
            Check::RunningBinary { unit, .. } => format!("{unit} runs the release's binary"),
            Check::Command { argv } => format!("command {}", argv.join(" ")),
            Check::PrometheusTarget {
                api, job, instance, ..
            } => {
                let mut what = Vec::new();
                what.extend(job.as_ref().map(|j| format!("job={j}")));
                what.extend(instance.as_ref().map(|i| format!("instance={i}")));
                if what.is_empty() {
                    format!("prometheus {api} scrapes it")
                } else {
                    format!("prometheus {api} target {} up", what.join(","))
                }
            }
            Check::Journal { unit, .. } => format!("journal of {unit} has no error lines"),
        };
        if self.decides {
            name
        } else {
            format!("{name} (advisory)")
        }
    }
}

/// One probe's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    /// The probe's name.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Whether its failure counts.
    pub decides: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's detail.
    pub detail: String,
    /// Time spent.
    pub elapsed_ms: u64,
}

/// All probes' outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every probe passed.
    pub healthy: bool,
    /// Per probe.
    pub results: Vec<ProbeResult>,
}

impl Report {
    /// As kept in the journal.
    pub fn to_record(&self) -> HealthRecord {
        HealthRecord {
            healthy: self.healthy,
            detail: self
                .results
                .iter()
                .map(|r| {
                    format!(
                        "{}: {} ({} attempts): {}",
                        r.name,
                        match (r.ok, r.decides) {
                            (true, _) => "ok",
                            (false, true) => "FAILED",
                            (false, false) => "failed, not deciding",
                        },
                        r.attempts,
                        r.detail
                    )
                })
                .collect(),
        }
    }
}

/// The client of a probe, or why it could not be built (an unreadable CA).
type Client = Result<ureq::Agent, String>;

fn http_get(
    client: &Client,
    url: &str,
    timeout: Duration,
    access: &Access,
) -> Result<(u16, String), String> {
    let mut req = client
        .as_ref()
        .map_err(Clone::clone)?
        .get(url)
        .config()
        .timeout_global(Some(timeout))
        .build();
    if let Some(h) = access.authorization()? {
        req = req.header("Authorization", &h);
    }
    let resp = req.call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// One attempt of one check.
pub fn attempt(
    check: &Check,
    timeout: Duration,
    control: Option<&dyn ServiceControl>,
) -> Result<String, String> {
    attempt_with(check, timeout, control, &Access::default())
}

/// [`attempt`] connecting with `access`.
pub fn attempt_with(
    check: &Check,
    timeout: Duration,
    control: Option<&dyn ServiceControl>,
    access: &Access,
) -> Result<String, String> {
    attempt_on(check, timeout, control, access, &access.agent())
}

fn attempt_on(
    check: &Check,
    timeout: Duration,
    control: Option<&dyn ServiceControl>,
    access: &Access,
    client: &Client,
) -> Result<String, String> {
    match check {
        Check::UnitActive { unit, n_restarts } => {
            let c = control.ok_or("no service manager to ask")?;
            let s = c.status(unit).map_err(|e| e.to_string())?;
            if !s.is_running() {
                return Err(format!("{} ({})", s.active_state, s.sub_state));
            }
            if s.n_restarts > *n_restarts {
                return Err(format!(
                    "restarted by the manager {} time(s) since the switch",
                    s.n_restarts - n_restarts
                ));
            }
            Ok(format!("active, pid {}", s.main_pid.unwrap_or(0)))
        }
        Check::Tcp { addr } => {
            let addrs: Vec<SocketAddr> =
                addr.to_socket_addrs().map_err(|e| e.to_string())?.collect();
            let a = addrs.first().ok_or("no address")?;
            TcpStream::connect_timeout(a, timeout)
                .map(|_| "connected".to_owned())
                .map_err(|e| e.to_string())
        }
        Check::Http { url, body } => {
            let (status, text) = http_get(client, url, timeout, access)?;
            if !(200..300).contains(&status) {
                return Err(format!(
                    "HTTP {status}: {}",
                    text.trim().chars().take(120).collect::<String>()
                ));
            }
            if let Some(want) = body.as_ref().filter(|w| !text.contains(w.as_str())) {
                return Err(format!("HTTP {status} but the body lacks `{want}`"));
            }
            Ok(format!("HTTP {status}"))
        }
        Check::Metrics { url, names } => {
            let (status, text) = http_get(client, url, timeout, access)?;
            if status != 200 {
                return Err(format!("HTTP {status}"));
            }
            let samples = exposition::parse(&text);
            let missing: Vec<&String> = names
                .iter()
                .filter(|n| !samples.iter().any(|s| &s.name == *n))
                .collect();
            if missing.is_empty() {
                Ok(format!("{} samples", samples.len()))
            } else {
                Err(format!("missing metrics: {missing:?}"))
            }
        }
        Check::BuildInfo {
            url,
            metric,
            aliases,
            label,
            version,
            optional,
        } => {
            let (status, text) = http_get(client, url, timeout, access)?;
            if status != 200 {
                return Err(format!("HTTP {status}"));
            }
            let want = upgrade_core::version::Version::parse(version).map_err(|e| e.to_string())?;
            let samples = exposition::parse(&text);
            let found = std::iter::once(metric)
                .chain(aliases)
                .find_map(|m| samples.iter().find(|s| &s.name == m));
            let found = match found {
                Some(f) => f,
                None if *optional => return Ok(format!("no {metric} now (optional)")),
                None => return Err(format!("no {metric} in the metrics")),
            };
            let got = found
                .labels
                .get(label)
                .ok_or_else(|| format!("{} has no {label} label", found.name))?;
            // Distribution builds label `0.11.0-1+b4`: the Debian revision is dropped.
            match upgrade_core::version::parse_printed(got) {
                Some(v) if v.same_release(&want) => Ok(format!("running {got}")),
                _ => Err(format!("running {got}, expected {version}")),
            }
        }
        Check::RunningBinary {
            unit,
            expected,
            store,
        } => running_binary(unit, expected, store, control),
        Check::PrometheusTarget {
            api,
            job,
            instance,
            address,
            since_ms,
        } => {
            let url = format!("{}/api/v1/targets?state=active", api.trim_end_matches('/'));
            let (status, text) = http_get(client, &url, timeout, access)?;
            if status != 200 {
                return Err(format!(
                    "{url}: HTTP {status}: {}",
                    text.trim().chars().take(120).collect::<String>()
                ));
            }
            let want = TargetFilter {
                job: job.as_deref(),
                instance: instance.as_deref(),
                address,
            };
            prometheus_targets(&text, &want, *since_ms)
        }
        Check::Journal {
            unit,
            patterns,
            since_ms,
        } => journal_errors(unit, patterns, *since_ms, timeout),
        Check::Command { argv } => {
            let (prog, args) = argv.split_first().ok_or("empty command")?;
            let handle = duct::cmd(prog, args)
                .stdout_capture()
                .stderr_capture()
                .unchecked()
                .start()
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            loop {
                if let Some(out) = handle.try_wait().map_err(|e| e.to_string())? {
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    let text: String = text.trim().chars().take(300).collect();
                    return if out.status.success() {
                        Ok(text)
                    } else {
                        Err(format!("exit {}: {text}", out.status.code().unwrap_or(-1)))
                    };
                }
                if start.elapsed() > timeout {
                    let _ = handle.kill();
                    return Err(format!("timed out after {} ms", timeout.as_millis()));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Which targets a Prometheus check looks at.
struct TargetFilter<'a> {
    job: Option<&'a str>,
    instance: Option<&'a str>,
    address: &'a str,
}

/// Judges `/api/v1/targets` output: the matching targets, all up and
/// scraped since `since_ms`.
fn prometheus_targets(
    text: &str,
    want: &TargetFilter<'_>,
    since_ms: i64,
) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        data: Data,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        active_targets: Vec<Target>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Target {
        #[serde(default)]
        labels: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        scrape_url: String,
        #[serde(default)]
        health: String,
        #[serde(default)]
        last_error: String,
        #[serde(default)]
        last_scrape: String,
    }
    let answer: Answer =
        serde_json::from_str(text).map_err(|e| format!("not a Prometheus targets answer: {e}"))?;
    let by_address = want.job.is_none() && want.instance.is_none();
    let matching: Vec<&Target> = answer
        .data
        .active_targets
        .iter()
        .filter(|t| {
            if by_address {
                let host_port = t
                    .scrape_url
                    .split_once("://")
                    .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
                return host_port == want.address;
            }
            want.job
                .is_none_or(|j| t.labels.get("job").map(String::as_str) == Some(j))
                && want
                    .instance
                    .is_none_or(|i| t.labels.get("instance").map(String::as_str) == Some(i))
        })
        .collect();
    if matching.is_empty() {
        return Err(if by_address {
            format!("no active target scrapes {}", want.address)
        } else {
            "no active target has those labels".into()
        });
    }
    for t in &matching {
        let name = t.labels.get("instance").unwrap_or(&t.scrape_url);
        if t.health != "up" {
            return Err(format!(
                "target {name} is {}: {}",
                if t.health.is_empty() {
                    "unknown"
                } else {
                    &t.health
                },
                t.last_error
            ));
        }
        let scraped = t
            .last_scrape
            .parse::<jiff::Timestamp>()
            .map_err(|e| format!("target {name}: lastScrape `{}`: {e}", t.last_scrape))?;
        if scraped.as_millisecond() < since_ms {
            return Err(format!(
                "target {name} was last scraped at {scraped}, before the restart; \
                 waiting for a scrape"
            ));
        }
    }
    Ok(format!(
        "{} target(s) up, scraped since the restart",
        matching.len()
    ))
}

/// Runs `journalctl` for the unit's lines since `since_ms` and fails on
/// the first line matching a pattern.
fn journal_errors(
    unit: &str,
    patterns: &[String],
    since_ms: i64,
    timeout: Duration,
) -> Result<String, String> {
    let res: Vec<regex::Regex> = patterns
        .iter()
        .map(|p| {
            regex::RegexBuilder::new(p)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("pattern `{p}`: {e}"))
        })
        .collect::<Result<_, _>>()?;
    // journalctl's --since is coarse: ask from a second earlier and drop,
    // by each entry's own microsecond timestamp, what came before the
    // process started (the old process's last lines).
    let since = format!("@{}", since_ms.div_euclid(1000) - 1);
    let argv = [
        "--unit",
        unit,
        "--since",
        &since,
        "--output",
        "short-unix",
        "--no-pager",
        "--quiet",
        "--lines",
        "10000",
    ];
    let handle = duct::cmd("journalctl", argv)
        .stdout_capture()
        .stderr_capture()
        .stdin_null()
        .unchecked()
        .start()
        .map_err(|e| {
            format!("cannot run journalctl: {e}; journal checks need systemd's journal")
        })?;
    let out = match handle.wait_timeout(timeout.max(Duration::from_secs(5))) {
        Ok(Some(out)) => out.clone(),
        Ok(None) => {
            let _ = handle.kill();
            return Err("journalctl did not answer in time".into());
        }
        Err(e) => return Err(format!("journalctl: {e}")),
    };
    if !out.status.success() {
        return Err(format!(
            "journalctl exited {}: {}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = 0usize;
    // Two milliseconds of slack for the start time's conversion.
    let from_us = i128::from(since_ms) * 1000 - 2000;
    for entry in text.lines() {
        // `1732222525.811234 host unit[pid]: message`
        let Some((stamp, line)) = entry.split_once(' ') else {
            continue;
        };
        let Some(us) = stamp.split_once('.').and_then(|(s, f)| {
            let secs = s.parse::<i128>().ok()?;
            let frac = format!("{f:0<6}").get(..6)?.parse::<i128>().ok()?;
            Some(secs * 1_000_000 + frac)
        }) else {
            continue;
        };
        if us < from_us {
            continue;
        }
        lines += 1;
        if let Some(re) = res.iter().find(|re| re.is_match(line)) {
            return Err(format!(
                "`{}` matches `{}`",
                line.chars().take(200).collect::<String>(),
                re.as_str()
            ));
        }
    }
    Ok(format!("{lines} line(s) since the restart, none matching"))
}

fn running_binary(
    unit: &str,
    expected: &std::path::Path,
    store: &std::path::Path,
    control: Option<&dyn ServiceControl>,
) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let c = control.ok_or("no service manager to ask")?;
    let pid = c
        .status(unit)
        .map_err(|e| e.to_string())?
        .main_pid
        .ok_or_else(|| format!("{unit} has no main process"))?;
    let exe = format!("/proc/{pid}/exe");
    // The link's text names the file the process was started from (with
    // ` (deleted)` when it is gone); its metadata is that very file's.
    let shown = std::fs::read_link(&exe)
        .map_err(|e| format!("cannot read {exe}: {e}"))?
        .to_string_lossy()
        .into_owned();
    let running = std::fs::metadata(&exe).map_err(|e| format!("cannot stat {exe}: {e}"))?;
    // Not in the store (an install not adopted yet): only a store binary
    // running instead would be wrong.
    let want = std::fs::metadata(expected).ok();
    if want.is_some_and(|w| (running.dev(), running.ino()) == (w.dev(), w.ino())) {
        return Ok(format!("pid {pid} runs {}", expected.display()));
    }
    if std::path::Path::new(&shown).starts_with(store) {
        return Err(format!(
            "pid {pid} runs {shown}, not {}: the service did not pick up the new release",
            expected.display()
        ));
    }
    Ok(format!(
        "pid {pid} runs {shown}, not a release of this component (a wrapper?): not judged"
    ))
}

/// Runs every probe (in order) until it passes, its retries run out or the
/// shared deadline passes.
pub fn run(probes: &[Probe], deadline: Duration, control: Option<&dyn ServiceControl>) -> Report {
    let end = Instant::now() + deadline;
    let mut results = Vec::new();
    for p in probes {
        let start = Instant::now();
        let client = p.access.agent();
        let mut attempts = 0;
        let (ok, detail) = loop {
            attempts += 1;
            let left = end.saturating_duration_since(Instant::now());
            let r = attempt_on(
                &p.check,
                p.timeout.min(left.max(Duration::from_millis(50))),
                control,
                &p.access,
                &client,
            );
            match r {
                Ok(d) => break (true, d),
                Err(e) if attempts >= p.retries || Instant::now() + p.interval >= end => {
                    break (false, e);
                }
                Err(_) => std::thread::sleep(p.interval),
            }
        };
        results.push(ProbeResult {
            name: p.name(),
            ok,
            decides: p.decides,
            attempts,
            detail,
            elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
    Report {
        healthy: results.iter().all(|r| r.ok || !r.decides),
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGETS: &str = r#"{"status":"success","data":{"activeTargets":[
      {"labels":{"instance":"127.0.0.1:9100","job":"node"},
       "scrapeUrl":"http://127.0.0.1:9100/metrics","health":"up","lastError":"",
       "lastScrape":"2026-11-21T03:00:05.5Z"},
      {"labels":{"instance":"127.0.0.1:9093","job":"alertmanager"},
       "scrapeUrl":"http://127.0.0.1:9093/metrics","health":"down",
       "lastError":"connection refused","lastScrape":"2026-11-21T03:00:06Z"}],
      "droppedTargets":[]}}"#;

    fn ms(t: &str) -> i64 {
        t.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn prometheus_targets_must_be_up_and_scraped_since_the_restart() {
        let f = |job, instance, address| TargetFilter {
            job,
            instance,
            address,
        };
        let before = ms("2026-11-21T03:00:00Z");
        let by_job = f(Some("node"), None, "");
        assert!(prometheus_targets(TARGETS, &by_job, before).is_ok());
        // A scrape from before the restart does not count yet.
        let e = prometheus_targets(TARGETS, &by_job, ms("2026-11-21T03:00:06Z")).unwrap_err();
        assert!(e.contains("before the restart"), "{e}");
        let e = prometheus_targets(TARGETS, &f(Some("alertmanager"), None, ""), before);
        assert_eq!(
            e.unwrap_err(),
            "target 127.0.0.1:9093 is down: connection refused"
        );
        // By the component's own address when no label is given.
        assert!(prometheus_targets(TARGETS, &f(None, None, "127.0.0.1:9100"), before).is_ok());
        let e = prometheus_targets(TARGETS, &f(None, None, "127.0.0.2:9100"), before);
        assert_eq!(e.unwrap_err(), "no active target scrapes 127.0.0.2:9100");
        let e = prometheus_targets(TARGETS, &f(Some("node"), Some("x:1"), ""), before);
        assert_eq!(e.unwrap_err(), "no active target has those labels");
        assert!(prometheus_targets("<html>", &by_job, before).is_err());
    }
}
