//! Parsing YAML or TOML into the schema, with the file, line, column and key
//! path of every error.

use std::fmt;
use std::path::Path;

use super::error::Error;
use super::file::StackFile;

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

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        })
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

/// Where the key of `path` (its last name) is written, searching from the
/// mapping a YAML error points at: a value refused by its own type (a
/// time zone, a time of day) is reported at the start of the mapping that
/// holds it, not at its own line. `None` when the key is not found before
/// that mapping ends.
fn key_location(text: &str, line: usize, column: usize, path: &str) -> Option<(usize, usize)> {
    let last = path.trim_end_matches(": ").rsplit('.').next()?;
    let name = last.split('[').next().filter(|n| !n.is_empty())?;
    let wanted = format!("{name}:");
    for (i, l) in text.lines().enumerate().skip(line.checked_sub(1)?) {
        let body = l.trim_start();
        let indent = l.len() - body.len();
        let item = body.strip_prefix("- ").map(str::trim_start);
        // A line left of the mapping (a sibling of its parent) ends the search.
        if i + 1 > line && !body.is_empty() && !body.starts_with('#') && indent + 1 < column {
            return None;
        }
        for (at, text) in [
            (indent, Some(body)),
            (l.len() - item.unwrap_or("").len(), item),
        ] {
            if text.is_some_and(|t| t.starts_with(&wanted)) && (i + 1 > line || at + 1 >= column) {
                return Some((i + 1, at + 1));
            }
        }
    }
    None
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
                    let (line, column) = inner.location().map_or((0, 0), |l| {
                        key_location(text, l.line(), l.column(), &key)
                            .unwrap_or((l.line(), l.column()))
                    });
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
                    let message = crate::suggest::unknown_field_hint(&message);
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
                    let message = crate::suggest::unknown_field_hint(&message);
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
}

#[cfg(test)]
mod tests {
    use super::key_location;

    const TEXT: &str = concat!(
        "maintenance:\n",
        "  windows:\n",
        "    - days: [mon]\n",
        "      start: \"02:00\"\n",
        "      time_zone: Mars/Olympus\n",
        "    - days: [tue]\n",
        "      start: \"03:00\"\n",
        "      time_zone: UTC\n",
    );

    #[test]
    fn a_value_refused_by_its_type_is_found_on_its_own_line() {
        // yaml_serde points at the mapping (3:7); the key is on line 5.
        let key = "maintenance.windows[0].time_zone: ";
        assert_eq!(key_location(TEXT, 3, 7, key), Some((5, 7)));
        // The second window's key, from the second mapping.
        let key = "maintenance.windows[1].time_zone: ";
        assert_eq!(key_location(TEXT, 6, 7, key), Some((8, 7)));
    }

    #[test]
    fn the_search_ends_with_the_mapping() {
        // `end` is in neither window: not taken from a later sibling.
        let key = "maintenance.windows[0].end: ";
        assert_eq!(key_location(TEXT, 3, 7, key), None);
        assert_eq!(key_location(TEXT, 0, 0, key), None);
        assert_eq!(key_location(TEXT, 3, 7, ""), None);
    }
}
