//! Tables for people, JSON for programs.

use serde::Serialize;

/// Prints `value` as pretty JSON with its schema name.
pub fn json<T: Serialize>(schema: &str, value: &T) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(value)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "schema".into(),
            serde_json::Value::String(format!("obs-upgrade/{schema}/v1")),
        );
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
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

    pub fn print(&self) {
        let n = self.header.len();
        let mut width = vec![0usize; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i + 1 == n {
                        c.clone()
                    } else {
                        format!("{c:<w$}", w = width[i])
                    }
                })
                .collect();
            println!("{}", line.join("  ").trim_end());
        }
    }
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
