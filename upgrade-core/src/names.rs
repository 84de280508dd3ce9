//! What names may contain before they are joined onto a path or passed to
//! systemd: a component `../evil` or a binary `../../bin/sh` is refused when
//! the stack file is read, long before anything touches the host.

/// `text` with control characters (other than newline and tab) shown as
/// `\u{..}`, cut to `max` bytes on a character boundary (an ellipsis marks
/// the cut): for any text from outside that an error, a log line or the
/// state repeats.
pub fn shorten(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 8));
    for ch in text.chars() {
        if out.len() >= max {
            out.push('…');
            break;
        }
        if ch.is_control() && ch != '\n' && ch != '\t' {
            out.push_str(&ch.escape_unicode().to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// The longest component or binary name.
pub const MAX_NAME: usize = 64;

/// A component or binary name: 1–64 characters of `A–Z a–z 0–9 _ . -`, not
/// starting with `.` or `-`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid name: use 1 to {MAX_NAME} letters, digits, `_`, `.` or `-`, \
             not starting with `.` or `-`",
            shorten(&name.chars().take(80).collect::<String>(), 200)
        ))
    }
}

/// A systemd service unit name: a valid name ending in `.service` (`@`
/// and `:` allowed, as systemd does), at most 128 characters.
pub fn check_unit(unit: &str) -> Result<(), String> {
    let stem = unit.strip_suffix(".service");
    let ok = unit.len() <= 128
        && stem.is_some_and(|s| {
            !s.is_empty()
                && !s.starts_with(['.', '-'])
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-@:\\\\".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a service unit name: letters, digits, `_ . - @ :`, ending in `.service`",
            shorten(&unit.chars().take(140).collect::<String>(), 300)
        ))
    }
}

/// A path inside a release archive: relative, no `..`, no empty segment.
pub fn check_archive_path(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= 512
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != ".." && seg != ".");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a path inside an archive: relative, without `..` or `.`",
            shorten(&path.chars().take(200).collect::<String>(), 400)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_their_directory_are_refused() {
        for ok in [
            "node_exporter",
            "nginx-prometheus-exporter",
            "alloy",
            "c0001",
            "a.b",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../evil",
            "a/b",
            ".hidden",
            "-x",
            "a b",
            "x\n",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_unit("node_exporter.service").is_ok());
        assert!(check_unit("getty@tty1.service").is_ok());
        for bad in ["x", "../x.service", "a/b.service", ".service", "x.socket"] {
            assert!(check_unit(bad).is_err(), "{bad:?}");
        }
        assert!(check_archive_path("{artifact}-{version}/node_exporter").is_ok());
        for bad in ["/bin/sh", "../../bin/sh", "a/../b", "a//b", ""] {
            assert!(check_archive_path(bad).is_err(), "{bad:?}");
        }
    }
}
