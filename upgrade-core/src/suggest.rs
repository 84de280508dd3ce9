//! "Did you mean": the nearest of a set of known names to a misspelt one.

/// The candidate nearest to `word` when it is close enough to be a typo
/// (an edit distance of at most a third of the word, and at least one;
/// ties go to the first candidate).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            (
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` when a candidate is near, else nothing.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(word, candidates).map_or_else(String::new, |c| format!("; did you mean `{c}`?"))
}

/// A deserializer's "unknown field `x`, expected one of `a`, `b`, …" (or
/// "unknown variant") message, with the long list replaced by the nearest
/// name when one is near: "unknown field `x`; did you mean `a`?".
pub fn unknown_field_hint(message: &str) -> String {
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_owned();
    };
    let Some((word, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match nearest(word, known) {
        Some(c) => {
            let what = message.split('`').next().unwrap_or_default();
            format!("{what}`{word}`; did you mean `{c}`?")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_matched_and_strangers_are_not() {
        let keys = ["track", "allow", "pin", "hold"];
        assert_eq!(nearest("trak", keys), Some("track"));
        assert_eq!(nearest("alow", keys), Some("allow"));
        assert_eq!(nearest("frobnicate", keys), None);
        assert_eq!(
            nearest("node_exportr", ["node_exporter", "nginx_exporter"]),
            Some("node_exporter")
        );
    }

    #[test]
    fn serde_messages_get_the_nearest_expected_name() {
        let m = "unknown field `trak`, expected one of `track`, `allow`, `pin`";
        assert_eq!(
            unknown_field_hint(m),
            "unknown field `trak`; did you mean `track`?"
        );
        let far = "unknown field `zzzzzz`, expected `track` or `allow`";
        assert_eq!(unknown_field_hint(far), far);
        assert_eq!(unknown_field_hint("invalid type"), "invalid type");
    }
}
