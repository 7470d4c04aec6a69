//! Realtime protocol and engine (in progress).
