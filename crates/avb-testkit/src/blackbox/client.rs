//! One request over HTTP and its answer, decoded enough for assertions that print what was received.

use crate::blackbox::launch::Target;
use serde_json::Value;
use std::collections::BTreeSet;

/// A request being built; [`Call::send`] sends it.
#[derive(Debug)]
pub struct Call<'a> {
    target: &'a Target,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(target: &'a Target, method: &str, path: &str) -> Self {
        Self {
            target,
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// `Authorization: Bearer <credential>` (a JWT or an `avb_` API key).
    #[must_use]
    pub fn bearer(self, credential: &str) -> Self {
        self.header("authorization", format!("Bearer {credential}"))
    }

    /// `X-API-Key: <key>`.
    #[must_use]
    pub fn api_key(self, key: &str) -> Self {
        self.header("x-api-key", key)
    }

    /// A JSON body.
    #[must_use]
    pub fn json(self, body: &Value) -> Self {
        self.raw("application/json", body.to_string().into_bytes())
    }

    /// A body with a content type, sent as is (malformed JSON, oversized payloads).
    #[must_use]
    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers.push(("content-type".into(), content_type.into()));
        self.body = Some(body);
        self
    }

    /// Sends the request; `Err` only when no HTTP answer arrived.
    pub async fn send(self) -> Result<Reply, String> {
        let what = format!("{} {}", self.method, self.path);
        let method =
            reqwest::Method::from_bytes(self.method.as_bytes()).map_err(|e| format!("{what}: {e}"))?;
        let url = format!("{}{}", self.target.base_url, self.path);
        let mut request = self.target.client.request(method, url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = self.body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{what}: reading the body: {e}"))?
            .to_vec();
        Ok(Reply {
            what,
            status,
            headers,
            body,
        })
    }
}

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `METHOD path`, for messages.
    pub what: String,
    /// Status code.
    pub status: u16,
    /// Headers with lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header name.
    pub fn header_names(&self) -> BTreeSet<String> {
        self.headers.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The envelope's `error` code (empty when there is none).
    pub fn code(&self) -> String {
        self.json()
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// `Err` unless the status is `status`.
    pub fn expect(&self, status: u16) -> Result<&Self, String> {
        if self.status == status {
            Ok(self)
        } else {
            Err(format!(
                "{}: expected {status}, got {}; {}",
                self.what,
                self.status,
                self.shown()
            ))
        }
    }

    /// `Err` unless this is the `{"error","message","details"}` envelope with `status` and `code`.
    pub fn expect_error(&self, status: u16, code: &str) -> Result<&Self, String> {
        let body = self.json();
        let envelope = body.get("error").is_some_and(Value::is_string)
            && body.get("message").is_some_and(Value::is_string)
            && body.get("details").is_some()
            && body.as_object().is_some_and(|o| o.len() == 3);
        if self.status == status && self.code() == code && envelope {
            Ok(self)
        } else {
            Err(format!(
                "{}: expected {status} with the {code:?} envelope, got {}; {}",
                self.what,
                self.status,
                self.shown()
            ))
        }
    }

    /// `Err` unless header `name` is exactly `value`.
    pub fn expect_header(&self, name: &str, value: &str) -> Result<&Self, String> {
        match self.header(name) {
            Some(v) if v == value => Ok(self),
            got => Err(format!(
                "{}: header {name}: expected {value:?}, got {got:?}",
                self.what
            )),
        }
    }

    /// The body (truncated) and headers, for failure messages.
    pub fn shown(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(600).collect();
        format!("body: {body}; headers: {:?}", self.headers)
    }
}

/// The value at a JSON pointer (`"/details/max_bytes"`), or `Null` when absent.
pub fn field<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}
