//! What release notes say about breaking changes.
//!
//! Three conventions are read:
//! - promu style (the Prometheus projects): a line marked `[CHANGE]`
//!   (or `[BREAKING]`);
//! - a heading that says "breaking" (`## Breaking changes`, `**BREAKING**`):
//!   every line under it, up to the next heading;
//! - conventional commits (goreleaser changelogs): `feat!: …`,
//!   `fix(api)!: …`, and lines that start `BREAKING CHANGE:`.
//!
//! Lines inside fenced code blocks are never read.

use std::sync::LazyLock;

use regex::Regex;

/// The most breaking lines quoted from one release's notes.
pub const MAX_LINES: usize = 10;
/// The longest quoted line (in characters); longer ones are cut with `…`.
pub const MAX_LINE_CHARS: usize = 200;

static BANG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s*\[(])[a-zA-Z]+(?:\([^)\s]{0,64}\))?!:\s").expect("regex")
});
static MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\[(?:change|breaking)\]").expect("regex"));

/// The lines of `notes` that announce a breaking change, trimmed and
/// without list markers, at most [`MAX_LINES`] of them.
pub fn breaking_lines(notes: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut fenced = false;
    // Under a "breaking" heading: its text, and whether a line was taken under it.
    let mut under: Option<(String, bool)> = None;
    let push = |out: &mut Vec<String>, line: &str| {
        if out.len() < MAX_LINES {
            let line = shorten(line, MAX_LINE_CHARS);
            if !out.contains(&line) {
                out.push(line);
            }
        }
    };
    for raw in notes.lines() {
        let line = raw.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || line.is_empty() {
            continue;
        }
        if let Some(heading) = heading(line) {
            if let Some((h, false)) = under.take() {
                push(&mut out, &h);
            }
            if heading.to_ascii_lowercase().contains("breaking") {
                under = Some((heading.to_owned(), false));
            }
            continue;
        }
        let text = strip_list_marker(line);
        if let Some((_, taken)) = under.as_mut() {
            *taken = true;
            push(&mut out, text);
            continue;
        }
        let upper = text.trim_start_matches(['*', '_']).to_ascii_uppercase();
        if MARKER.is_match(text)
            || BANG.is_match(text)
            || upper.starts_with("BREAKING CHANGE")
            || upper.starts_with("BREAKING:")
        {
            push(&mut out, text);
        }
    }
    if let Some((h, false)) = under {
        push(&mut out, &h);
    }
    out
}

/// The text of a Markdown heading (`## X`), or of a line that is all bold
/// (`**X**`, `__X__`) as release notes often write headings.
fn heading(line: &str) -> Option<&str> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        return Some(line[hashes..].trim().trim_end_matches('#').trim());
    }
    for mark in ["**", "__"] {
        if let Some(inner) = line
            .strip_prefix(mark)
            .and_then(|l| l.strip_suffix(mark).or_else(|| l.strip_suffix(":**")))
            && !inner.is_empty()
            && !inner.contains(mark)
        {
            return Some(inner.trim_end_matches(':').trim());
        }
    }
    None
}

fn strip_list_marker(line: &str) -> &str {
    for m in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(m) {
            return rest.trim_start();
        }
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits > 0 && line[digits..].starts_with(". ") {
        return line[digits + 2..].trim_start();
    }
    line
}

/// `text` cut to `max` characters (at least 1), ending `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.max(1) - 1).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn promu_change_lines_are_breaking_and_others_are_not() {
        let notes = "## 2.0.0 / 2024-01-01\n\n\
            * [CHANGE] Remove the `--collector.ntp.server` flag. #123\n\
            * [FEATURE] Add a collector.\n\
            * [BUGFIX] Fix a leak.\n\
            * [ENHANCEMENT] Faster.\n";
        assert_eq!(
            breaking_lines(notes),
            vec!["[CHANGE] Remove the `--collector.ntp.server` flag. #123"]
        );
    }

    #[test]
    fn lines_under_a_breaking_heading_count_until_the_next_heading() {
        let notes = "## Breaking changes\n\n- The `foo` key is gone.\n\
            - `bar` now defaults to 3.\n\n\
            ## Features\n- New thing.\n";
        assert_eq!(
            breaking_lines(notes),
            vec!["The `foo` key is gone.", "`bar` now defaults to 3."]
        );
        let bold = "**BREAKING CHANGES:**\n* drop v1 API\n\n**Features**\n* x\n";
        assert_eq!(breaking_lines(bold), vec!["drop v1 API"]);
        assert_eq!(
            breaking_lines("### ⚠ BREAKING\n## Other\n- fine\n"),
            vec!["⚠ BREAKING"],
            "a breaking heading with nothing under it is quoted itself"
        );
    }

    #[test]
    fn conventional_commit_bang_markers_and_breaking_change_footers() {
        let notes = "## Changelog\n\
            * 1a2b3c4 feat!: drop the `-legacy` flag\n\
            * 5d6e7f8 fix(scrape)!: rename metric `x` to `y`\n\
            * 9a8b7c6 feat: add a thing!\n\
            * 0f0f0f0 chore(deps): bump golang.org/x/net\n\
            BREAKING CHANGE: the config format changed\n";
        assert_eq!(
            breaking_lines(notes),
            vec![
                "1a2b3c4 feat!: drop the `-legacy` flag",
                "5d6e7f8 fix(scrape)!: rename metric `x` to `y`",
                "BREAKING CHANGE: the config format changed",
            ]
        );
    }

    #[test]
    fn code_blocks_are_never_read_and_output_is_bounded() {
        let notes = "```\n[CHANGE] inside code\nfeat!: also inside\n```\n[CHANGE] outside\n";
        assert_eq!(breaking_lines(notes), vec!["[CHANGE] outside"]);
        let many = (0..50).fold(String::new(), |mut s, i| {
            let _ = writeln!(s, "* [CHANGE] item {i}");
            s
        });
        assert_eq!(breaking_lines(&many).len(), MAX_LINES);
        let long = format!("* [CHANGE] {}", "é".repeat(5000));
        let got = breaking_lines(&long);
        assert_eq!(got[0].chars().count(), MAX_LINE_CHARS);
        assert!(got[0].ends_with('…'));
        assert!(breaking_lines("").is_empty());
        assert!(breaking_lines("Nothing breaking here, promise.\n").is_empty());
    }
}
