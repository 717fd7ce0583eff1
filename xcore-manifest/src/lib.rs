//! The xcore plugin manifest.
//!
//! This crate holds the [`Manifest`] type and the parsers of every string form a manifest
//! accepts — names, semver versions and requirements (`audit@^1.2`), permission grants
//! (`db.default: read, write`), durations (`10s`) and rate limits (`100/1m`). It is shared by
//! `xcore`, which validates manifests at registration, and `xcore-macros`, which validates the
//! same strings at compile time, so both reject exactly the same input with the same message.
//!
//! Plugin authors do not depend on this crate directly: everything is re-exported by `xcore`.
//!
//! ```
//! use xcore_manifest::Manifest;
//!
//! let manifest = Manifest::builder("audit", "1.4.0")
//!     .description("Keeps an audit trail")
//!     .services(["db"])
//!     .permissions(["db.default: read, write", "!db.default: drop"])
//!     .timeout("5s")
//!     .build()
//!     .unwrap();
//! assert_eq!(manifest.name(), "audit");
//! assert_eq!(manifest.version().to_string(), "1.4.0");
//! ```
#![forbid(unsafe_code)]

mod duration;
mod error;
mod grant;
mod manifest;
mod name;
mod rate_limit;
mod requirement;
mod suggest;

pub use duration::parse_duration;
pub use error::ManifestError;
pub use grant::{
    Effect, Grant, GrantError, GrantErrorKind, GrantSpec, Grants, MAX_GRANT_LEN, MAX_PATTERN_LEN,
    MAX_PATTERN_SEGMENTS, ResourcePattern,
};
pub use manifest::{DEFAULT_TIMEOUT, Manifest, ManifestBuilder, Mode};
pub use name::{MAX_NAME_LEN, NameError, validate_name};
pub use rate_limit::RateLimit;
pub use requirement::Requirement;
pub use semver::{Version, VersionReq};
pub use suggest::edit_distance;
