//! The OpenAPI document: complete (every route of the table), valid OpenAPI 3.1, self-consistent (every `$ref`
//! resolves), served as generated; and the documentation page works offline.

use crate::support::app;
use avb_api::openapi::{document, undocumented};
use avb_api::ops::docs::{ASSETS, PAGE};
use avb_api::routes::{Access, routes};
use avb_api::{ApiRequest, Method};
use avb_core::ErrorCode;
use serde_json::Value;
use std::collections::BTreeSet;

fn doc_json() -> Value {
    serde_json::to_value(document()).expect("document serialises")
}

fn method_key(method: Method) -> &'static str {
    match method {
        Method::Get => "get",
        Method::Head => "head",
        Method::Post => "post",
        Method::Put => "put",
        Method::Patch => "patch",
        Method::Delete => "delete",
        Method::Options => "options",
        Method::Other => "other",
    }
}

/// Every route of `routes()` is in the document, under its path and method, with its operation id — so adding a
/// route without describing it fails here.
#[test]
fn every_route_is_in_the_document() {
    assert_eq!(
        undocumented(),
        Vec::<&str>::new(),
        "routes without an OpenAPI description"
    );
    let doc = doc_json();
    let table = routes();
    for route in &table {
        let op = &doc["paths"][route.path][method_key(route.method)];
        assert!(
            op.is_object(),
            "{} {} is missing",
            route.method.as_str(),
            route.path
        );
        assert_eq!(op["operationId"], route.operation, "{}", route.path);
    }
    let documented: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().expect("path item").len())
        .sum();
    assert_eq!(
        documented,
        table.len(),
        "the document has exactly the table's operations"
    );
}

/// The document parses as OpenAPI 3.1 (`oas3`), every operation has a unique operation id and a 2xx response,
/// and every parameter, request body and response reference resolves through the parser.
#[test]
fn document_is_valid_openapi_3_1() {
    let text = serde_json::to_string(&document()).expect("json");
    let spec = oas3::from_json(&text).expect("parses as OpenAPI 3.1");
    let version = spec.validate_version().expect("supported version");
    assert_eq!((version.major, version.minor), (3, 1));
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for (path, method, op) in spec.operations() {
        count += 1;
        let id = op
            .operation_id
            .clone()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.clone()), "duplicate operationId {id}");
        assert!(
            op.responses(&spec).keys().any(|status| status.starts_with('2')),
            "{id} has no success response"
        );
        for param in &op.parameters {
            param
                .resolve(&spec)
                .unwrap_or_else(|e| panic!("{id}: parameter does not resolve: {e}"));
        }
        if let Some(body) = &op.request_body {
            body.resolve(&spec)
                .unwrap_or_else(|e| panic!("{id}: request body does not resolve: {e}"));
        }
        for (status, response) in op.responses.iter().flatten() {
            response
                .resolve(&spec)
                .unwrap_or_else(|e| panic!("{id} {status}: response does not resolve: {e}"));
        }
    }
    assert_eq!(count, routes().len());
}

/// Every `$ref` in the document points at something that exists in it.
#[test]
fn every_ref_resolves() {
    fn walk(doc: &Value, node: &Value, refs: &mut usize) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let pointer = target
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("external $ref {target}"));
                    assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
                    *refs += 1;
                }
                map.values().for_each(|v| walk(doc, v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v, refs)),
            _ => {}
        }
    }
    let doc = doc_json();
    let mut refs = 0;
    walk(&doc, &doc, &mut refs);
    assert!(refs > 100, "the document uses component references ({refs})");
}

/// The error envelope lists the stable codes as an enum, and each error response narrows it to the codes of its
/// status; every operation documents the errors the pipeline can answer.
#[test]
fn errors_are_the_envelope_with_stable_codes() {
    let doc = doc_json();
    let schemas = &doc["components"]["schemas"];
    let codes: BTreeSet<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .map(|v| v.as_str().expect("code"))
        .collect();
    let expected: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, expected);
    let envelope = &schemas["ErrorBody"];
    let required: BTreeSet<&str> = envelope["required"]
        .as_array()
        .expect("required")
        .iter()
        .map(|v| v.as_str().expect("name"))
        .collect();
    assert_eq!(required, BTreeSet::from(["error", "message", "details"]));

    let not_found = &doc["components"]["responses"]["Error404"]["content"]["application/json"]["schema"];
    let narrowed: BTreeSet<&str> = not_found["allOf"][1]["properties"]["error"]["enum"]
        .as_array()
        .expect("404 codes")
        .iter()
        .map(|v| v.as_str().expect("code"))
        .collect();
    assert_eq!(narrowed, BTreeSet::from(["not_found", "tenant_not_found"]));

    for route in routes() {
        let op = &doc["paths"][route.path][method_key(route.method)];
        for status in ["400", "401", "403", "404", "413", "429", "500", "503"] {
            assert!(
                op["responses"][status].is_object(),
                "{} lacks {status}",
                route.operation
            );
        }
    }
}

