//! # avb-tenancy
//!
//! The tenancy domain of AgentVoiceBox (spec §5, §7.3–7.4, §9): the records the platform stores, their storage
//! ports ([`store::TenancyStore`] → [`store::UnitOfWork`] → [`store::Repo`]), validation, tier limits and quotas,
//! tenant resolution, and the services that change them — each change committed together with its audit
//! record and follow-up jobs. [`observed::ObservedStore`] times any store's calls for the query-duration metric.
#![deny(missing_docs)]

pub mod api_key;
pub mod audit;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod error;
pub mod model;
pub mod notification;
pub mod observed;
pub mod project;
pub mod quota;
pub mod resolve;
pub mod service;
pub mod session;
pub mod store;
pub mod tenant;
pub mod theme;
pub mod user;
pub mod validation;
pub mod voice;

pub use error::{Error, Result};
pub use service::TenancyDeps;
