//! Tables for people, JSON for programs.

use serde::Serialize;
use upgrade_core::engine::RunReport;
use upgrade_core::journal::{ComponentStatus, RunStatus};

/// Prints `value` as pretty JSON with its schema name.
pub fn json<T: Serialize>(schema: &str, value: &T) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(value)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "schema".into(),
            serde_json::Value::String(format!("obs-upgrade/{schema}/v1")),
        );
    }
    outln!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// A plain aligned table.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Prints the table, columns aligned by what a terminal shows: escape
    /// sequences (colours) take no room, wide characters take two cells.
    pub fn print(&self) -> std::io::Result<()> {
        let n = self.header.len();
        let mut width = vec![0usize; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(display_width(c));
            }
        }
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(c);
                if i + 1 < n {
                    line.push_str(&" ".repeat(width[i].saturating_sub(display_width(c))));
                }
            }
            outln!("{}", line.trim_end());
        }
        Ok(())
    }
}

/// The cells a terminal gives `text`: escape sequences take none.
pub fn display_width(text: &str) -> usize {
    console::measure_text_width(text)
}

/// Colors a word when colors are on.
pub fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// A risk word, colored.
pub fn risk(on: bool, r: upgrade_core::planner::Risk) -> String {
    match r {
        upgrade_core::planner::Risk::Low => paint(on, "32", "low"),
        upgrade_core::planner::Risk::Medium => paint(on, "33", "medium"),
        upgrade_core::planner::Risk::High => paint(on, "31", "high"),
    }
}

/// A run's report: JSON, or a table of steps; the exit code it means.
/// `unchecked` components could not be detected or listed (their errors are
/// printed by the caller): the run is then never "nothing to do". A reader
/// that went away does not turn a failed run's code into 0.
pub fn run_report(
    g: &crate::args::Global,
    report: &RunReport,
    unchecked: usize,
) -> anyhow::Result<u8> {
    // A dry run is a Go/No-Go: anything that would stop it is a failure.
    let code = if report.failed() + report.rolled_back() > 0 || unchecked > 0 || report.no_go() {
        crate::exit::FAILED
    } else {
        crate::exit::OK
    };
    match print_run_report(g, report, unchecked) {
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(code)
        }
        other => other.map(|()| code),
    }
}

fn print_run_report(
    g: &crate::args::Global,
    report: &RunReport,
    unchecked: usize,
) -> anyhow::Result<()> {
    if g.json {
        return json("run", report);
    }
    for b in &report.blockers {
        outln!("No-Go: {b}");
    }
    if (report.steps.is_empty() || report.all_at_target()) && unchecked > 0 {
        outln!(
            "Nothing was changed; {unchecked} component(s) could not be checked (see the \
             errors above)."
        );
        return Ok(());
    }
    if report.steps.is_empty() || report.all_at_target() {
        outln!("Nothing to do: every component is where its policy wants it.");
        return Ok(());
    }
    let mut t = Table::new(&["COMPONENT", "FROM → TO", "RESULT", "DETAIL"]);
    for s in &report.steps {
        let result = match &s.status {
            ComponentStatus::Completed if s.to < s.from => "downgraded".to_owned(),
            ComponentStatus::Completed => "upgraded".to_owned(),
            ComponentStatus::RolledBack => "rolled back".to_owned(),
            ComponentStatus::Failed => "FAILED".to_owned(),
            ComponentStatus::Skipped => "skipped".to_owned(),
            ComponentStatus::Pending if report.status == RunStatus::Planning => "ok".into(),
            ComponentStatus::Pending => "pending".into(),
            ComponentStatus::InProgress { step } => format!("interrupted at {step}"),
        };
        let show = |v: &Option<upgrade_core::version::Version>| {
            v.as_ref().map(ToString::to_string).unwrap_or_default()
        };
        t.row(vec![
            s.component.clone(),
            format!("{} → {}", show(&s.from), show(&s.to)),
            result,
            s.message.clone().unwrap_or_default(),
        ]);
    }
    t.print()?;
    for n in &report.notes {
        outln!("note: {n}");
    }
    if report.status != RunStatus::Planning {
        outln!("run {}: {}", report.run_id, report.status);
    } else if report.no_go() {
        outln!("No-Go: the run would stop or skip the steps above.");
    } else {
        outln!("Go: every check passed.");
    }
    Ok(())
}

/// The store per component: current, last known-good, versions kept.
pub fn versions(rows: &[upgrade_cli::ops::VersionsRow]) -> std::io::Result<()> {
    let mut t = Table::new(&[
        "COMPONENT",
        "CURRENT",
        "LAST GOOD",
        "IN THE STORE",
        "CURRENT VERIFIED",
    ]);
    for r in rows {
        let dash = || "-".to_owned();
        t.row(vec![
            r.name.clone(),
            r.current.clone().unwrap_or_else(dash),
            r.last_good.clone().unwrap_or_else(dash),
            if r.versions.is_empty() {
                "(not managed yet)".into()
            } else {
                r.versions.join(", ")
            },
            r.current
                .as_ref()
                .and_then(|c| r.verification.get(c))
                .map(|p| {
                    let text = p.to_string();
                    text.strip_prefix("verified ").unwrap_or(&text).to_owned()
                })
                .unwrap_or_default(),
        ]);
    }
    t.print()
}
