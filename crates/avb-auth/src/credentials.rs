//! Reading credentials from a request, framework-free (issue 3): `Authorization: Bearer`, `X-API-Key`, the
//! WebSocket query (`?token=` / `?api_key=`) and the `openai-insecure-api-key.<key>` WebSocket subprotocol that the
//! OpenAI SDKs use from browsers. The HTTP adapters only copy header and query values in; this decides.

use crate::{Error, Result};

/// Marker of an ephemeral realtime client secret.
pub const CLIENT_SECRET_MARKER: &str = "ek_";
/// Marker of an API key.
pub const API_KEY_MARKER: &str = "avb_";
/// Prefix of the subprotocol that carries a key (`openai-insecure-api-key.<key>`).
pub const INSECURE_KEY_PROTOCOL: &str = "openai-insecure-api-key.";

/// A presented credential, classified by its shape.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A JWT for the identity provider.
    Jwt(String),
    /// An `avb_…` API key.
    ApiKey(String),
    /// An `ek_…` ephemeral realtime client secret.
    ClientSecret(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials never reach a log: only their kind.
        f.write_str(match self {
            Credential::Jwt(_) => "Credential::Jwt(<redacted>)",
            Credential::ApiKey(_) => "Credential::ApiKey(<redacted>)",
            Credential::ClientSecret(_) => "Credential::ClientSecret(<redacted>)",
        })
    }
}

impl Credential {
    /// Classifies a raw secret by its marker.
    pub fn classify(raw: &str) -> Credential {
        if raw.starts_with(API_KEY_MARKER) {
            Credential::ApiKey(raw.to_owned())
        } else if raw.starts_with(CLIENT_SECRET_MARKER) {
            Credential::ClientSecret(raw.to_owned())
        } else {
            Credential::Jwt(raw.to_owned())
        }
    }
}

/// Where credentials may come from; adapters fill what the request has.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialSources<'a> {
    /// `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// `X-API-Key` header value.
    pub x_api_key: Option<&'a str>,
    /// `?token=` (WebSocket only).
    pub query_token: Option<&'a str>,
    /// `?api_key=` (WebSocket only).
    pub query_api_key: Option<&'a str>,
    /// `Sec-WebSocket-Protocol` header value (comma-separated list).
    pub websocket_protocols: Option<&'a str>,
}

/// Largest credential accepted from any source (JWTs are capped at 16 KiB elsewhere too).
const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// Extracts at most one credential. No credential at all is `Ok(None)` (anonymous, deliberately); a malformed
/// header or two *different* credentials are `authentication_failed`, never a silent choice or fall-back.
pub fn extract(sources: &CredentialSources<'_>) -> Result<Option<Credential>> {
    let mut found: Vec<String> = Vec::new();
    if let Some(header) = sources.authorization {
        let (scheme, value) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") || value.trim().is_empty() {
            return Err(Error::AuthenticationFailed(
                "Authorization must be 'Bearer <credential>'".into(),
            ));
        }
        found.push(value.trim().to_owned());
    }
    for raw in [sources.x_api_key, sources.query_token, sources.query_api_key]
        .into_iter()
        .flatten()
    {
        if raw.trim().is_empty() {
            return Err(Error::AuthenticationFailed("empty credential".into()));
        }
        found.push(raw.trim().to_owned());
    }
    if let Some(protocols) = sources.websocket_protocols {
        for protocol in protocols.split(',').map(str::trim) {
            if let Some(key) = protocol.strip_prefix(INSECURE_KEY_PROTOCOL) {
                found.push(key.to_owned());
            }
        }
    }
    found.dedup();
    match found.as_slice() {
        [] => Ok(None),
        [one] if one.len() > MAX_CREDENTIAL_BYTES => Err(Error::InvalidToken("credential too large".into())),
        [one] => Ok(Some(Credential::classify(one))),
        _ => Err(Error::AuthenticationFailed(
            "more than one credential presented".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_classified_by_marker() {
        let s = |a| CredentialSources {
            authorization: Some(a),
            ..Default::default()
        };
        assert_eq!(
            extract(&s("Bearer avb_abc")).unwrap(),
            Some(Credential::ApiKey("avb_abc".into()))
        );
        assert_eq!(
            extract(&s("bearer ek_abc")).unwrap(),
            Some(Credential::ClientSecret("ek_abc".into()))
        );
        assert_eq!(
            extract(&s("Bearer eyJ.x.y")).unwrap(),
            Some(Credential::Jwt("eyJ.x.y".into()))
        );
        assert!(extract(&s("Basic dXNlcg==")).is_err());
        assert!(extract(&s("Bearer ")).is_err());
    }

    #[test]
    fn subprotocol_key_and_query_are_read() {
        let src = CredentialSources {
            websocket_protocols: Some("realtime, openai-insecure-api-key.avb_k, openai-beta.realtime-v1"),
            ..Default::default()
        };
        assert_eq!(extract(&src).unwrap(), Some(Credential::ApiKey("avb_k".into())));
        let src = CredentialSources {
            query_token: Some("ek_1"),
            ..Default::default()
        };
        assert_eq!(
            extract(&src).unwrap(),
            Some(Credential::ClientSecret("ek_1".into()))
        );
    }

    #[test]
    fn conflicting_credentials_are_refused_and_absence_is_anonymous() {
        let src = CredentialSources {
            authorization: Some("Bearer avb_a"),
            x_api_key: Some("avb_b"),
            ..Default::default()
        };
        assert!(extract(&src).is_err());
        let same = CredentialSources {
            authorization: Some("Bearer avb_a"),
            x_api_key: Some("avb_a"),
            ..Default::default()
        };
        assert!(extract(&same).unwrap().is_some());
        assert_eq!(extract(&CredentialSources::default()).unwrap(), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert!(!format!("{:?}", Credential::ApiKey("avb_secret".into())).contains("secret"));
    }
}
