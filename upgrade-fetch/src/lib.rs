//! Release discovery, verified downloads and the versioned install store.
//!
//! - [`sources`]: GitHub and GitLab release APIs (any base URL: GitHub
//!   Enterprise, a local mirror speaking the API) and a plain mirror
//!   directory; at most one listing per repository per run; components
//!   resolved in parallel.
//! - [`api`]: `ETag` cache on disk with a TTL, conditional requests, rate-limit
//!   headers, the cached answer when the limit is used up, an offline mode.
//! - [`http`]: one ureq agent with timeouts, retries with backoff on 5xx and
//!   connection errors, redirects, https required except loopback, and a
//!   token that is never printed.
//! - [`mirror`]: a fleet's mirror filled from a pin file, with its indexes.
//! - [`download`], [`verify`], [`extract`], [`store`]: streaming download
//!   hashed in the same pass and resumed with `Range`, the verification
//!   ladder, safe extraction, and the store with its atomic `current` link.
//!
//! ```no_run
//! use upgrade_core::catalog::Platform;
//! use upgrade_core::config::Stack;
//! use upgrade_core::ports::ReleaseSource;
//! use upgrade_fetch::api::ApiClient;
//! use upgrade_fetch::http::{Http, HttpOptions};
//! use upgrade_fetch::sources::{GITHUB_API, GITLAB_API, Sources};
//! use upgrade_fetch::store::Store;
//!
//! let stack = Stack::builtin();
//! let http = Http::new(HttpOptions::default());
//! let ttl = std::time::Duration::from_secs(900);
//! let client = ApiClient::new(http.clone(), "/var/cache/obs-upgrade/api", ttl, false);
//! let sources = Sources::new(client, GITHUB_API, GITLAB_API, None);
//! let node = &stack.components["node_exporter"];
//! let releases = sources.releases(node)?;
//! let store = Store::new(
//!     "/opt/obs-upgrade",
//!     "/var/cache/obs-upgrade",
//!     http,
//!     Platform::current(),
//! );
//! let mut progress = |done, total| eprintln!("{done}/{total:?}");
//! let staged = store.stage(node, releases.last().unwrap(), &mut progress)?;
//! println!("{} verified by {:?}", staged.dir.display(), staged.proof);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! # Limitations
//! - Keyless Sigstore signatures (cosign bundles) are not checked yet;
//!   minisign signatures over a checksum file are (`minisign_key`).
//! - The mirror layout is this crate's own (documented in [`sources::read_mirror`]).

#![warn(missing_docs)]

pub mod advisories;
pub mod api;
pub mod download;
pub mod extract;
pub mod http;
pub mod mirror;
pub mod sources;
pub mod store;
pub mod verify;
