//! The neutral request and response every HTTP adapter converts to and from. No framework type crosses this
//! line (actix-web and axum even disagree on the `http` crate version), so both adapters behave identically.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::IpAddr;

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// OPTIONS.
    Options,
    /// Anything else (`TRACE`, `CONNECT`, extensions): always `method_not_allowed`.
    Other,
}

impl Method {
    /// Parses an upper-case method name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => return None,
        })
    }

    /// Parses any method name, mapping unknown ones to [`Method::Other`].
    pub fn from_name(name: &str) -> Self {
        Self::parse(name).unwrap_or(Method::Other)
    }

    /// Upper-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// Request headers with lower-case names, in arrival order.
///
/// Every name and value is copied into one buffer, so converting a request costs two allocations whatever its
/// number of headers (adapters size both up front with [`Headers::with_capacity`]).
#[derive(Clone, Default)]
pub struct Headers {
    /// Names (lower-cased) and values back to back: header `i` is `text[start..name_end]` then
    /// `text[name_end..value_end]`, where `start` is the previous header's `value_end` (0 for the first).
    text: String,
    /// `(name_end, value_end)` per header, in arrival order.
    ends: Vec<(usize, usize)>,
}

impl Headers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for `headers` headers totalling `bytes` bytes of names and values.
    pub fn with_capacity(headers: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(headers),
        }
    }

    /// Adds a header (the name is lower-cased). Values that are not UTF-8 are dropped by adapters.
    pub fn push(&mut self, name: &str, value: impl AsRef<str>) {
        let start = self.text.len();
        self.text.push_str(name);
        if let Some(pushed) = self.text.get_mut(start..) {
            pushed.make_ascii_lowercase();
        }
        let name_end = self.text.len();
        self.text.push_str(value.as_ref());
        self.ends.push((name_end, self.text.len()));
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let name = self.text.get(start..name_end).unwrap_or_default();
            let value = self.text.get(name_end..value_end).unwrap_or_default();
            start = value_end;
            (name, value)
        })
    }

    /// The number of headers.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Headers")
            .field(&self.iter().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        let mut h = Headers::new();
        for (n, v) in iter {
            h.push(n.as_ref(), v);
        }
        h
    }
}

/// A request as the adapters hand it over.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// Method.
    pub method: Method,
    /// Path, percent-decoding left to the router (`/api/v2/projects/…`).
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    /// Headers.
    pub headers: Headers,
    /// Body bytes (adapters stop reading past [`crate::AppConfig::max_body_bytes`]).
    pub body: Vec<u8>,
    /// The adapter stopped reading because the body exceeded the limit (answered `payload_too_large`).
    pub oversized: bool,
    /// The peer's address.
    pub peer: Option<IpAddr>,
}

impl ApiRequest {
    /// A request with no headers, query or body (tests, health probes).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: String::new(),
            headers: Headers::new(),
            body: Vec::new(),
            oversized: false,
            peer: None,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets a JSON body.
    #[must_use]
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.headers.push("content-type", "application/json");
        self
    }

    /// Sets the query string.
    #[must_use]
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = query.into();
        self
    }
}

/// Text of a response header: borrowed for the constant names and values the pipeline sets (security headers,
/// `content-type`, CORS), owned for the rest (request id, rate-limit figures).
pub type HeaderText = Cow<'static, str>;

/// Headers a response has room for before its list grows: the pipeline adds up to 15 (`content-type`,
/// `x-request-id`, the six security headers, three `x-ratelimit-*`, four CORS headers) besides `allow` or
/// `retry-after`.
const RESPONSE_HEADERS: usize = 16;

/// Largest JSON scratch buffer a thread keeps between responses.
const JSON_SCRATCH_KEEP: usize = 256 * 1024;

