//! The OpenAI Realtime protocol, both dialects, framework-free (reference `openai-realtime-events.md`).
//!
//! - [`Handshake::negotiate`] decides a connection's [`Dialect`] (and the subprotocol to select) from its upgrade
//!   request: beta iff `OpenAI-Beta: realtime=v1` or the `openai-beta.realtime-v1` subprotocol, else GA.
//! - [`decode_client`] turns a client text frame into a dialect-neutral [`ClientEvent`], or a [`ProtocolError`]
//!   that [`ProtocolError::into_event`] turns into the `error` event answering it (the session stays open).
//! - The engine keeps a [`SessionConfig`] (merging [`SessionUpdate`]s with [`SessionConfig::apply`]),
//!   conversation [`Item`]s and [`Response`]s, and emits neutral [`ServerEvent`]s.
//! - [`encode_server`] writes a server event with the dialect's exact `type` names and shapes and a fresh
//!   `event_…` id; events the dialect lacks come back as `None` and are not sent.
//!
//! Ids use the prefixes the SDKs show (`event_`, `item_`, `resp_`, `call_`, `sess_`, `conv_`): see [`IdKind`].

mod config;
mod decode;
mod dialect;
mod encode;
mod error;
mod event;
mod ids;
mod item;
mod response;

pub use config::{
    AudioFormat, ConfigError, ConfigField, DEFAULT_TEMPERATURE, DEFAULT_VOICE, Eagerness, FunctionTool,
    IDLE_TIMEOUT_MS_RANGE, Include, MAX_OUTPUT_TOKENS_RANGE, MaxOutputTokens, NoiseReduction,
    NoiseReductionKind, OutputModalities, Prompt, ReasoningEffort, SPEED_RANGE, SemanticVad, ServerVad,
    SessionConfig, SessionKind, SessionUpdate, TEMPERATURE_RANGE, ToolChoice, Tracing, TranscriptionConfig,
    TranscriptionDelay, Truncation, TurnDetection, UpdateLocks, Voice,
};
pub use decode::{MAX_EVENT_ID_CHARS, decode_client, decode_session};
pub use dialect::{
    BETA_HEADER, BETA_HEADER_VALUE, Dialect, Handshake, SUBPROTOCOL_API_KEY_PREFIX, SUBPROTOCOL_BETA,
    SUBPROTOCOL_REALTIME,
};
pub use encode::{
    encode_client, encode_client_value, encode_server, encode_server_value, encode_server_with_id,
    item_value, response_value, session_value,
};
pub use error::{ErrorObject, INVALID_REQUEST_ERROR, ProtocolError, ProtocolErrorCode, SERVER_ERROR};
pub use event::{
    ClientEvent, ClientEventKind, ItemPosition, OutputRef, PartRef, ROOT_ITEM_ID, ServerEvent, SessionObject,
    client_event_types,
};
pub use ids::IdKind;
pub use item::{AudioBytes, ContentPart, ImageDetail, Item, ItemInput, ItemKind, ItemStatus, Role};
pub use response::{
    CachedTokenDetails, ConversationMode, InputTokenDetails, LogProb, METADATA_MAX_KEY_CHARS,
    METADATA_MAX_PAIRS, METADATA_MAX_VALUE_CHARS, Metadata, OutputTokenDetails, RateLimit, RateLimitName,
    Response, ResponseInput, ResponseParams, ResponseStatus, StatusDetails, StatusError, StatusReason,
    TranscriptionTokenDetails, TranscriptionUsage, Usage,
};
