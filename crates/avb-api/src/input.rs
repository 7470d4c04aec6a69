//! What a handler receives (path parameters, query, body and, for routes that ask for them, headers) and
//! returns.

use crate::error::ApiError;
use crate::http::Headers;
use avb_core::{ErrorCode, FieldErrors, PageRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parsed request input.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Path parameters by name.
    pub params: Vec<(String, String)>,
    /// Raw query string.
    pub query: String,
    /// Body bytes, exactly as received (signatures over the raw body verify against these).
    pub body: Vec<u8>,
    /// The request headers, for routes that declare they need them ([`crate::routes::Route::headers`], e.g.
    /// webhooks whose signature travels in a header); `None` on every other route, so reading a request costs
    /// no copy of its headers there.
    pub headers: Option<Headers>,
    /// The tenant record resolution found for this request (the one `ctx.tenant()` names), at most a few
    /// seconds old: handlers that only need the caller's tenant record read it here instead of the store.
    pub tenant: Option<std::sync::Arc<avb_tenancy::model::Tenant>>,
}

impl Input {
    /// The request headers (lower-case names, arrival order); empty on routes that do not ask for them.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().flat_map(Headers::iter)
    }

    /// The first value of header `name` (case-insensitive), on routes that ask for headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref().and_then(|h| h.get(name))
    }

    /// A path parameter parsed with `FromStr` (typed ids parse UUIDs): a bad value is `not_found`, since no
    /// resource can have that id.
    pub fn param<T: std::str::FromStr>(&self, name: &str) -> Result<T, ApiError> {
        let raw = self
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        raw.parse::<T>()
            .map_err(|_| ApiError::with_message(ErrorCode::NotFound, "Resource not found"))
    }

    /// The query string deserialised into `T`; failures are `validation_error` naming the query.
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_urlencoded::from_str::<T>(&self.query)
            .map_err(|e| FieldErrors::single("query", "format", e.to_string()).into())
    }

    /// Pagination from `limit` and `offset` query parameters.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        #[derive(serde::Deserialize)]
        struct Paging {
            limit: Option<u32>,
            offset: Option<u64>,
        }
        let paging: Paging = serde_urlencoded::from_str(&self.query)
            .map_err(|e| ApiError::from(FieldErrors::single("query", "format", e.to_string())))?;
        Ok(PageRequest::new(paging.limit, paging.offset)?)
    }

    /// The JSON body deserialised into `T`. An empty body is treated as `{}` so all-optional patches work;
    /// malformed JSON and wrong field types are `validation_error` with the position.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice::<T>(body).map_err(|e| {
            let mut fields = FieldErrors::new();
            fields.push("body", "format", format!("invalid JSON body: {e}"));
            fields.into()
        })
    }
}

/// A handler's successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Body.
    pub body: ReplyBody,
}

/// Body of a [`Reply`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyBody {
    /// JSON.
    Json(serde_json::Value),
    /// Other content.
    Raw {
        /// `Content-Type`.
        content_type: &'static str,
        /// Bytes.
        bytes: Vec<u8>,
    },
    /// Nothing.
    Empty,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn ok(body: &impl Serialize) -> Result<Self, ApiError> {
        Self::with_status(200, body)
    }

    /// 201 with a JSON body.
    pub fn created(body: &impl Serialize) -> Result<Self, ApiError> {
        Self::with_status(201, body)
    }

    /// 204, no body.
    pub fn no_content() -> Result<Self, ApiError> {
        Ok(Self {
            status: 204,
            body: ReplyBody::Empty,
        })
    }

    /// Any status with a JSON body.
    pub fn with_status(status: u16, body: &impl Serialize) -> Result<Self, ApiError> {
        let value = serde_json::to_value(body).map_err(|e| ApiError {
            cause: Some(e.to_string()),
            ..ApiError::new(ErrorCode::InternalError)
        })?;
        Ok(Self {
            status,
            body: ReplyBody::Json(value),
        })
    }

    /// 200 with `text/plain` (Prometheus exposition format).
    pub fn text(text: String) -> Self {
        Self {
            status: 200,
            body: ReplyBody::Raw {
                content_type: "text/plain; version=0.0.4",
                bytes: text.into_bytes(),
            },
        }
    }

    /// 200 with any content type (documentation assets).
    pub fn raw(content_type: &'static str, bytes: Vec<u8>) -> Self {
        Self {
            status: 200,
            body: ReplyBody::Raw { content_type, bytes },
        }
    }
}