/// Security follows the route's access rule; tenant routes take `X-Tenant-ID`; list routes take `limit` and
/// `offset`; rate-limited responses document the `X-RateLimit-*` headers.
#[test]
fn access_security_and_headers_are_documented() {
    let doc = doc_json();
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["bearerJwt"]["scheme"], "bearer");
    assert_eq!(schemes["bearerJwt"]["bearerFormat"], "JWT");
    assert_eq!(schemes["bearerApiKey"]["scheme"], "bearer");
    assert_eq!(schemes["apiKeyHeader"]["in"], "header");
    assert_eq!(schemes["apiKeyHeader"]["name"], "X-API-Key");
    for route in routes() {
        let op = &doc["paths"][route.path][method_key(route.method)];
        let security: Vec<String> = op["security"]
            .as_array()
            .map(|reqs| {
                reqs.iter()
                    .flat_map(|r| r.as_object().expect("requirement").keys().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let params: Vec<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        p["$ref"]
                            .as_str()
                            .or(p["name"].as_str())
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tenant_header = params.iter().any(|p| p == "#/components/parameters/TenantId");
        match route.access {
            Access::Public => assert!(security.is_empty() && !tenant_header, "{}", route.operation),
            Access::Sysadmin => assert_eq!(security, ["bearerJwt"], "{}", route.operation),
            Access::Tenant | Access::Authenticated => {
                assert_eq!(
                    security,
                    ["bearerJwt", "bearerApiKey", "apiKeyHeader"],
                    "{}",
                    route.operation
                );
                assert!(tenant_header, "{}", route.operation);
            }
        }
        if route.path.contains("{id}") {
            assert!(
                params.iter().any(|p| p == "id"),
                "{} documents its id",
                route.operation
            );
        }
    }
    let list = &doc["paths"]["/api/v2/projects"]["get"];
    let refs: Vec<&str> = list["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["$ref"].as_str())
        .collect();
    assert!(refs.contains(&"#/components/parameters/Limit"));
    assert!(refs.contains(&"#/components/parameters/Offset"));
    let ok = &list["responses"]["200"];
    assert_eq!(
        ok["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ProjectPage"
    );
    for header in [
        "X-Request-ID",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    ] {
        assert!(ok["headers"][header].is_object(), "{header}");
    }
    assert!(doc["components"]["responses"]["Error429"]["headers"]["Retry-After"].is_object());
    // The secret-bearing record never appears; the API key DTO has no hash.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas["ApiKeyResponse"]["properties"].get("key_hash").is_none());
}

/// `GET /api/v2/openapi.json` answers the generated document, without credentials.
#[tokio::test]
async fn the_document_is_served() {
    let (app, _, _) = app();
    let resp = app
        .handle(ApiRequest::new(Method::Get, "/api/v2/openapi.json"))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let served: Value = serde_json::from_slice(&resp.body).expect("json");
    assert_eq!(served, doc_json());
    assert_eq!(served["openapi"], "3.1.0");
}

/// The documentation page and everything it loads are served by the API itself; nothing refers to another
/// host (no CDN, no online validator), so the page works offline.
#[tokio::test]
async fn the_docs_page_is_served_offline() {
    let (app, _, _) = app();
    let page = app.handle(ApiRequest::new(Method::Get, "/api/v2/docs")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(page.body.clone()).expect("utf-8");
    assert_eq!(html, PAGE);
    assert!(
        !html.contains("http:") && !html.contains("https:") && !html.contains("//"),
        "{html}"
    );

    // Every src/href of the page is a relative URL that the API serves.
    let mut loaded = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = html.get(i + attr.len()..).expect("attribute value");
            let url = rest.split('"').next().expect("closing quote");
            loaded.push(url.to_owned());
        }
    }
    assert_eq!(loaded.len(), 3, "{loaded:?}");
    for url in &loaded {
        let path = format!("/api/v2/{url}");
        let resp = app.handle(ApiRequest::new(Method::Get, &path)).await;
        assert_eq!(resp.status, 200, "{path}");
        assert!(!resp.body.is_empty(), "{path}");
        let expected = if url.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(
            resp.header("content-type")
                .expect("content type")
                .starts_with(expected),
            "{path}"
        );
    }
    assert_eq!(loaded.len(), ASSETS.len(), "every asset is used by the page");

    // The initializer loads the server's own document and disables the online validator badge.
    let init = ASSETS
        .iter()
        .find(|a| a.name == "swagger-initializer.js")
        .expect("initializer");
    let init = std::str::from_utf8(init.bytes).expect("utf-8");
    assert!(init.contains("url: \"openapi.json\""), "{init}");
    assert!(init.contains("validatorUrl: null"), "{init}");
    assert!(!init.contains("http:") && !init.contains("https:"), "{init}");
    // The style sheet imports nothing and loads no remote images or fonts (only inline `data:` URIs).
    let css = ASSETS.iter().find(|a| a.name == "swagger-ui.css").expect("css");
    let css = std::str::from_utf8(css.bytes).expect("utf-8");
    assert!(!css.contains("@import"));
    for (i, _) in css.match_indices("url(") {
        let target = css
            .get(i + 4..i + 12)
            .expect("url target")
            .trim_start_matches(['"', '\'']);
        assert!(target.starts_with("data:"), "css loads {target}");
    }

    let unknown = app
        .handle(ApiRequest::new(Method::Get, "/api/v2/docs/nope.js"))
        .await;
    assert_eq!(unknown.status, 404);
}

/// A known path asked with a method it does not serve answers 405 with `Allow` (RFC 9110), listing the path's
/// methods and `HEAD` where `GET` is served.
#[tokio::test]
async fn method_not_allowed_lists_the_allowed_methods() {
    let (app, _, _) = app();
    let resp = app.handle(ApiRequest::new(Method::Other, "/health")).await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    let resp = app.handle(ApiRequest::new(Method::Put, "/api/v2/projects")).await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST, GET, HEAD"));
    let resp = app.handle(ApiRequest::new(Method::Get, "/api/v2/nowhere")).await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("allow"), None);
}
