//! `GET /api/v2/openapi.json` and `/api/v2/docs`: the served document is OpenAPI 3.1 and lists exactly the
//! route table; the documentation page loads everything from the server itself.

use crate::blackbox::edge::security_headers_present;
use crate::blackbox::{CheckResult, Framework, field};
use serde_json::Value;
use std::collections::BTreeSet;

/// Every `$ref` under `node` that does not resolve in `doc`.
fn dangling_refs(doc: &Value, node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let resolves = reference
                    .strip_prefix('#')
                    .is_some_and(|pointer| doc.pointer(pointer).is_some());
                if !resolves {
                    out.push(reference.clone());
                }
            }
            for value in map.values() {
                dangling_refs(doc, value, out);
            }
        }
        Value::Array(items) => {
            for value in items {
                dangling_refs(doc, value, out);
            }
        }
        _ => {}
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The served document says `openapi: 3.1.x`, has `info`, and its operations are exactly the route table's
/// (same paths, methods and operation ids; each with a 2xx response and each path parameter declared); every
/// `$ref` resolves.
pub async fn the_openapi_document_lists_every_route(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let reply = s.get("/api/v2/openapi.json").send().await?;
    reply.expect(200)?;
    security_headers_present(&reply)?;
    ensure!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "served as JSON: {:?}",
        reply.header("content-type")
    );
    let doc = reply.json();
    ensure!(
        field(&doc, "/openapi")
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "an OpenAPI 3.1 document: openapi = {}",
        field(&doc, "/openapi")
    );
    ensure!(
        field(&doc, "/info/title").as_str().is_some_and(|t| !t.is_empty())
            && field(&doc, "/info/version")
                .as_str()
                .is_some_and(|v| !v.is_empty()),
        "info has a title and a version: {}",
        field(&doc, "/info")
    );
    let paths = field(&doc, "/paths")
        .as_object()
        .ok_or_else(|| "the document has no paths object".to_owned())?;

    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = field(op, "/operationId").as_str().unwrap_or_default().to_owned();
            ensure!(!id.is_empty(), "{method} {path} has no operationId");
            ensure!(operation_ids.insert(id.clone()), "operationId {id} is not unique");
            let answers = field(op, "/responses")
                .as_object()
                .is_some_and(|r| r.keys().any(|status| status.starts_with('2')));
            ensure!(answers, "{id} documents no 2xx response");
            let declared: BTreeSet<String> = op
                .get("parameters")
                .or_else(|| item.get("parameters"))
                .and_then(Value::as_array)
                .map(|params| {
                    params
                        .iter()
                        .filter(|p| field(p, "/in") == "path")
                        .filter_map(|p| field(p, "/name").as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let in_template: BTreeSet<String> = path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_owned)
                .collect();
            ensure!(
                declared == in_template,
                "{id}: path parameters {declared:?} do not match the template {path}"
            );
            documented.insert((method.to_uppercase(), path.clone(), id));
        }
    }
    let table: BTreeSet<(String, String, String)> = avb_api::routes::routes()
        .iter()
        .map(|r| {
            (
                r.method.as_str().to_owned(),
                r.path.to_owned(),
                r.operation.to_owned(),
            )
        })
        .collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&table).collect();
    ensure!(
        missing.is_empty() && extra.is_empty(),
        "the document and the route table differ: missing {missing:?}, not in the table {extra:?}"
    );
    let mut dangling = Vec::new();
    dangling_refs(&doc, &doc, &mut dangling);
    ensure!(dangling.is_empty(), "unresolved $refs: {dangling:?}");
    Ok(())
}

/// `/api/v2/docs` is an HTML page whose scripts and style sheets are relative URLs the server itself serves
/// (no other host, so it works offline), and its initializer loads the served `openapi.json`.
pub async fn the_docs_page_loads_offline(fw: Framework) -> CheckResult {
    let s = fw.start().await?;
    let page = s.get("/api/v2/docs").send().await?;
    page.expect(200)?;
    ensure!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "an HTML page: {:?}",
        page.header("content-type")
    );
    let html = String::from_utf8_lossy(&page.body).into_owned();
    ensure!(
        !html.contains("http:") && !html.contains("https:") && !html.contains("//"),
        "the page refers to no other host: {html}"
    );
    let mut loaded = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let url = html
                .get(i + attr.len()..)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            loaded.push(url.to_owned());
        }
    }
    ensure!(!loaded.is_empty(), "the page loads its script and styles: {html}");
    let mut initializer = String::new();
    for url in &loaded {
        ensure!(
            !url.starts_with('/') && !url.contains(':'),
            "{url} is not relative to the page"
        );
        let asset = s.get(&format!("/api/v2/{url}")).send().await?;
        asset.expect(200)?;
        ensure!(!asset.body.is_empty(), "{url} is empty");
        let text = String::from_utf8_lossy(&asset.body);
        ensure!(
            !text.contains("@import") && !text.contains("https://cdn"),
            "{url} loads something from elsewhere"
        );
        if url.ends_with("initializer.js") {
            initializer = text.into_owned();
        }
    }
    ensure!(
        initializer.contains("openapi.json"),
        "the initializer loads the served document: {initializer}"
    );
    s.get("/api/v2/docs/nope.js")
        .send()
        .await?
        .expect_error(404, "not_found")?;
    Ok(())
}
