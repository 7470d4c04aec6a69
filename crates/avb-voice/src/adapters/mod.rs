//! Adapters of the voice ports that run in-process.
//!
//! - [`earshot::EarshotVad`]: the real voice activity detector behind `server_vad`.
//! - Deterministic adapters for tests and load runs: [`scripted_stt::ScriptedStt`] (transcripts from a script),
//!   [`tone_tts::ToneTts`] (tones whose length follows the text), [`scripted_llm::ScriptedLlm`] (replies and
//!   function calls from a script, streamed word by word).

pub mod earshot;
pub mod scripted_llm;
pub mod scripted_stt;
pub mod tone_tts;

pub use earshot::EarshotVad;
pub use scripted_llm::{ScriptedLlm, ScriptedReply};
pub use scripted_stt::ScriptedStt;
pub use tone_tts::{ToneTts, ToneTtsConfig};
