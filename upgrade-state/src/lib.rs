//! Crash-safe journal, run lock and history for obs-upgrade.
//!
//! # Limitations
//! Nothing is implemented yet: this crate is a placeholder in the workspace
//! until its issue lands.
