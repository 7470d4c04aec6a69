//! Errors of the voice crate (in progress).

/// Voice errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A core port failed.
    #[error(transparent)]
    Core(#[from] avb_core::Error),
}

/// Result with the voice [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
