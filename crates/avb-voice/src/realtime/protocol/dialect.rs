//! Which dialect a connection speaks, decided once from its WebSocket handshake (reference §1, §3, §11 items 3–4).

use std::fmt;

/// The two generations of the OpenAI Realtime protocol. A connection uses exactly one for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// The generally available protocol (`conversation.item.added`, `response.output_audio.delta`, nested
    /// `audio.input` / `audio.output` session config). Chosen when the client sends no beta marker.
    #[default]
    Ga,
    /// The beta protocol selected by `OpenAI-Beta: realtime=v1` or the `openai-beta.realtime-v1` subprotocol
    /// (`conversation.item.created`, `response.audio.delta`, flat session config).
    Beta,
}

impl Dialect {
    /// A short lowercase name (`ga`, `beta`) for logs and stored session records.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ga => "ga",
            Self::Beta => "beta",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request header that marks a beta client (`OpenAI-Beta: realtime=v1`).
pub const BETA_HEADER: &str = "OpenAI-Beta";
/// The value of [`BETA_HEADER`] (one comma-separated entry of it) that selects the beta dialect.
pub const BETA_HEADER_VALUE: &str = "realtime=v1";
/// The subprotocol browser-style clients offer and the server must select (reference §1: the handshake fails
/// on the client otherwise).
pub const SUBPROTOCOL_REALTIME: &str = "realtime";
/// The subprotocol that marks a beta browser-style client.
pub const SUBPROTOCOL_BETA: &str = "openai-beta.realtime-v1";
/// Prefix of the subprotocol that carries the API key of browser-style clients. Never echo such an entry.
pub const SUBPROTOCOL_API_KEY_PREFIX: &str = "openai-insecure-api-key.";

/// What the handshake decided: the dialect, the subprotocol to answer with, and a key offered as subprotocol.
///
/// Built by [`Handshake::negotiate`], a pure function of the request's `OpenAI-Beta` and `Sec-WebSocket-Protocol`
/// header values, so both HTTP frameworks agree. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct Handshake {
    dialect: Dialect,
    subprotocol: Option<&'static str>,
    api_key: Option<String>,
}

impl Handshake {
    /// Decides the dialect and subprotocol.
    ///
    /// `openai_beta` are the values of every `OpenAI-Beta` header and `protocols` those of every
    /// `Sec-WebSocket-Protocol` header; each value may hold several comma-separated entries. The connection is
    /// [`Dialect::Beta`] iff an `OpenAI-Beta` entry equals `realtime=v1` (ASCII case-insensitive) or the
    /// `openai-beta.realtime-v1` subprotocol is offered; otherwise [`Dialect::Ga`]. The selected subprotocol is
    /// exactly `realtime` when offered and none otherwise: the key-bearing entry is never selected.
    pub fn negotiate<'a>(
        openai_beta: impl IntoIterator<Item = &'a str>,
        protocols: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let beta_header = openai_beta
            .into_iter()
            .flat_map(|v| v.split(','))
            .any(|entry| entry.trim().eq_ignore_ascii_case(BETA_HEADER_VALUE));
        let mut beta_protocol = false;
        let mut realtime = false;
        let mut api_key = None;
        for entry in protocols.into_iter().flat_map(|v| v.split(',')).map(str::trim) {
            if entry == SUBPROTOCOL_BETA {
                beta_protocol = true;
            } else if entry == SUBPROTOCOL_REALTIME {
                realtime = true;
            } else if let Some(key) = entry.strip_prefix(SUBPROTOCOL_API_KEY_PREFIX)
                && api_key.is_none()
                && !key.is_empty()
            {
                api_key = Some(key.to_owned());
            }
        }
        Self {
            dialect: if beta_header || beta_protocol {
                Dialect::Beta
            } else {
                Dialect::Ga
            },
            subprotocol: realtime.then_some(SUBPROTOCOL_REALTIME),
            api_key,
        }
    }

    /// The connection's dialect.
    pub const fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The subprotocol to put in the 101 response's `Sec-WebSocket-Protocol`, if any.
    pub const fn subprotocol(&self) -> Option<&'static str> {
        self.subprotocol
    }

    /// The API key (or `ek_` client secret) offered as `openai-insecure-api-key.<key>`, for authentication by
    /// browser-style clients that cannot set `Authorization`.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("dialect", &self.dialect)
            .field("subprotocol", &self.subprotocol)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_handshake_is_ga_without_subprotocol() {
        let h = Handshake::negotiate([], []);
        assert_eq!(h.dialect(), Dialect::Ga);
        assert_eq!(h.subprotocol(), None);
        assert_eq!(h.api_key(), None);
    }

    #[test]
    fn beta_header_selects_beta_among_other_entries() {
        let h = Handshake::negotiate(["assistants=v2, Realtime=V1"], []);
        assert_eq!(h.dialect(), Dialect::Beta);
        assert_eq!(Handshake::negotiate(["assistants=v2"], []).dialect(), Dialect::Ga);
    }

    #[test]
    fn browser_beta_client_gets_realtime_and_never_its_key_echoed() {
        let h = Handshake::negotiate(
            [],
            ["realtime, openai-insecure-api-key.sk-test, openai-beta.realtime-v1"],
        );
        assert_eq!(h.dialect(), Dialect::Beta);
        assert_eq!(h.subprotocol(), Some("realtime"));
        assert_eq!(h.api_key(), Some("sk-test"));
        assert!(!format!("{h:?}").contains("sk-test"));
    }

    #[test]
    fn key_only_offer_selects_no_subprotocol() {
        let h = Handshake::negotiate([], ["openai-insecure-api-key.k1", "openai-insecure-api-key.k2"]);
        assert_eq!(h.subprotocol(), None);
        assert_eq!(h.api_key(), Some("k1"));
        assert_eq!(h.dialect(), Dialect::Ga);
    }
}
