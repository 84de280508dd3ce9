//! Resolution and validation: the schema, the catalog and an environment
//! become a [`Stack`]; every inconsistency is refused with its key path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::error::Error;
use super::file::{ComponentConfig, OnFailure, PhaseSpec, StackFile};
use super::merge::merge_spec;
use super::model::{Component, Stack};
use super::parse::Format;
use crate::policy::Policy;
use crate::rules::Rules;
use crate::{catalog, names};

impl StackFile {
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
            names::check_name(name).map_err(|m| invalid("components".into(), m))?;
            let spec = merge_spec(catalog.get(name), cfg).map_err(|m| invalid(key.clone(), m))?;
            for (i, b) in spec.binaries.iter().enumerate() {
                names::check_name(&b.name)
                    .map_err(|m| invalid(format!("{key}.binaries[{i}].name"), m))?;
                names::check_archive_path(&b.path)
                    .map_err(|m| invalid(format!("{key}.binaries[{i}].path"), m))?;
            }
            if let Some(top) = &spec.top_dir {
                names::check_archive_path(top).map_err(|m| invalid(format!("{key}.top_dir"), m))?;
            }
            check_variants(&spec, &key).map_err(|(k, m)| invalid(k, m))?;
            check_verify(&spec.verify, &key).map_err(|(k, m)| invalid(k, m))?;
            if let Some(sig) = &spec.sigstore {
                sig.check()
                    .map_err(|(k, m)| invalid(format!("{key}.sigstore.{k}"), m))?;
            }
            names::check_unit(&spec.unit).map_err(|m| invalid(format!("{key}.unit"), m))?;
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
                            "unknown component `{name}`{}; components in this stack: {}",
                            crate::suggest::hint(name, components.keys().map(String::as_str)),
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
                            "unknown component `{dep}`{}; components in this stack: {}",
                            crate::suggest::hint(dep, components.keys().map(String::as_str)),
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
                        "unknown component `{name}`{}; components in this stack: {}",
                        crate::suggest::hint(name, components.keys().map(String::as_str)),
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
        for (key, value) in [
            ("deadlines.systemctl_secs", self.deadlines.systemctl_secs),
            (
                "deadlines.download_speed_window_secs",
                self.deadlines.download_speed_window_secs,
            ),
            ("deadlines.version_secs", self.deadlines.version_secs),
            (
                "deadlines.config_check_secs",
                self.deadlines.config_check_secs,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key.into(), "must be at least 1 second".into()));
            }
        }
        if self.retention.versions == 0 {
            return Err(invalid(
                "retention.versions".into(),
                "keep at least 1 version per component besides the current one".into(),
            ));
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
            retention: self.retention,
            deadlines: self.deadlines,
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
}

/// The `verify` checks can run: patterns compile, names and URLs make sense.
fn check_verify(v: &crate::catalog::Verify, key: &str) -> Result<(), (String, String)> {
    for (i, p) in v.journal_errors.iter().enumerate() {
        let at = format!("{key}.verify.journal_errors[{i}]");
        if p.len() > 1024 {
            return Err((
                at,
                "is longer than 1024 characters; shorten the pattern".into(),
            ));
        }
        regex::RegexBuilder::new(p)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| (at, format!("is not a valid regular expression: {e}")))?;
    }
    for (i, m) in v.metrics.iter().enumerate() {
        let ok = m.chars().enumerate().all(|(j, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (j > 0 && c.is_ascii_digit())
        });
        if m.is_empty() || !ok {
            return Err((
                format!("{key}.verify.metrics[{i}]"),
                format!("`{m}` is not a metric name (letters, digits, `_` and `:`)"),
            ));
        }
    }
    if let Some(p) = &v.prometheus
        && !(p.url.starts_with("http://") || p.url.starts_with("https://"))
    {
        return Err((
            format!("{key}.verify.prometheus.url"),
            format!("`{}` is not an http(s) URL; write http://host:9090", p.url),
        ));
    }
    if v.settle_secs > 86_400 {
        return Err((
            format!("{key}.verify.settle_secs"),
            "is more than a day; a settle period is seconds to minutes".into(),
        ));
    }
    Ok(())
}

/// Each asset variant names the same installed binaries as the component
/// (links and units use those names whatever the version) with safe paths.
fn check_variants(spec: &crate::catalog::ComponentSpec, key: &str) -> Result<(), (String, String)> {
    let names: Vec<&str> = spec.binaries.iter().map(|b| b.name.as_str()).collect();
    for (i, v) in spec.asset_variants.iter().enumerate() {
        let at = format!("{key}.asset_variants[{i}]");
        if let Some(top) = v.top_dir.as_deref().filter(|t| !t.is_empty()) {
            names::check_archive_path(top).map_err(|m| (format!("{at}.top_dir"), m))?;
        }
        let Some(bins) = &v.binaries else { continue };
        let theirs: Vec<&str> = bins.iter().map(|b| b.name.as_str()).collect();
        if theirs != names {
            return Err((
                format!("{at}.binaries"),
                format!(
                    "names {theirs:?} differ from the component's {names:?}; a variant may \
                     change where a binary is in the archive, not its installed name"
                ),
            ));
        }
        for (j, b) in bins.iter().enumerate() {
            names::check_archive_path(&b.path)
                .map_err(|m| (format!("{at}.binaries[{j}].path"), m))?;
        }
    }
    Ok(())
}
