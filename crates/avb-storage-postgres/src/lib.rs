//! # avb-storage-postgres
//!
//! PostgreSQL adapters (work in progress).
#![deny(missing_docs)]
