//! # avb-http-actix
//!
//! Serves an [`avb_api::App`] with actix-web 4. This crate only translates: an actix request becomes an
//! [`avb_api::ApiRequest`], [`avb_api::App::handle`] runs the whole pipeline (auth, tenant, rate limits, audit,
//! errors, security headers), and the [`avb_api::ApiResponse`] becomes an actix response. Behaviour therefore
//! cannot drift from the axum adapter; `avb-testkit`'s black-box suite runs unchanged against both.
//!
//! Mount [`configure`] on its own (`actix_web::App::new().configure(configure(app))`), or inside a
//! [`scope`](actix_web::web::scope) of an existing actix application: the API's paths are absolute, so the adapter
//! always hands over the full request path.
//!
//! WebSocket upgrades are routed exactly as on axum: a realtime path (`/v1/realtime`, any path ending in
//! `/realtime`) goes to [`avb_api::App::realtime_accept`] and an accepted socket is pumped frame by frame into
//! [`avb_api::realtime::RealtimeConnection::run`]; `/ws/v2/*` goes to [`avb_api::App::ws_v2_accept`] and
//! [`avb_api::ws_v2::WsV2Connection::run`]. The socket is closed with the code the connection returns. The
//! WebSocket protocol itself is `actix-ws` (actix's own, actor-free).
#![deny(missing_docs)]

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use avb_api::http::HeaderText;
use avb_api::realtime::{ClientFrame, RealtimeRequest, TextFrame, is_realtime_path};
use avb_api::ws_v2::{WsV2Request, is_ws_v2_path};
use avb_api::{ApiRequest, App, Headers, Method};
use futures::StreamExt as _;
use std::borrow::Cow;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// Largest WebSocket message accepted (frame and reassembled message alike): a 15 MiB
/// `input_audio_buffer.append` is ~20 MiB of base64 plus JSON. The same limit as the axum adapter.
pub const MAX_WS_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Registers `app` as the default service: every path and method is answered through [`App::handle`].
pub fn configure(app: App) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::new(app))
            .default_service(web::to(handle));
    }
}

/// The one handler: convert, call, convert back.
async fn handle(app: web::Data<App>, request: HttpRequest, payload: web::Payload) -> HttpResponse {
    if request.method() == actix_web::http::Method::GET && request.headers().contains_key(header::UPGRADE) {
        if is_realtime_path(request.path()) {
            return realtime(app.get_ref().clone(), &request, payload).await;
        }
        if is_ws_v2_path(request.path()) {
            return ws_v2(app.get_ref().clone(), &request, payload).await;
        }
    }
    let limit = app.inner().config.max_body_bytes;
    let (body, oversized) = read_body(payload, limit).await;
    let api_request = ApiRequest {
        method: Method::from_name(request.method().as_str()),
        path: request.path().to_owned(),
        query: request.query_string().to_owned(),
        headers: headers_of(&request),
        body,
        oversized,
        peer: request.peer_addr().map(|addr| addr.ip()),
    };
    to_actix(app.handle(api_request).await)
}

/// The request's headers (those with a text value), copied into one buffer sized up front.
fn headers_of(request: &HttpRequest) -> Headers {
    let map = request.headers();
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
async fn realtime(app: App, request: &HttpRequest, payload: web::Payload) -> HttpResponse {
    // The handshake as actix-ws checks it (method, `Upgrade`, `Connection`, version, key) comes before the app
    // is asked, as with axum's `WebSocketUpgrade` extractor: a malformed handshake is the framework's answer.
    let (mut response, session, stream) = match actix_ws::handle(request, payload) {
        Ok(handshake) => handshake,
        Err(err) => return err.error_response(),
    };
    let accept = match app
        .realtime_accept(RealtimeRequest {
            path: request.path().to_owned(),
            query: request.query_string().to_owned(),
            headers: headers_of(request),
            peer: request.peer_addr().map(|addr| addr.ip()),
        })
        .await
    {
        Ok(accept) => accept,
        Err(refusal) => return to_actix(refusal),
    };
    // The app selects the subprotocol only among those the client offered (never the key-bearing entry).
    if let Some(protocol) = accept.subprotocol {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    }
    append_headers(&mut response, accept.headers);
    let connection = accept.connection;
    let buffer = app.inner().config.realtime.outbound_buffer;
    actix_web::rt::spawn(pump(session, stream, buffer, |i, o| connection.run(i, o)));
    response
}

/// A `/ws/v2` upgrade: the app decides; refusals are upgraded too and closed with the spec's code (4001 …) by
/// the connection itself, so only a path naming no consumer is answered without a socket.
async fn ws_v2(app: App, request: &HttpRequest, payload: web::Payload) -> HttpResponse {
    // The handshake as actix-ws checks it (method, `Upgrade`, `Connection`, version, key) comes before the app
    // is asked, as with axum's `WebSocketUpgrade` extractor: a malformed handshake is the framework's answer.
    let (mut response, session, stream) = match actix_ws::handle(request, payload) {
        Ok(handshake) => handshake,
        Err(err) => return err.error_response(),
    };
    let accept = match app
        .ws_v2_accept(WsV2Request {
            path: request.path().to_owned(),
            query: request.query_string().to_owned(),
            headers: headers_of(request),
            peer: request.peer_addr().map(|addr| addr.ip()),
        })
        .await
    {
        Ok(accept) => accept,
        Err(refusal) => return to_actix(refusal),
    };
    append_headers(&mut response, accept.headers);
    let connection = accept.connection;
    let buffer = app.inner().config.realtime.outbound_buffer;
    actix_web::rt::spawn(pump(session, stream, buffer, |i, o| connection.run(i, o)));
    response
}

fn append_headers(response: &mut HttpResponse, extra: Vec<(String, String)>) {
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().append(name, value);
        }
    }
}

