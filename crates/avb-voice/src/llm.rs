//! The language-model port: streaming chat with tools, cancellable mid-reply.
//!
//! The request carries what the realtime session accumulates (instructions, the conversation with its function
//! calls and outputs, tools, `tool_choice`, temperature, `max_output_tokens`); the stream yields text deltas,
//! function-call argument deltas and a final [`ChatEvent::Done`] with token usage.

use crate::error::Result;
use async_trait::async_trait;
use avb_core::Ctx;
use serde::{Deserialize, Serialize};
use std::fmt;
use tokio_util::sync::CancellationToken;

/// A function call made by the assistant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id (`call_…`), echoed by the function output.
    pub call_id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as a JSON text (models stream it; it may be invalid JSON).
    pub arguments: String,
}

/// One conversation message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage {
    /// A system or developer message inside the conversation (instructions go in [`ChatRequest::instructions`]).
    System {
        /// The text.
        content: String,
    },
    /// What the user said (typed, or transcribed from audio).
    User {
        /// The text.
        content: String,
    },
    /// What the assistant said and the functions it called.
    Assistant {
        /// The text (empty when it only called functions).
        content: String,
        /// Function calls, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// A function's output (`function_call_output` item).
    Tool {
        /// The call this answers.
        call_id: String,
        /// The output text.
        content: String,
    },
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Whether and which function the model must call (reference §7.1 `tool_choice`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No function calls.
    None,
    /// At least one function call.
    Required,
    /// A call to this function.
    Function {
        /// The function's name.
        name: String,
    },
}

/// A chat completion request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// Engine-specific model name; `None` is the adapter's default.
    pub model: Option<String>,
    /// The system prompt (session `instructions`).
    pub instructions: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Functions the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether and which function to call.
    pub tool_choice: ToolChoice,
    /// Sampling temperature; `None` is the engine's default.
    pub temperature: Option<f32>,
    /// Cap on generated tokens; `None` is unbounded (`"inf"`).
    pub max_output_tokens: Option<u32>,
}

impl ChatRequest {
    /// A request for `messages` with no tools and default settings.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// Sets the instructions.
    #[must_use]
    pub fn with_instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// Sets the tools and the tool choice.
    #[must_use]
    pub fn with_tools(mut self, tools: Vec<ToolSpec>, choice: ToolChoice) -> Self {
        self.tools = tools;
        self.tool_choice = choice;
        self
    }

    /// Sets the temperature.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets the output cap.
    #[must_use]
    pub fn with_max_output_tokens(mut self, max: u32) -> Self {
        self.max_output_tokens = Some(max);
        self
    }
}

/// Tokens consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

impl TokenUsage {
    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its reply.
    Stop,
    /// `max_output_tokens` was reached (`incomplete`, reason `max_output_tokens`).
    Length,
    /// The model called one or more functions.
    ToolCalls,
    /// The engine's content filter stopped it.
    ContentFilter,
}

/// What a chat stream yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// More reply text.
    TextDelta {
        /// The new text.
        delta: String,
    },
    /// More of a function call's arguments. Every delta of a call repeats its `call_id` and `name`.
    ToolCallDelta {
        /// The call's id, unique within the reply.
        call_id: String,
        /// The function's name.
        name: String,
        /// The next piece of the JSON arguments text (may be empty on the call's first delta).
        arguments_delta: String,
    },
    /// The reply is complete; nothing follows.
    Done {
        /// Tokens consumed by the whole request.
        usage: TokenUsage,
        /// Why it ended.
        finish_reason: FinishReason,
    },
}

/// Streaming chat models.
///
/// # Contract
/// - `stream` returns once the request is accepted; replies come through the [`ChatStream`]. An unreachable
///   engine is [`Error::Unavailable`](crate::Error::Unavailable), an invalid request (unknown model, a
///   `tool_choice` naming a function not in `tools`) [`Error::InvalidConfig`](crate::Error::InvalidConfig).
/// - With `tool_choice` [`ToolChoice::None`] or no tools, the reply has no function calls; with
///   [`ToolChoice::Function`] it calls that function; with [`ToolChoice::Required`] it calls at least one.
/// - When `cancel` fires or the stream is dropped, generation stops (the engine request is aborted).
/// - See [`ChatStream`] for the stream's own contract.
#[async_trait]
pub trait LanguageModel: Send + Sync + fmt::Debug + 'static {
    /// Starts generating a reply to `request`.
    async fn stream(
        &self,
        ctx: &Ctx,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<Box<dyn ChatStream>>;
}

/// One reply being generated.
///
/// # Contract
/// - `next_event` yields deltas, then exactly one [`ChatEvent::Done`], then `Ok(None)` forever.
/// - A function call's deltas concatenate to its full arguments text; calls of one reply have distinct
///   `call_id`s and their deltas do not interleave. `finish_reason` is [`FinishReason::ToolCalls`] when the
///   reply called a function.
/// - `output_tokens` of `Done` never exceeds `max_output_tokens` when one was set; the reply then ends with
///   [`FinishReason::Length`] if it was cut.
/// - Once the cancellation token fires, `next_event` returns
///   [`Error::Cancelled`](crate::Error::Cancelled) without waiting, and keeps doing so: nothing generated after
///   the cut is yielded.
/// - `next_event` is cancel-safe: dropping its future loses no event.
/// - `usage()` reports the tokens consumed so far (an estimate for a cancelled reply).
#[async_trait]
pub trait ChatStream: Send + fmt::Debug {
    /// The next delta or the final `Done`; `None` after `Done`.
    async fn next_event(&mut self) -> Result<Option<ChatEvent>>;

    /// Tokens consumed so far.
    fn usage(&self) -> TokenUsage;
}
