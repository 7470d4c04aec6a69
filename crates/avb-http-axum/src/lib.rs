//! # avb-http-axum
//!
//! Serves an [`avb_api::App`] with axum. This crate only translates: an axum request becomes an
//! [`avb_api::ApiRequest`], [`avb_api::App::handle`] runs the whole pipeline (auth, tenant, rate limits, audit,
//! errors, security headers), and the [`avb_api::ApiResponse`] becomes an axum response. Behaviour therefore
//! cannot drift from other adapters.
//!
//! Mount [`router`] on its own, or [`nest`](axum::Router::nest) it under a path of an existing axum application.
#![deny(missing_docs)]

use avb_api::{ApiRequest, App, Headers, Method};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use std::net::SocketAddr;

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
    let (parts, body) = request.into_parts();
    let limit = app.inner().config.max_body_bytes;
    let (body, oversized) = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => (bytes, false),
        Err(_) => (Bytes::new(), true),
    };
    let mut headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.push(name.as_str(), value);
        }
    }
    let api_request = ApiRequest {
        method: Method::from_name(parts.method.as_str()),
        // When nested under a prefix, axum hands us the path below the mount point, which is exactly the
        // API's own route space (`/api/v2/…`).
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
        oversized,
        peer,
    };
    to_axum(app.handle(api_request).await)
}

fn to_axum(response: avb_api::ApiResponse) -> Response {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    out
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
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
