//! Release discovery, verified downloads and the versioned install store.
//!
//! Implements upgrade-core's release-source and artifact-store ports.
//!
//! # Limitations
//! Nothing is implemented yet: this crate is a placeholder in the workspace
//! until its issue lands.
