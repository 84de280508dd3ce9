//! Examples that embed the obs-upgrade crates; see the `examples` targets.
