//! Service control and health probes for obs-upgrade.
//!
//! Implements upgrade-core's service-control and health-probe ports.
//!
//! # Limitations
//! Nothing is implemented yet: this crate is a placeholder in the workspace
//! until its issue lands.
