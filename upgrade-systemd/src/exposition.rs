//! A tolerant reader of the Prometheus text exposition format: enough to
//! find metric names and label values.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The value as written.
    pub value: String,
}

/// Parses the sample lines of an exposition; comments, blank lines and
/// lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut key = String::new();
        let close;
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    close = i;
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key).trim().to_owned(), value);
                }
                other => key.push(other),
            }
        }
        rest = &inner[close + 1..];
    }
    let value = rest.split_whitespace().next()?.to_owned();
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_shapes() {
        let text = concat!(
            "# HELP node_exporter_build_info A metric with a constant '1' value.\n",
            "# TYPE node_exporter_build_info gauge\n",
            "node_exporter_build_info{branch=\"debian/sid\",goarch=\"amd64\",",
            "revision=\"1.5.0-1+b6\",version=\"1.5.0\"} 1\n",
            "up 1 1700000000\n",
            "weird{path=\"a\\\\b\",msg=\"say \\\"hi\\\"\\n\",} 2.5e3\n",
            "broken{x=\"1\" 3\n\n",
        );
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels["version"], "1.5.0");
        assert_eq!(s[1].name, "up");
        assert_eq!(s[2].labels["path"], "a\\b");
        assert_eq!(s[2].labels["msg"], "say \"hi\"\n");
        assert_eq!(s[2].value, "2.5e3");
    }
}
