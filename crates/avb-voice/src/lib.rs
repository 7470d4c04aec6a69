//! # avb-voice
//!
//! The voice side of AgentVoiceBox (spec §8, §9.3): audio formats and resampling, voice activity detection, the
//! speech-to-text / text-to-speech / language-model ports with deterministic in-process adapters, and the
//! realtime session engine that speaks the OpenAI Realtime protocol (GA and beta dialects). Framework-free: the
//! HTTP crates only pump WebSocket frames into it.
#![deny(missing_docs)]

pub mod adapters;
pub mod audio;
#[cfg(feature = "conformance")]
pub mod conformance;
mod deadline;
pub mod error;
pub mod llm;
pub mod metered;
pub mod realtime;
pub mod stt;
pub mod tts;
pub mod vad;

pub use error::{Error, Result};
