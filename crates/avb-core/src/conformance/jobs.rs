//! Conformance checks (in progress).
