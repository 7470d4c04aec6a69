//! [`ScriptedLlm`]: a language model that answers from a script, for tests and load runs.
//!
//! Each request takes the first remaining reply that it can legally produce: a reply with function calls only
//! when every called function is among the request's tools and `tool_choice` allows calls; a text-only reply
//! only when `tool_choice` does not force a call; `ToolChoice::Function(name)` needs a reply that calls `name`.
//! Replies stream word by word (function arguments in small pieces), optionally one delta per `token_delay`,
//! so barge-in tests have something to cut. Every request is recorded for assertions.

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::llm::{
    ChatEvent, ChatMessage, ChatRequest, ChatStream, FinishReason, LanguageModel, TokenUsage, ToolChoice,
};
use async_trait::async_trait;
use avb_core::Ctx;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Characters of function arguments per delta.
const ARGUMENT_PIECE: usize = 8;

/// One scripted reply: text, function calls, or both (text first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedReply {
    text: String,
    calls: Vec<(String, String)>,
    input_tokens: Option<u64>,
}

impl ScriptedReply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            calls: Vec::new(),
            input_tokens: None,
        }
    }

    /// A reply that calls `name` with `arguments` (a JSON value, sent as its text).
    pub fn tool_call(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self {
            text: String::new(),
            calls: vec![(name.into(), arguments.to_string())],
            input_tokens: None,
        }
    }

    /// Adds another function call (arguments sent verbatim, which may be invalid JSON on purpose).
    #[must_use]
    pub fn and_call(mut self, name: impl Into<String>, raw_arguments: impl Into<String>) -> Self {
        self.calls.push((name.into(), raw_arguments.into()));
        self
    }

    /// Reports `tokens` input tokens instead of the estimate (a quarter of the request's characters).
    #[must_use]
    pub fn with_input_tokens(mut self, tokens: u64) -> Self {
        self.input_tokens = Some(tokens);
        self
    }

    fn fits(&self, request: &ChatRequest) -> bool {
        let known = |name: &str| request.tools.iter().any(|t| t.name == name);
        let calls_ok = self.calls.iter().all(|(name, _)| known(name));
        match &request.tool_choice {
            ToolChoice::None => self.calls.is_empty(),
            ToolChoice::Auto => calls_ok,
            ToolChoice::Required => !self.calls.is_empty() && calls_ok,
            ToolChoice::Function { name } => calls_ok && self.calls.iter().any(|(called, _)| called == name),
        }
    }
}

/// The scripted model. Clones share the script and the request log.
#[derive(Debug, Clone)]
pub struct ScriptedLlm {
    shared: Arc<Mutex<Script>>,
    token_delay: Option<Duration>,
    cycle: bool,
}

#[derive(Debug, Default)]
struct Script {
    replies: VecDeque<ScriptedReply>,
    requests: Vec<ChatRequest>,
    calls_made: u64,
}

impl ScriptedLlm {
    /// A model that answers with `replies`, in order (see the module docs for how a request picks one).
    pub fn new(replies: impl IntoIterator<Item = ScriptedReply>) -> Self {
        let script = Script {
            replies: replies.into_iter().collect(),
            ..Script::default()
        };
        Self {
            shared: Arc::new(Mutex::new(script)),
            token_delay: None,
            cycle: false,
        }
    }

    /// Puts every used reply back at the end of the script (load runs).
    #[must_use]
    pub fn cycling(mut self) -> Self {
        self.cycle = true;
        self
    }

    /// Waits `delay` before every delta.
    #[must_use]
    pub fn with_token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = Some(delay);
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.lock().requests.clone()
    }

    /// Replies still in the script.
    pub fn remaining(&self) -> usize {
        self.lock().replies.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn estimate_tokens(request: &ChatRequest) -> u64 {
    let mut chars = request.instructions.as_deref().map_or(0, |i| i.chars().count());
    for message in &request.messages {
        chars += match message {
            ChatMessage::System { content } | ChatMessage::User { content } => content.chars().count(),
            ChatMessage::Assistant { content, tool_calls } => {
                content.chars().count()
                    + tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.chars().count())
                        .sum::<usize>()
            }
            ChatMessage::Tool { content, .. } => content.chars().count(),
        };
    }
    for tool in &request.tools {
        chars += tool.name.len() + tool.parameters.to_string().len();
    }
    (chars as u64).div_ceil(4).max(1)
}

