//! # avb-http-axum
//!
//! Serves an [`avb_api::App`] with axum. This crate only translates: an axum request becomes an
//! [`avb_api::ApiRequest`], [`avb_api::App::handle`] runs the whole pipeline (auth, tenant, rate limits, audit,
//! errors, security headers), and the [`avb_api::ApiResponse`] becomes an axum response. Behaviour therefore
//! cannot drift from other adapters.
//!
//! WebSocket upgrades to a realtime path (`/v1/realtime`, any path ending in `/realtime`) go to
//! [`avb_api::App::realtime_accept`] instead; an accepted socket is pumped frame by frame into
//! [`avb_api::realtime::RealtimeConnection::run`] and closed with the code it returns. Upgrades to `/ws/v2/*` go to
//! [`avb_api::App::ws_v2_accept`] and are pumped the same way into [`avb_api::ws_v2::WsV2Connection::run`].
//!
//! Mount [`router`] on its own, or [`nest`](axum::Router::nest) it under a path of an existing axum application.
//! [`serve`] serves plain HTTP, [`serve_tls`] HTTPS/WSS (the Node OpenAI SDK only dials `wss://`).
#![deny(missing_docs)]

use avb_api::http::HeaderText;
use avb_api::realtime::{ClientFrame, FrameSource, RealtimeRequest, TextFrame, is_realtime_path};
use avb_api::ws_v2::{WsV2Request, is_ws_v2_path};
use avb_api::{ApiRequest, App, Headers, Method};
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::{InvalidHeaderName, InvalidHeaderValue};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use std::borrow::Cow;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// Largest WebSocket message accepted: a 15 MiB `input_audio_buffer.append` is ~20 MiB of base64 plus JSON.
pub const MAX_WS_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Read buffer per socket. tungstenite's default (128 KiB) costs ~136 KiB per idle connection, and tungstenite
/// zero-fills the free part of the buffer before every read (twice per 20 ms audio frame: the read that gets
/// it and the one that finds the socket empty), which at 8 KiB was 2.5 % of the server's CPU with a thousand
/// streaming sessions. A 20 ms append is ~1.4 KB; larger messages take a few more reads.
const WS_READ_BUFFER_BYTES: usize = 4 * 1024;

/// A router answering every path through `app`. Peer addresses are read when the server is started with
/// `into_make_service_with_connect_info::<SocketAddr>()` (as [`serve`] does).
pub fn router(app: App) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

/// The one handler: convert, call, convert back.
async fn handle(State(app): State<App>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (mut parts, body) = request.into_parts();
    if parts.method == axum::http::Method::GET
        && is_realtime_path(parts.uri.path())
        && parts.headers.contains_key(axum::http::header::UPGRADE)
    {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &app).await {
            Ok(upgrade) => realtime(app, upgrade, &parts, peer).await,
            Err(rejection) => rejection.into_response(),
        };
    }
    if parts.method == axum::http::Method::GET
        && is_ws_v2_path(parts.uri.path())
        && parts.headers.contains_key(axum::http::header::UPGRADE)
    {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &app).await {
            Ok(upgrade) => ws_v2(app, upgrade, &parts, peer).await,
            Err(rejection) => rejection.into_response(),
        };
    }
    let limit = app.inner().config.max_body_bytes;
    let (body, oversized) = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => (bytes, false),
        Err(_) => (Bytes::new(), true),
    };
    let api_request = ApiRequest {
        method: Method::from_name(parts.method.as_str()),
        // When nested under a prefix, axum hands us the path below the mount point, which is exactly the
        // API's own route space (`/api/v2/…`).
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: headers_of(&parts.headers),
        body: Vec::from(body),
        oversized,
        peer,
    };
    to_axum(app.handle(api_request).await)
}

/// The request's headers (those with a text value), copied into one buffer sized up front.
fn headers_of(map: &axum::http::HeaderMap) -> Headers {
    let bytes = map
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let mut headers = Headers::with_capacity(map.len(), bytes);
    for (name, value) in map {
        if let Ok(value) = value.to_str() {
            headers.push(name.as_str(), value);
        }
    }
    headers
}

