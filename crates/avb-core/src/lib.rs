//! # avb-core
//!
//! The vocabulary every AgentVoiceBox crate shares: typed ids, the request context ([`Ctx`]) passed explicitly to
//! every port call, principals, the single table of stable error codes with its wire envelope, pagination, and the
//! cross-cutting ports (audit, event bus, cache, rate limiter, job queue, clock, ids) with in-memory adapters.
//!
//! Nothing here names an HTTP framework, a database driver or a global: adapters live in their own crates and are
//! chosen at assembly time.
#![deny(missing_docs)]

pub mod audit;
pub mod cache;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod ctx;
pub mod error;
pub mod events;
mod ids;
pub mod jobs;
mod page;
mod principal;
pub mod rate_limit;

pub use clock::{Clock, IdGen, ManualClock, SequentialIds, SystemClock, UuidV7Ids};
pub use ctx::{ClientInfo, Ctx, StorageScope};
pub use error::{Error, ErrorBody, ErrorCode, FieldError, FieldErrors, HasCode, Result};
pub use ids::*;
pub use page::{Page, PageRequest};
pub use principal::{ApiKeyPrincipal, ApiKeyScope, Principal, RateLimitTier, Role, UserPrincipal};
