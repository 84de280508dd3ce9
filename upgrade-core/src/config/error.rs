//! Why a stack file was refused: where (file, line, key) and what to do.

use std::path::PathBuf;

/// Why a stack file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read stack file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The extension says neither YAML nor TOML.
    #[error("{}: unknown stack file type; name it `.yaml`, `.yml` or `.toml`", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The text does not parse, or a value does not fit the schema.
    #[error("{file}:{line}:{column}: {key}{message}")]
    Syntax {
        /// The file (or `<input>`).
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// The key path with a trailing `: `, or empty.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file parses but says something inconsistent.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file (or `<input>`).
        file: String,
        /// The key path (`components.prometheus.depends_on[0]`).
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}
