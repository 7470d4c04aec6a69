//! Errors of the auth crate (in progress).

/// Auth errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Storage or backend failure.
    #[error(transparent)]
    Core(#[from] avb_core::Error),
}

/// Result with the auth [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