#[async_trait]
impl LanguageModel for ScriptedLlm {
    async fn stream(
        &self,
        _ctx: &Ctx,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<Box<dyn ChatStream>> {
        if let ToolChoice::Function { name } = &request.tool_choice
            && !request.tools.iter().any(|t| &t.name == name)
        {
            return Err(Error::invalid_config(
                "tool_choice",
                format!("function {name:?} is not among the tools"),
            ));
        }
        let mut script = self.lock();
        script.requests.push(request.clone());
        let index = script
            .replies
            .iter()
            .position(|r| r.fits(&request))
            .ok_or_else(|| {
                Error::InvalidState(format!(
                    "the script has no reply for tool_choice {:?} with {} tools",
                    request.tool_choice,
                    request.tools.len()
                ))
            })?;
        let reply = script
            .replies
            .remove(index)
            .ok_or_else(|| Error::Internal("script index".into()))?;
        if self.cycle {
            script.replies.push_back(reply.clone());
        }
        let first_call = script.calls_made;
        script.calls_made += reply.calls.len() as u64;
        drop(script);

        let mut events = VecDeque::new();
        let cap = request.max_output_tokens.map(u64::from);
        let mut produced = 0u64;
        let mut cut = false;
        for word in reply.text.split_inclusive(char::is_whitespace) {
            if cap.is_some_and(|cap| produced >= cap) {
                cut = true;
                break;
            }
            events.push_back(ChatEvent::TextDelta {
                delta: word.to_owned(),
            });
            produced += 1;
        }
        'calls: for (offset, (name, arguments)) in reply.calls.iter().enumerate() {
            let call_id = format!("call_{:06}", first_call + offset as u64);
            let chars: Vec<char> = arguments.chars().collect();
            let pieces: Vec<String> = if chars.is_empty() {
                vec![String::new()]
            } else {
                chars
                    .chunks(ARGUMENT_PIECE)
                    .map(|piece| piece.iter().collect())
                    .collect()
            };
            for piece in pieces {
                if cap.is_some_and(|cap| produced >= cap) {
                    cut = true;
                    break 'calls;
                }
                events.push_back(ChatEvent::ToolCallDelta {
                    call_id: call_id.clone(),
                    name: name.clone(),
                    arguments_delta: piece,
                });
                produced += 1;
            }
        }
        let finish_reason = if cut {
            FinishReason::Length
        } else if reply.calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        };
        Ok(Box::new(ScriptedChatStream {
            events,
            input_tokens: reply.input_tokens.unwrap_or_else(|| estimate_tokens(&request)),
            output_tokens: 0,
            finish_reason,
            done: false,
            cancelled: Box::pin(cancel.clone().cancelled_owned()),
            cancel,
            token_delay: self.token_delay,
            ready_at: None,
            timer: Deadline::default(),
        }))
    }
}

#[derive(Debug)]
struct ScriptedChatStream {
    events: VecDeque<ChatEvent>,
    input_tokens: u64,
    output_tokens: u64,
    finish_reason: FinishReason,
    done: bool,
    cancel: CancellationToken,
    /// The engine drops and re-makes `next_event` on every client frame: the cancellation wait and the timer
    /// are kept here so that re-polling does not register new waiters each time.
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    token_delay: Option<Duration>,
    ready_at: Option<Instant>,
    timer: Deadline,
}

#[async_trait]
impl ChatStream for ScriptedChatStream {
    async fn next_event(&mut self) -> Result<Option<ChatEvent>> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if self.done {
            return Ok(None);
        }
        if let Some(delay) = self.token_delay {
            // The delta's generation started at the first call that asked for it: a call dropped in a lost
            // `select!` race neither loses the delta nor restarts the wait.
            let ready_at = *self.ready_at.get_or_insert_with(|| Instant::now() + delay);
            tokio::select! {
                biased;
                () = self.cancelled.as_mut() => return Err(Error::Cancelled),
                () = self.timer.until(ready_at) => {}
            }
            self.ready_at = None;
        }
        match self.events.pop_front() {
            Some(event) => {
                self.output_tokens += 1;
                Ok(Some(event))
            }
            None => {
                self.done = true;
                Ok(Some(ChatEvent::Done {
                    usage: self.usage(),
                    finish_reason: self.finish_reason,
                }))
            }
        }
    }

    fn usage(&self) -> TokenUsage {
        TokenUsage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        }
    }
}