/// A realtime upgrade: the app decides, then the socket is pumped.
async fn realtime(
    app: App,
    upgrade: WebSocketUpgrade,
    parts: &axum::http::request::Parts,
    peer: Option<std::net::IpAddr>,
) -> Response {
    let request = RealtimeRequest {
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: headers_of(&parts.headers),
        peer,
    };
    match app.realtime_accept(request).await {
        Ok(accept) => {
            let connection = accept.connection;
            let buffer = app.inner().config.realtime.outbound_buffer;
            upgraded(
                upgrade.protocols(accept.subprotocol),
                accept.headers,
                buffer,
                |frames, out| connection.run(frames, out),
            )
        }
        Err(refusal) => to_axum(refusal),
    }
}

/// A `/ws/v2` upgrade: the app decides; refusals are upgraded too and closed with the spec's code (4001 …) by
/// the connection itself, so only a path naming no consumer is answered without a socket.
async fn ws_v2(
    app: App,
    upgrade: WebSocketUpgrade,
    parts: &axum::http::request::Parts,
    peer: Option<std::net::IpAddr>,
) -> Response {
    let request = WsV2Request {
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: headers_of(&parts.headers),
        peer,
    };
    match app.ws_v2_accept(request).await {
        Ok(accept) => {
            let connection = accept.connection;
            let buffer = app.inner().config.realtime.outbound_buffer;
            upgraded(upgrade, accept.headers, buffer, |frames, out| {
                connection.run(frames, out)
            })
        }
        Err(refusal) => to_axum(refusal),
    }
}