/// Moves frames between the socket and the connection `run` drives until it ends, then closes with its code.
async fn pump<F, Fut>(mut session: actix_ws::Session, stream: actix_ws::MessageStream, buffer: usize, run: F)
where
    F: FnOnce(mpsc::Receiver<ClientFrame>, mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = avb_api::realtime::CloseFrame>,
{
    let mut stream = stream
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_WS_MESSAGE_BYTES);
    let (to_session, from_socket) = mpsc::channel::<ClientFrame>(32);
    let (to_socket, mut from_session) = mpsc::channel::<String>(buffer.max(1));
    // actix-ws leaves pings to the application (tungstenite answers them itself on axum).
    let mut ponger = session.clone();
    let reader = actix_web::rt::spawn(async move {
        while let Some(Ok(message)) = stream.recv().await {
            let frame = match message {
                AggregatedMessage::Text(text) => {
                    ClientFrame::Text(TextFrame::from_utf8(text.into_bytes()).unwrap_or_default())
                }
                AggregatedMessage::Binary(bytes) => ClientFrame::Binary(bytes.len()),
                AggregatedMessage::Close(_) => break,
                AggregatedMessage::Ping(bytes) => {
                    if ponger.pong(&bytes).await.is_err() {
                        break;
                    }
                    continue;
                }
                AggregatedMessage::Pong(_) => continue,
            };
            if to_session.send(frame).await.is_err() {
                break;
            }
        }
    });
    let writer = async {
        while let Some(frame) = from_session.recv().await {
            if session.text(frame).await.is_err() {
                return false;
            }
        }
        true
    };
    let (close, open) = tokio::join!(run(from_socket, to_socket), writer);
    reader.abort();
    if open {
        let reason = CloseReason {
            code: CloseCode::from(close.code),
            description: Some(close.reason),
        };
        let _ = session.close(Some(reason)).await;
    }
}

/// Reads at most `limit` bytes. Past the limit it stops reading (like axum's `to_bytes`) and reports the request
/// as oversized, so the pipeline answers `payload_too_large` instead of the framework's own error page.
async fn read_body(mut payload: web::Payload, limit: usize) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) if body.len().saturating_add(chunk.len()) <= limit => body.extend_from_slice(&chunk),
            Ok(_) => return (Vec::new(), true),
            // A broken upload (client reset, bad chunked encoding) cannot be answered meaningfully; the pipeline
            // sees what arrived, and malformed JSON becomes a validation error as with any truncated body.
            Err(err) => {
                tracing::debug!(error = %err, "request body ended early");
                break;
            }
        }
    }
    (body, false)
}

fn to_actix(response: avb_api::ApiResponse) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::with_body(status, response.body);
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (header_name(&name), header_value(value)) {
            headers.append(name, value);
        }
    }
    out.map_into_boxed_body()
}

// The pipeline's header names that `http` does not know (it knows the standard ones without allocating).
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A response header name, without copying the ones the pipeline sends on every response.
fn header_name(name: &str) -> Result<HeaderName, header::InvalidHeaderName> {
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
fn header_value(value: HeaderText) -> Result<HeaderValue, header::InvalidHeaderValue> {
    match value {
        Cow::Borrowed(text) => HeaderValue::from_maybe_shared(web::Bytes::from_static(text.as_bytes())),
        Cow::Owned(text) => HeaderValue::try_from(text),
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for in-flight requests (up to 30 s).
///
/// Must run inside a tokio runtime (`#[tokio::main]` or `#[actix_web::main]`); actix starts its own worker
/// threads, one per core.
pub async fn serve(
    listener: std::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Built in its own statement: the builder is not `Send`, and must not live across the `.await`.
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure(app.clone())))
        // A shutdown future replaces actix's own signal handlers: the binary handles SIGTERM/SIGINT itself (and
        // flushes batched writes afterwards), exactly as on the axum path. Stopping this way is graceful.
        .shutdown_signal(shutdown)
        .shutdown_timeout(30)
        // Nagle off, as on the axum path: a small frame written right after another must not wait for the
        // client's acknowledgement (a realtime client acknowledges with its next 20 ms audio frame).
        .tcp_nodelay(true)
        .listen(listener)?
        .run();
    server.await
}

/// Binds `addr` with a listen backlog of 4096 (the std listener's default of 128 drops connections under
/// bursts). The listener is non-blocking-ready for [`serve`].
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
