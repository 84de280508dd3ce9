//! Standard output that ends quietly when its reader goes away.
//!
//! `println!` panics when the pipe is closed (`obs-upgrade history | head`);
//! these macros return the write error instead (they expand to `…?`), and
//! [`crate::exit`] turns a broken pipe into a quiet exit 0.

use std::io::Write;

/// Writes a line to stdout; the error is returned with `?`.
macro_rules! outln {
    () => {
        $crate::out::text("\n")?
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))?
    };
}

/// Writes to stdout without a newline; the error is returned with `?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::text(&format!($($arg)*))?
    };
}

/// One line.
pub fn line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args)?;
    o.write_all(b"\n")?;
    o.flush()
}

/// Text as it is.
pub fn text(s: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()
}

/// Bytes as they are (a completion script, a manual page).
pub fn bytes(b: &[u8]) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(b)?;
    o.flush()
}
