//! The speech and language engines realtime sessions use.
//!
//! This build ships the deterministic in-process engines of `avb-voice` (real engines — whisper, Piper, an
//! OpenAI-compatible model — are separate adapters): the earshot voice activity detector (real), a scripted
//! language model, a scripted speech-to-text and a tone text-to-speech. `AVB_VOICE_SCRIPT` names a JSON file that
//! sets what they say, so demos and end-to-end tests control every turn:
//!
//! ```json
//! {
//!   "replies": [{"text": "Hello there."}, {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
//!   "transcripts": ["What is the weather in Oslo?"],
//!   "token_delay_ms": 0, "tts_ms_per_char": 50, "tts_chunk_ms": 100, "tts_chunk_delay_ms": 0
//! }
//! ```
//! Replies and transcripts are taken in order by every session of the process and start over when used up.

use avb_voice::adapters::earshot::EarshotVad;
use avb_voice::adapters::scripted_llm::{ScriptedLlm, ScriptedReply};
use avb_voice::adapters::scripted_stt::ScriptedStt;
use avb_voice::adapters::tone_tts::{ToneTts, ToneTtsConfig};
use avb_voice::metered::MeterLabels;
use avb_voice::realtime::engine::SessionPorts;
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What the scripted engines say (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceScript {
    /// The model's replies, in order.
    pub replies: Vec<ScriptedTurn>,
    /// What the speech-to-text "hears", utterance by utterance.
    #[serde(default)]
    pub transcripts: Vec<String>,
    /// Delay between streamed tokens (lets a client interrupt a reply).
    #[serde(default)]
    pub token_delay_ms: u64,
    /// Audio per character of speech.
    #[serde(default)]
    pub tts_ms_per_char: Option<u32>,
    /// Audio per speech chunk.
    #[serde(default)]
    pub tts_chunk_ms: Option<u32>,
    /// Synthesis time per speech chunk.
    #[serde(default)]
    pub tts_chunk_delay_ms: u64,
}

/// One scripted reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum ScriptedTurn {
    /// A spoken/text reply.
    Text {
        /// The words.
        text: String,
    },
    /// A function call.
    ToolCall {
        /// The call.
        tool_call: ToolCallSpec,
    },
}

/// A scripted function call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallSpec {
    /// Function name (must be among the session's tools for the reply to be used).
    pub name: String,
    /// Arguments.
    #[serde(default)]
    pub arguments: serde_json::Value,
}

impl Default for VoiceScript {
    fn default() -> Self {
        Self {
            replies: vec![ScriptedTurn::Text {
                text: "Hello! I am the AgentVoiceBox demo agent. This server runs its built-in scripted \
                       engines; configure a speech and language model to hold a real conversation."
                    .to_owned(),
            }],
            transcripts: vec!["(scripted transcript: configure a speech-to-text engine)".to_owned()],
            token_delay_ms: 0,
            tts_ms_per_char: None,
            tts_chunk_ms: None,
            tts_chunk_delay_ms: 0,
        }
    }
}

impl VoiceScript {
    /// Reads a script file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("AVB_VOICE_SCRIPT {}: {e}", path.display()))?;
        let script: Self =
            serde_json::from_str(&text).map_err(|e| format!("AVB_VOICE_SCRIPT {}: {e}", path.display()))?;
        if script.replies.is_empty() {
            return Err(format!("AVB_VOICE_SCRIPT {}: `replies` is empty", path.display()));
        }
        Ok(script)
    }

    /// The engines this script describes.
    pub fn ports(&self) -> SessionPorts {
        let replies = self.replies.iter().map(|turn| match turn {
            ScriptedTurn::Text { text } => ScriptedReply::text(text.clone()),
            ScriptedTurn::ToolCall { tool_call } => {
                ScriptedReply::tool_call(tool_call.name.clone(), tool_call.arguments.clone())
            }
        });
        let mut llm = ScriptedLlm::new(replies).cycling();
        if self.token_delay_ms > 0 {
            llm = llm.with_token_delay(Duration::from_millis(self.token_delay_ms));
        }
        let transcripts = if self.transcripts.is_empty() {
            VoiceScript::default().transcripts
        } else {
            self.transcripts.clone()
        };
        let mut tts = ToneTts::new(ToneTtsConfig::default());
        if let Some(ms) = self.tts_ms_per_char {
            tts = tts.with_ms_per_char(ms);
        }
        if let Some(ms) = self.tts_chunk_ms {
            tts = tts.with_chunk_ms(ms);
        }
        if self.tts_chunk_delay_ms > 0 {
            tts = tts.with_chunk_delay(Duration::from_millis(self.tts_chunk_delay_ms));
        }
        SessionPorts {
            llm: Arc::new(llm),
            stt: Arc::new(ScriptedStt::new(transcripts).cycling()),
            tts: Arc::new(tts),
            vad: Some(Arc::new(EarshotVad::new())),
        }
    }
}

/// What the engines' metrics say of these engines where a request does not (`avb_llm_*{provider}`, default
/// model names; the tone voice speaks no language, `und`).
pub fn meter_labels() -> MeterLabels {
    MeterLabels::new()
        .with_provider("scripted")
        .with_llm_model("scripted")
        .with_stt_model("scripted")
}

/// The engines for `script` (a file path), or the built-in demo script.
pub fn speech_ports(script: Option<&Path>) -> Result<SessionPorts, String> {
    Ok(match script {
        Some(path) => VoiceScript::load(path)?.ports(),
        None => VoiceScript::default().ports(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_script_file_parses_text_and_tool_call_turns() {
        let script: VoiceScript = serde_json::from_str(
            r#"{"replies":[{"text":"hi"},{"tool_call":{"name":"f","arguments":{"a":1}}}],"transcripts":["x"]}"#,
        )
        .unwrap();
        assert_eq!(script.replies.len(), 2);
        assert!(matches!(&script.replies[1], ScriptedTurn::ToolCall { tool_call } if tool_call.name == "f"));
        let _ = script.ports();
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<VoiceScript>(r#"{"replies":[],"oops":1}"#).is_err());
    }
}
