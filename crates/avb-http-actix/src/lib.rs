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
#![deny(missing_docs)]

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use avb_api::{ApiRequest, App, Headers, Method};
use futures::StreamExt as _;
use std::net::SocketAddr;

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
    let limit = app.inner().config.max_body_bytes;
    let (body, oversized) = read_body(payload, limit).await;
    let mut headers = Headers::new();
    for (name, value) in request.headers() {
        if let Ok(value) = value.to_str() {
            headers.push(name.as_str(), value);
        }
    }
    let api_request = ApiRequest {
        method: Method::from_name(request.method().as_str()),
        path: request.path().to_owned(),
        query: request.query_string().to_owned(),
        headers,
        body,
        oversized,
        peer: request.peer_addr().map(|addr| addr.ip()),
    };
    to_actix(app.handle(api_request).await)
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
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    out.map_into_boxed_body()
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