/// Answers `101` (with the app's extra headers) and pumps the socket into `run`, buffering up to `buffer`
/// frames towards the client.
fn upgraded<F, Fut>(
    upgrade: WebSocketUpgrade,
    headers: Vec<(String, String)>,
    buffer: usize,
    run: F,
) -> Response
where
    F: FnOnce(SocketFrames, mpsc::Sender<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = avb_api::realtime::CloseFrame> + Send + 'static,
{
    let upgrade = upgrade
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .max_frame_size(MAX_WS_MESSAGE_BYTES);
    let mut response = upgrade.on_upgrade(move |socket| pump(socket, buffer, run));
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The socket's read half as the connection's [`FrameSource`]: the connection's own task reads the socket (no
/// reader task, no channel per frame). Pings are answered by tungstenite itself; a close frame or a failed read
/// ends the input.
struct SocketFrames(SplitStream<WebSocket>);

impl FrameSource for SocketFrames {
    // Cancel-safe: `StreamExt::next` is, and a ping or pong it returned is already handled.
    async fn next_frame(&mut self) -> Option<ClientFrame> {
        loop {
            return match self.0.next().await? {
                // The frame's buffer is handed over, not copied (tungstenite has checked it is UTF-8).
                Ok(Message::Text(text)) => Some(ClientFrame::Text(
                    TextFrame::from_utf8(Bytes::from(text)).unwrap_or_default(),
                )),
                Ok(Message::Binary(bytes)) => Some(ClientFrame::Binary(bytes.len())),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(Message::Close(_)) | Err(_) => None,
            };
        }
    }
}

/// Runs the connection over the socket until it ends, writing its frames, then closes with its code.
async fn pump<F, Fut>(socket: WebSocket, buffer: usize, run: F)
where
    F: FnOnce(SocketFrames, mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = avb_api::realtime::CloseFrame>,
{
    let (mut sink, stream) = socket.split();
    let (to_socket, mut from_session) = mpsc::channel::<String>(buffer.max(1));
    // The writer is a task of its own: joined with `run`, its empty channel would be polled again every time
    // the connection's task wakes for a client frame (fifty times a second per streaming session), while it
    // has something to write only a few times a second. It ends when the connection drops its sender.
    let writer = tokio::spawn(async move {
        while let Some(frame) = from_session.recv().await {
            if sink.feed(Message::Text(frame.into())).await.is_err() {
                return None;
            }
            // Batch whatever else is ready into one flush.
            while let Ok(frame) = from_session.try_recv() {
                if sink.feed(Message::Text(frame.into())).await.is_err() {
                    return None;
                }
            }
            if sink.flush().await.is_err() {
                return None;
            }
        }
        Some(sink)
    });
    let close = run(SocketFrames(stream), to_socket).await;
    if let Ok(Some(mut sink)) = writer.await {
        let frame = CloseFrame {
            code: close.code,
            reason: close.reason.into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    }
}

fn to_axum(response: avb_api::ApiResponse) -> Response {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (header_name(&name), header_value(value)) {
            headers.append(name, value);
        }
    }
    *out.headers_mut() = headers;
    out
}

// The pipeline's header names that `http` does not know (it knows the standard ones without allocating).
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A response header name, without copying the ones the pipeline sends on every response.
fn header_name(name: &str) -> Result<HeaderName, InvalidHeaderName> {
    Ok(match name {
        "x-request-id" => X_REQUEST_ID,
        "permissions-policy" => PERMISSIONS_POLICY,
        "x-ratelimit-limit" => X_RATELIMIT_LIMIT,
        "x-ratelimit-remaining" => X_RATELIMIT_REMAINING,
        "x-ratelimit-reset" => X_RATELIMIT_RESET,
        _ => return HeaderName::from_bytes(name.as_bytes()),
    })
}

/// A response header value: constant text is used in place, owned text is handed over without a copy.
fn header_value(value: HeaderText) -> Result<HeaderValue, InvalidHeaderValue> {
    match value {
        Cow::Borrowed(text) => HeaderValue::from_maybe_shared(Bytes::from_static(text.as_bytes())),
        Cow::Owned(text) => HeaderValue::try_from(text),
    }
}

/// Turns Nagle's algorithm off on an accepted connection. With it on, a small write that follows another
/// before the peer's acknowledgement is held back until that acknowledgement comes: a realtime client that
/// acknowledges only with its next 20 ms audio frame then gets, say, a barge-in's `response.done` one frame late
/// (measured at 200–300 sessions: barge-in p99 21 ms with it, 2.7–4.6 ms without). axum 0.8 leaves the option
/// to the listener.
pub fn without_nagle(tcp: &mut tokio::net::TcpStream) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(error = %err, "could not set TCP_NODELAY on an accepted connection");
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener.tap_io(without_nagle),
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// TLS settings for [`serve_tls`]: a certificate chain and private key in PEM.
pub type TlsConfig = axum_server::tls_rustls::RustlsConfig;

/// Loads PEM files into a [`TlsConfig`].
pub async fn tls_from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<TlsConfig> {
    TlsConfig::from_pem_file(cert, key).await
}

/// Serves `app` over TLS (HTTPS and WSS) on `listener` until `shutdown` resolves, then stops accepting and
/// waits for in-flight requests (open WebSockets get `grace` to finish).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: App,
    tls: TlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: std::time::Duration,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(grace));
    });
    // Nagle off as on the plain path (see `without_nagle`), under the TLS layer.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    axum_server::from_tcp(listener.into_std()?)?
        .acceptor(acceptor)
        .handle(handle)
        .serve(router(app).into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// Binds `addr` with a listen backlog of 4096 (tokio's default of 128 drops connections under bursts).
pub fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[tokio::test]
    async fn accepted_connections_get_nagle_turned_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, client) = tokio::join!(listener.accept(), tokio::net::TcpStream::connect(addr));
        let (mut accepted, _) = accepted.unwrap();
        let _client = client.unwrap();
        assert!(!accepted.nodelay().unwrap(), "Nagle is on by default");
        super::without_nagle(&mut accepted);
        assert!(accepted.nodelay().unwrap());
    }
}
