//! Parity: one app served by axum and actix at once ([`Framework::start_pair`]) answers a fixed list of requests
//! identically through both — status, body, and every header with its value, except the values of the
//! `VOLATILE_HEADERS`. Sharing one app means both see the same data and credentials, so no
//! normalisation of ids or timestamps is needed; the list therefore holds requests that change nothing, or whose
//! change makes the repeat answer the same (a refused write).

use crate::blackbox::{ALLOWED_ORIGIN, Call, CheckResult, Framework, Reply, Target, field};
use serde_json::json;
use std::collections::BTreeMap;

/// Header values that legitimately differ between two answers: the clock, generated ids, and — because both
/// frameworks share one app and so one rate-limit budget — the remaining count and the seconds to reset. Their
/// presence is still compared; their exact values are checked per framework in [`crate::blackbox::limits`].
const VOLATILE_HEADERS: [&str; 4] = [
    "date",
    "x-request-id",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// Who sends a request.
#[derive(Debug, Clone, Copy)]
enum As {
    Nobody,
    ApiKey,
    Admin,
    Sysadmin,
    Other,
    Expired,
    Raw(&'static str),
}

/// One request of the list.
#[derive(Debug, Clone)]
struct Probe {
    method: &'static str,
    path: String,
    who: As,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<(&'static str, Vec<u8>)>,
}

fn probe(method: &'static str, path: impl Into<String>, who: As) -> Probe {
    Probe {
        method,
        path: path.into(),
        who,
        headers: Vec::new(),
        body: None,
    }
}

impl Probe {
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn body(mut self, content_type: &'static str, body: Vec<u8>) -> Self {
        self.body = Some((content_type, body));
        self
    }

    fn call<'a>(&self, t: &'a Target) -> Call<'a> {
        let mut call = t.call(self.method, &self.path);
        call = match self.who {
            As::Nobody => call,
            As::ApiKey => call.bearer(&t.api_key),
            As::Admin => call.bearer(&t.admin_token),
            As::Sysadmin => call.bearer(&t.sysadmin_token),
            As::Other => call.bearer(&t.other.admin_token),
            As::Expired => call.bearer(&t.expired_token),
            As::Raw(value) => call.header("authorization", value),
        };
        for (name, value) in &self.headers {
            call = call.header(name, *value);
        }
        if let Some((content_type, body)) = &self.body {
            call = call.raw(content_type, body.clone());
        }
        call
    }
}

/// The list: every edge behaviour, reads of every kind of credential, and refused writes.
fn probes(project_path: &str, max_body: usize) -> Vec<Probe> {
    let oversized = vec![b' '; max_body + 1];
    vec![
        probe("GET", "/health", As::Nobody),
        probe("GET", "/health/ready", As::Nobody),
        probe("HEAD", "/health", As::Nobody),
        probe("GET", "/health", As::Nobody).header("x-request-id", "parity-1"),
        probe("GET", "/health", As::Nobody).header("origin", ALLOWED_ORIGIN),
        probe("GET", "/health", As::Nobody).header("origin", "https://evil.example"),
        probe("OPTIONS", "/api/v2/projects", As::Nobody)
            .header("origin", ALLOWED_ORIGIN)
            .header("access-control-request-method", "POST"),
        probe("OPTIONS", "/api/v2/projects", As::Nobody)
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST"),
        probe("OPTIONS", "/api/v2/projects", As::Admin),
        probe("GET", "/nowhere", As::Nobody),
        probe("GET", "/api/v2/nowhere?x=1", As::Admin),
        probe("DELETE", "/health", As::Nobody),
        probe("PUT", "/api/v2/tenants/me", As::Admin),
        probe("TRACE", "/health", As::Nobody),
        probe("GET", "/api/v2/tenants/me", As::Nobody),
        probe("GET", "/api/v2/tenants/me", As::Raw("Basic dXNlcjpwYXNz")),
        probe("GET", "/api/v2/tenants/me", As::Raw("Bearer not-a-jwt")),
        probe(
            "GET",
            "/api/v2/tenants/me",
            As::Raw("Bearer avb_thisKeyDoesNotExist0123456789abc"),
        ),
        probe("GET", "/api/v2/tenants/me", As::Expired),
        probe("GET", "/api/v2/tenants/me", As::ApiKey),
        probe("HEAD", "/api/v2/tenants/me", As::ApiKey),
        probe("GET", "/api/v2/tenants/me", As::Admin),
        probe("GET", "/api/v2/tenants/me", As::Other),
        probe("GET", "/api/v2/tenants/me", As::Sysadmin),
        probe("GET", "/api/v2/projects", As::Admin),
        probe("GET", "/api/v2/projects?limit=0", As::Admin),
        probe("GET", project_path, As::Admin),
        probe("GET", project_path, As::Other),
        probe("DELETE", project_path, As::Other),
        probe("GET", "/api/v2/projects/not-a-uuid", As::Admin),
        probe("POST", "/api/v2/projects", As::Admin).body("application/json", b"{\"name\": ".to_vec()),
        probe("POST", "/api/v2/projects", As::Admin).body("application/json", b"{\"name\": \"\"}".to_vec()),
        // A duplicate of the fixture's name: refused as a conflict, so both answers are the same.
        probe("POST", "/api/v2/projects", As::Admin).body(
            "application/json",
            json!({ "name": "SHARED" }).to_string().into_bytes(),
        ),
        probe("POST", "/api/v2/projects", As::Admin).body("application/json", oversized),
        probe("GET", "/api/v2/admin/tenants?limit=100", As::Sysadmin),
        probe("GET", "/api/v2/admin/tenants", As::Admin),
    ]
}

/// Headers as a sorted multimap, with volatile values blanked.
fn comparable_headers(reply: &Reply) -> BTreeMap<String, Vec<String>> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &reply.headers {
        let value = if VOLATILE_HEADERS.contains(&name.as_str()) {
            "<volatile>".to_owned()
        } else {
            value.clone()
        };
        headers.entry(name.clone()).or_default().push(value);
    }
    for values in headers.values_mut() {
        values.sort();
    }
    headers
}

