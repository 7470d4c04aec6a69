//! projects
