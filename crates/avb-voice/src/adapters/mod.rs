//! Adapters of the voice ports (in progress).