/// Compares two answers to the same request; `Err` names every difference.
pub fn compare(axum: &Reply, actix: &Reply) -> CheckResult {
    let mut differences = Vec::new();
    if axum.status != actix.status {
        differences.push(format!("status: axum {} vs actix {}", axum.status, actix.status));
    }
    if axum.body != actix.body {
        differences.push(format!(
            "body: axum {:?} vs actix {:?}",
            String::from_utf8_lossy(&axum.body),
            String::from_utf8_lossy(&actix.body)
        ));
    }
    let (a, b) = (comparable_headers(axum), comparable_headers(actix));
    if a != b {
        let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for name in names {
            let (x, y) = (a.get(name), b.get(name));
            if x != y {
                differences.push(format!("header {name}: axum {x:?} vs actix {y:?}"));
            }
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", axum.what, differences.join("; ")))
    }
}

/// Sends every request of the list to both frameworks (the same app), in the same order, and compares.
pub async fn axum_and_actix_answer_identically() -> CheckResult {
    let max_body = 4096;
    let (axum, actix) = Framework::start_pair(json!({ "max_body_bytes": max_body })).await?;
    let project = crate::blackbox::projects::create_project(&axum, &axum.admin_token, "Shared").await?;
    let project_path = format!(
        "/api/v2/projects/{}",
        field(&project, "/id")
            .as_str()
            .ok_or("created project has no id")?
    );
    let mut failures = Vec::new();
    for probe in probes(&project_path, max_body) {
        let a = probe.call(&axum).send().await?;
        let b = probe.call(&actix).send().await?;
        if let Err(difference) = compare(&a, &b) {
            failures.push(difference);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} answers differ:\n{}",
            failures.len(),
            failures.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
        Reply {
            what: "GET /x".into(),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn volatile_values_are_ignored_but_their_presence_is_not() {
        let a = reply(200, &[("date", "Mon"), ("x-request-id", "1"), ("a", "1")], "{}");
        let b = reply(200, &[("a", "1"), ("x-request-id", "2"), ("date", "Tue")], "{}");
        assert_eq!(compare(&a, &b), Ok(()));
        let c = reply(200, &[("a", "1"), ("x-request-id", "2")], "{}");
        assert!(compare(&a, &c).unwrap_err().contains("header date"));
    }

    #[test]
    fn status_body_and_header_values_must_match() {
        let a = reply(200, &[("a", "1")], "{}");
        assert!(
            compare(&a, &reply(201, &[("a", "1")], "{}"))
                .unwrap_err()
                .contains("status")
        );
        assert!(
            compare(&a, &reply(200, &[("a", "1")], "[]"))
                .unwrap_err()
                .contains("body")
        );
        assert!(
            compare(&a, &reply(200, &[("a", "2")], "{}"))
                .unwrap_err()
                .contains("header a")
        );
        assert!(compare(&a, &reply(200, &[("a", "1"), ("a", "1")], "{}")).is_err());
    }
}