thread_local! {
    /// Where [`ApiResponse::json`] writes a body before copying it out at its exact size: one allocation per
    /// body, none for growing it, and a body the adapters hand to the framework without another allocation
    /// (`Bytes` from a `Vec` with spare capacity needs one).
    static JSON_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// `body` as JSON (`{}` if it cannot be serialised), in a vector of exactly its length.
fn json_bytes(body: &impl serde::Serialize) -> Vec<u8> {
    let scratch = JSON_SCRATCH.try_with(|scratch| {
        let mut scratch = scratch.try_borrow_mut().ok()?;
        scratch.clear();
        let bytes = serde_json::to_writer(&mut *scratch, body)
            .ok()
            .map(|()| scratch.to_vec());
        if scratch.capacity() > JSON_SCRATCH_KEEP {
            *scratch = Vec::new();
        }
        Some(bytes)
    });
    match scratch {
        Ok(Some(bytes)) => bytes,
        // No scratch buffer on this thread right now (being torn down): serialise directly.
        Ok(None) | Err(_) => serde_json::to_vec(body).ok(),
    }
    .unwrap_or_else(|| b"{}".to_vec())
}

/// A response for the adapter to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// Status code.
    pub status: u16,
    /// Headers (names lower-case), in the order they are to be sent.
    pub headers: Vec<(HeaderText, HeaderText)>,
    /// Body.
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON response.
    pub fn json(status: u16, body: &impl serde::Serialize) -> Self {
        Self::with_content_type(status, Cow::Borrowed("application/json"), json_bytes(body))
    }

    /// An empty response.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::with_capacity(RESPONSE_HEADERS),
            body: Vec::new(),
        }
    }

    /// A response with a content type.
    pub fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self::with_content_type(status, Cow::Owned(content_type.to_owned()), body)
    }

    pub(crate) fn with_content_type(status: u16, content_type: HeaderText, body: Vec<u8>) -> Self {
        let mut headers = Vec::with_capacity(RESPONSE_HEADERS);
        headers.push((Cow::Borrowed("content-type"), content_type));
        Self {
            status,
            headers,
            body,
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// Sets (replaces) a header. Copies both; [`ApiResponse::insert_header`] takes constant text as it is.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.insert(Cow::Owned(name.to_ascii_lowercase()), Cow::Owned(value.into()));
    }

    /// Sets (replaces) a header with a constant name, and a value that is copied only when it is not constant.
    pub fn insert_header(&mut self, name: &'static str, value: impl Into<HeaderText>) {
        self.insert(lower_case(name), value.into());
    }

    fn insert(&mut self, name: HeaderText, value: HeaderText) {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
    }
}

/// `name` as it is when already lower-case (every constant in this crate), else a lower-cased copy.
fn lower_case(name: &'static str) -> HeaderText {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn headers_keep_arrival_order_with_lower_case_names() {
        let mut headers = Headers::with_capacity(3, 64);
        headers.push("X-Request-ID", "Req-1");
        headers.push("host", "api.example:8000");
        headers.push("Empty", "");
        headers.push("x-request-id", "second");
        assert_eq!(headers.len(), 4);
        assert_eq!(headers.get("x-request-id"), Some("Req-1"));
        assert_eq!(headers.get("HOST"), Some("api.example:8000"));
        assert_eq!(headers.get("empty"), Some(""));
        assert_eq!(headers.get("origin"), None);
        let all: Vec<_> = headers.iter().collect();
        assert_eq!(
            all,
            [
                ("x-request-id", "Req-1"),
                ("host", "api.example:8000"),
                ("empty", ""),
                ("x-request-id", "second")
            ]
        );
        let collected: Headers = all.iter().copied().collect();
        assert_eq!(collected, headers);
        assert_ne!(Headers::new(), headers);
        assert_eq!(
            format!("{:?}", Headers::from_iter([("A", "b")])),
            r#"Headers([("a", "b")])"#
        );
    }

    #[test]
    fn response_headers_replace_earlier_values_and_go_last() {
        let mut response = ApiResponse::json(200, &serde_json::json!({"b": 1, "a": [true, null]}));
        assert_eq!(response.body, br#"{"a":[true,null],"b":1}"#);
        assert_eq!(response.body.capacity(), response.body.len());
        response.insert_header("x-one", "1");
        response.set_header("X-Two", String::from("2"));
        response.insert_header("X-One", String::from("uno"));
        let names: Vec<&str> = response.headers.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, ["content-type", "x-two", "x-one"]);
        assert_eq!(response.header("x-one"), Some("uno"));
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            ApiResponse::with_body(200, "text/plain", b"hi".to_vec()).header("Content-Type"),
            Some("text/plain")
        );
    }
}
