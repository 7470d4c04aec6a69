//! Audio formats (in progress).
