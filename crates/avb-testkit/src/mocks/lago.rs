//! A validating, stateful mock of Lago's REST API (`/api/v1`) for testing the billing adapter where no Lago can
//! run.
//!
//! Every request is checked against Lago's own OpenAPI document (`specs/lago-openapi.yaml`, v1.51.0, AGPLv3, test
//! data only, see `specs/NOTICE`): method and path template, query parameters, and the JSON body against the
//! operation's schema. An invalid request is recorded with its violations and answered `422` in Lago's error shape
//! with `error_details.mock_violations` (an unknown path `404`, a wrong method `405`, a missing or wrong bearer key
//! `401`). Tests assert [`LagoMock::invalid_requests`] is empty, so the validation is part of every test.
//!
//! Valid requests are answered from state as Lago would: customers and subscriptions are upserts by external id
//! (a new `plan_code` on the same subscription is a plan change); a batch of events is stored all or nothing —
//! any transaction id already stored (or repeated in the batch) refuses the whole batch with 422
//! `error_details: {"<index>": {"transaction_id": ["value_already_exist"]}}`, like Lago's PostgreSQL event
//! store; current usage sums each metric's numeric property (or counts events); invoices are listed with `meta`.
//! Faults are injected with [`LagoMock::fail_next`], [`LagoMock::rate_limit_next`] and [`LagoMock::delay_next`].
//!
//! Workarounds for the document (see `specs/NOTICE`): event property values and `timestamp` are validated with
//! `anyOf` instead of `oneOf` (integers matched two branches); `nullable` becomes `type: [T, "null"]`; the batch
//! limit of 100 events, stated only in the description, is enforced as `maxItems: 100`.

use super::openapi::{OpenApiValidator, SpecError};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Lago's OpenAPI document (YAML, OpenAPI 3.1).
pub const LAGO_OPENAPI: &str = include_str!("../../specs/lago-openapi.yaml");

/// The API key the mock accepts.
pub const LAGO_API_KEY: &str = "lago-mock-api-key";

/// Most events per batch (Lago's `LAGO_EVENTS_BATCH_MAX_LENGTH` default).
pub const BATCH_LIMIT: usize = 100;

const MAX_BODY: usize = 4 * 1024 * 1024;

pub use super::keycloak_admin::RecordedRequest;

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum LagoMockError {
    /// The document did not load.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Binding or serving failed.
    #[error("mock server: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    RateLimited { reset_secs: u64 },
    Delay(Duration),
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<RecordedRequest>,
    faults: VecDeque<Fault>,
    plans: BTreeSet<String>,
    customers: BTreeMap<String, Value>,
    subscriptions: BTreeMap<String, Value>,
    events: BTreeMap<String, Value>,
    invoices: BTreeMap<String, Vec<Value>>,
    public_key_pem: Vec<u8>,
    next_id: u64,
}

impl State {
    fn lago_id(&mut self) -> String {
        self.next_id += 1;
        format!("1a901a90-0000-4000-8000-{:012x}", self.next_id)
    }
}

#[derive(Debug)]
struct Shared {
    validator: Arc<OpenApiValidator>,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock; stops when dropped.
#[derive(Debug)]
pub struct LagoMock {
    /// `http://127.0.0.1:PORT` (what `LAGO_API_URL` is set to; the API is under `/api/v1`).
    pub api_url: String,
    /// The accepted key ([`LAGO_API_KEY`]).
    pub api_key: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LagoMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The validator for Lago's document with the workarounds described in the module docs. Loading the 1.5 MB
/// document takes a moment, so it is loaded once per process.
pub fn lago_validator() -> Result<Arc<OpenApiValidator>, SpecError> {
    static VALIDATOR: OnceLock<Result<Arc<OpenApiValidator>, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            OpenApiValidator::from_yaml(LAGO_OPENAPI, HashMap::new(), |defs| {
                if let Some(event) = defs.get_mut("EventInputObject") {
                    for pointer in [
                        "/properties/properties/additionalProperties",
                        "/properties/timestamp",
                    ] {
                        if let Some(schema) = event.pointer_mut(pointer).and_then(Value::as_object_mut)
                            && let Some(branches) = schema.remove("oneOf")
                        {
                            schema.insert("anyOf".into(), branches);
                        }
                    }
                }
                if let Some(events) = defs
                    .get_mut("EventBatchInput")
                    .and_then(|b| b.pointer_mut("/properties/events"))
                    .and_then(Value::as_object_mut)
                {
                    events.insert("maxItems".into(), json!(BATCH_LIMIT));
                }
            })
            .map(Arc::new)
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(SpecError::Invalid)
}

/// Starts the mock on 127.0.0.1 with a free port. It knows the plans `plan_free`, `plan_starter`, `plan_pro`
/// and `plan_enterprise`.
pub async fn start_lago_mock() -> Result<LagoMock, LagoMockError> {
    let validator = lago_validator()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}", listener.local_addr()?);
    let plans = ["plan_free", "plan_starter", "plan_pro", "plan_enterprise"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let shared = Arc::new(Shared {
        validator,
        state: Mutex::new(State {
            plans,
            ..State::default()
        }),
    });
    let handler_state = Arc::clone(&shared);
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let shared = Arc::clone(&handler_state);
        async move { handle(&shared, request).await }
    });
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "lago mock stopped");
        }
    });
    Ok(LagoMock {
        api_url,
        api_key: LAGO_API_KEY.into(),
        shared,
        task,
    })
}

impl LagoMock {
    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// The requests that violated the document.
    pub fn invalid_requests(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|r| !r.is_valid()).collect()
    }

    /// The next valid request is answered `status` with Lago's error body instead of being served.
    pub fn fail_next(&self, status: u16) {
        self.shared.state().faults.push_back(Fault::Status(status));
    }

    /// The next valid request is answered 429 with `X-RateLimit-Limit`, `-Remaining: 0`, `-Reset: reset_secs`.
    pub fn rate_limit_next(&self, reset_secs: u64) {
        self.shared
            .state()
            .faults
            .push_back(Fault::RateLimited { reset_secs });
    }

    /// The next valid request is served after `delay` (to provoke client timeouts).
    pub fn delay_next(&self, delay: Duration) {
        self.shared.state().faults.push_back(Fault::Delay(delay));
    }

    /// Adds a plan code.
    pub fn add_plan(&self, code: &str) {
        self.shared.state().plans.insert(code.to_owned());
    }

    /// Adds an invoice (a partial `InvoiceObject`; `lago_id` is filled in when missing) to a customer.
    pub fn add_invoice(&self, external_customer_id: &str, mut invoice: Value) {
        let mut state = self.shared.state();
        if invoice.get("lago_id").is_none()
            && let Some(map) = invoice.as_object_mut()
        {
            let id = state.lago_id();
            map.insert("lago_id".into(), json!(id));
        }
        state
            .invoices
            .entry(external_customer_id.to_owned())
            .or_default()
            .push(invoice);
    }

    /// Sets the webhook public key (PEM) served base64-encoded by `GET /webhooks/json_public_key`.
    pub fn set_webhook_public_key(&self, pem: &[u8]) {
        self.shared.state().public_key_pem = pem.to_vec();
    }

    /// Stored customers by external id.
    pub fn customers(&self) -> BTreeMap<String, Value> {
        self.shared.state().customers.clone()
    }

    /// Stored subscriptions by external id.
    pub fn subscriptions(&self) -> BTreeMap<String, Value> {
        self.shared.state().subscriptions.clone()
    }

    /// Stored events by transaction id (as they were sent).
    pub fn events(&self) -> BTreeMap<String, Value> {
        self.shared.state().events.clone()
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn lago_error(status: StatusCode, code: &str, details: Option<Value>) -> Response<Body> {
    let mut body = json!({
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "code": code,
    });
    if let (Some(details), Some(map)) = (details, body.as_object_mut()) {
        map.insert("error_details".into(), details);
    }
    json_response(status, &body)
}

async fn handle(shared: &Shared, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let mut record = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: query.clone(),
        body: (!bytes.is_empty()).then(|| {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }),
        operation_id: None,
        violations: Vec::new(),
        status: 0,
    };
    let (response, delay) = route(
        shared,
        &parts.method,
        &parts.headers,
        &path,
        query.as_deref(),
        &bytes,
        &mut record,
    );
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    record.status = response.status().as_u16();
    shared.state().requests.push(record);
    response
}

fn route(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    record: &mut RecordedRequest,
) -> (Response<Body>, Option<Duration>) {
    let Some(relative) = path.strip_prefix("/api/v1") else {
        record.violations.push(format!("{path} is not under /api/v1"));
        return (lago_error(StatusCode::NOT_FOUND, "not_found", None), None);
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(LAGO_API_KEY) {
        record
            .violations
            .push("missing or wrong bearer key (the document requires `bearerAuth`)".into());
        return (
            json_response(
                StatusCode::UNAUTHORIZED,
                &json!({ "status": 401, "error": "Unauthorized" }),
            ),
            None,
        );
    }
    let matched = match shared.validator.match_operation(method.as_str(), relative) {
        Ok(m) => m,
        Err(violation) => {
            let status = if violation.starts_with("method") {
                StatusCode::METHOD_NOT_ALLOWED
            } else {
                StatusCode::NOT_FOUND
            };
            record.violations.push(violation);
            return (lago_error(status, "not_found", None), None);
        }
    };
    record.operation_id = Some(matched.operation.operation_id.clone());
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    record
        .violations
        .extend(shared.validator.validate_query(&matched.operation, query));
    record.violations.extend(
        shared
            .validator
            .validate_body(&matched.operation, content_type, body),
    );
    if !record.violations.is_empty() {
        return (
            lago_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_errors",
                Some(json!({ "mock_violations": record.violations })),
            ),
            None,
        );
    }
    let mut state = shared.state();
    let mut delay = None;
    match state.faults.pop_front() {
        Some(Fault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (lago_error(status, "mock_fault", None), None);
        }
        Some(Fault::RateLimited { reset_secs }) => {
            let mut response = lago_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", None);
            for (name, value) in [
                ("x-ratelimit-limit", "50".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset_secs.to_string()),
            ] {
                if let Ok(value) = header::HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            return (response, None);
        }
        Some(Fault::Delay(d)) => delay = Some(d),
        None => {}
    }
    let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let params = &matched.path_params;
    let query_map: HashMap<String, String> = query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let response = match matched.operation.operation_id.as_str() {
        "createCustomer" => create_customer(&mut state, &json_body),
        "createSubscription" => create_subscription(&mut state, &json_body),
        "createBatchEvents" => create_events(&mut state, &json_body),
        "createEvent" => create_event(&mut state, &json_body),
        "findCustomerCurrentUsage" => current_usage(
            &state,
            params
                .get("external_customer_id")
                .map(String::as_str)
                .unwrap_or_default(),
            query_map
                .get("external_subscription_id")
                .map(String::as_str)
                .unwrap_or_default(),
        ),
        "findAllInvoices" => list_invoices(&state, &query_map),
        "fetchJsonPublicKey" => json_response(
            StatusCode::OK,
            &json!({ "webhook": {
                "public_key": base64::engine::general_purpose::STANDARD.encode(&state.public_key_pem)
            }}),
        ),
        other => lago_error(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented_in_mock",
            Some(json!({ "operation_id": other })),
        ),
    };
    (response, delay)
}

fn now_iso() -> String {
    "2026-01-01T00:00:00Z".to_owned()
}

fn create_customer(state: &mut State, body: &Value) -> Response<Body> {
    let input = body.get("customer").cloned().unwrap_or_default();
    let external_id = input
        .get("external_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let lago_id = state
        .customers
        .get(&external_id)
        .and_then(|c| c.get("lago_id").cloned())
        .unwrap_or_else(|| json!(state.lago_id()));
    let mut customer = state
        .customers
        .get(&external_id)
        .cloned()
        .unwrap_or_else(|| json!({ "created_at": now_iso(), "currency": "USD" }));
    if let (Some(stored), Some(fields)) = (customer.as_object_mut(), input.as_object()) {
        for (k, v) in fields {
            stored.insert(k.clone(), v.clone());
        }
        stored.insert("lago_id".into(), lago_id);
    }
    state.customers.insert(external_id, customer.clone());
    json_response(StatusCode::OK, &json!({ "customer": customer }))
}

fn create_subscription(state: &mut State, body: &Value) -> Response<Body> {
    let input = body.get("subscription").cloned().unwrap_or_default();
    let field = |name: &str| {
        input
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (customer_id, plan_code, external_id) = (
        field("external_customer_id"),
        field("plan_code"),
        field("external_id"),
    );
    let Some(customer) = state.customers.get(&customer_id).cloned() else {
        return lago_error(StatusCode::NOT_FOUND, "customer_not_found", None);
    };
    if !state.plans.contains(&plan_code) {
        return lago_error(StatusCode::NOT_FOUND, "plan_not_found", None);
    }
    let previous = state.subscriptions.get(&external_id).cloned();
    let lago_id = previous
        .as_ref()
        .and_then(|s| s.get("lago_id").cloned())
        .unwrap_or_else(|| json!(state.lago_id()));
    let previous_plan = previous
        .as_ref()
        .and_then(|s| s.get("plan_code").cloned())
        .filter(|p| p != &json!(plan_code))
        .unwrap_or(Value::Null);
    let subscription = json!({
        "lago_id": lago_id,
        "external_id": external_id,
        "lago_customer_id": customer.get("lago_id").cloned().unwrap_or(Value::Null),
        "external_customer_id": customer_id,
        "name": "",
        "plan_code": plan_code,
        "status": "active",
        "billing_time": "calendar",
        "created_at": now_iso(),
        "started_at": now_iso(),
        "subscription_at": now_iso(),
        "canceled_at": null,
        "ending_at": null,
        "terminated_at": null,
        "previous_plan_code": previous_plan,
        "next_plan_code": null,
        "downgrade_plan_date": null,
        "trial_ended_at": null,
        "current_billing_period_started_at": now_iso(),
        "current_billing_period_ending_at": "2026-01-31T23:59:59Z",
        "on_termination_credit_note": null,
        "on_termination_invoice": "generate",
    });
    state.subscriptions.insert(external_id, subscription.clone());
    json_response(StatusCode::OK, &json!({ "subscription": subscription }))
}

fn event_object(state: &mut State, event: &Value) -> Value {
    let subscription = event
        .get("external_subscription_id")
        .and_then(Value::as_str)
        .and_then(|id| state.subscriptions.get(id))
        .and_then(|s| s.get("lago_id").cloned())
        .unwrap_or(Value::Null);
    json!({
        "lago_id": state.lago_id(),
        "transaction_id": event.get("transaction_id").cloned().unwrap_or(Value::Null),
        "lago_customer_id": null,
        "code": event.get("code").cloned().unwrap_or(Value::Null),
        "timestamp": now_iso(),
        "lago_subscription_id": subscription,
        "external_subscription_id": event.get("external_subscription_id").cloned().unwrap_or(Value::Null),
        "properties": event.get("properties").cloned().unwrap_or_else(|| json!({})),
        "created_at": now_iso(),
    })
}

fn create_events(state: &mut State, body: &Value) -> Response<Body> {
    let events = body
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if events.is_empty() {
        return lago_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_errors",
            Some(json!({ "events": ["no_events"] })),
        );
    }
    // All or nothing: one known (or repeated) transaction id refuses the batch, keyed by index.
    let mut seen = BTreeSet::new();
    let mut details = Map::new();
    for (index, event) in events.iter().enumerate() {
        let id = event
            .get("transaction_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if state.events.contains_key(id) || !seen.insert(id.to_owned()) {
            details.insert(
                index.to_string(),
                json!({ "transaction_id": ["value_already_exist"] }),
            );
        }
    }
    if !details.is_empty() {
        return lago_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_errors",
            Some(Value::Object(details)),
        );
    }
    let mut created = Vec::new();
    for event in events {
        created.push(event_object(state, &event));
        let id = event
            .get("transaction_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        state.events.insert(id, event);
    }
    json_response(StatusCode::OK, &json!({ "events": created }))
}

fn create_event(state: &mut State, body: &Value) -> Response<Body> {
    let event = body.get("event").cloned().unwrap_or_default();
    let id = event
        .get("transaction_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if state.events.contains_key(&id) {
        return lago_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_errors",
            Some(json!({ "transaction_id": ["value_already_exist"] })),
        );
    }
    let created = event_object(state, &event);
    state.events.insert(id, event);
    json_response(StatusCode::OK, &json!({ "event": created }))
}

/// A property value in thousandths (integers, and decimal strings with up to 3 decimals).
fn thousandths(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n.as_i64().map(|i| i128::from(i) * 1000),
        Value::String(s) => {
            let (whole, frac) = s.split_once('.').unwrap_or((s.as_str(), ""));
            if frac.len() > 3 || whole.is_empty() {
                return None;
            }
            Some(whole.parse::<i128>().ok()? * 1000 + format!("{frac:0<3}").parse::<i128>().ok()?)
        }
        _ => None,
    }
}

fn current_usage(state: &State, customer: &str, subscription: &str) -> Response<Body> {
    if !state.customers.contains_key(customer) {
        return lago_error(StatusCode::NOT_FOUND, "customer_not_found", None);
    }
    let owned = state
        .subscriptions
        .get(subscription)
        .is_some_and(|s| s.get("external_customer_id").and_then(Value::as_str) == Some(customer));
    if !owned {
        return lago_error(StatusCode::NOT_FOUND, "subscription_not_found", None);
    }
    let mut per_metric: BTreeMap<String, (u64, Option<i128>)> = BTreeMap::new();
    for event in state
        .events
        .values()
        .filter(|e| e.get("external_subscription_id").and_then(Value::as_str) == Some(subscription))
    {
        let code = event.get("code").and_then(Value::as_str).unwrap_or_default();
        let entry = per_metric.entry(code.to_owned()).or_default();
        entry.0 += 1;
        if let Some(value) = event
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|p| p.values().find_map(thousandths))
        {
            entry.1 = Some(entry.1.unwrap_or(0) + value);
        }
    }
    let charges: Vec<Value> = per_metric
        .into_iter()
        .map(|(code, (count, sum))| {
            let sum = sum.unwrap_or(i128::from(count) * 1000);
            let units = format!("{}.{:03}", sum / 1000, sum % 1000);
            json!({
                "units": units,
                "total_aggregated_units": units,
                "events_count": count,
                "amount_cents": 0,
                "amount_currency": "USD",
                "charge": { "lago_id": format!("charge-{code}"), "charge_model": "standard" },
                "billable_metric": {
                    "lago_id": format!("metric-{code}"),
                    "name": code,
                    "code": code,
                    "aggregation_type": if sum == i128::from(count) * 1000 { "count_agg" } else { "sum_agg" },
                },
                "filters": [],
                "grouped_usage": [],
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({ "customer_usage": {
            "from_datetime": "2026-01-01T00:00:00Z",
            "to_datetime": "2026-01-31T23:59:59Z",
            "issuing_date": "2026-02-01",
            "currency": "USD",
            "amount_cents": 0,
            "taxes_amount_cents": 0,
            "total_amount_cents": 0,
            "charges_usage": charges,
        }}),
    )
}

fn list_invoices(state: &State, query: &HashMap<String, String>) -> Response<Body> {
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let all: Vec<Value> = match query.get("external_customer_id") {
        Some(customer) => state.invoices.get(customer).cloned().unwrap_or_default(),
        None => state.invoices.values().flatten().cloned().collect(),
    };
    let total = all.len();
    let invoices: Vec<Value> = all
        .into_iter()
        .rev()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let total_pages = total.div_ceil(per_page).max(1);
    json_response(
        StatusCode::OK,
        &json!({
            "invoices": invoices,
            "meta": {
                "current_page": page,
                "next_page": if page < total_pages { json!(page + 1) } else { Value::Null },
                "prev_page": if page > 1 { json!(page - 1) } else { Value::Null },
                "total_pages": total_pages,
                "total_count": total,
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn check(method: &str, path: &str, query: Option<&str>, body: &Value) -> Vec<String> {
        let v = lago_validator().unwrap();
        let op = v.match_operation(method, path).unwrap().operation;
        let mut violations = v.validate_query(&op, query);
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        violations.extend(v.validate_body(&op, Some("application/json"), &bytes));
        violations
    }

    fn event(extra: Value) -> Value {
        let mut e = json!({ "transaction_id": "t1", "external_subscription_id": "s1", "code": "c" });
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    }

    #[test]
    fn the_document_loads_with_every_path() {
        assert!(lago_validator().unwrap().operation_count() > 150);
    }

    #[test]
    fn integer_properties_and_timestamps_pass_thanks_to_any_of() {
        let body = json!({ "events": [event(json!({ "timestamp": 1_730_000_000, "properties": { "gb": 10, "s": "1.5", "f": 0.5 } }))] });
        assert_eq!(check("POST", "/events/batch", None, &body), Vec::<String>::new());
        let float = json!({ "events": [event(json!({ "timestamp": 1_730_000_000.5 }))] });
        assert!(
            !check("POST", "/events/batch", None, &float).is_empty(),
            "floats stay refused"
        );
    }

    #[test]
    fn missing_transaction_ids_misspelt_fields_and_big_batches_are_violations() {
        let mut missing = event(json!({}));
        missing.as_object_mut().unwrap().remove("transaction_id");
        let violations = check("POST", "/events/batch", None, &json!({ "events": [missing] }));
        assert!(
            violations.iter().any(|v| v.contains("transaction_id")),
            "{violations:?}"
        );
        let misspelt = json!({ "events": [event(json!({ "timestmp": 1 }))] });
        assert!(!check("POST", "/events/batch", None, &misspelt).is_empty());
        let many: Vec<Value> = (0..=BATCH_LIMIT).map(|_| event(json!({}))).collect();
        assert!(!check("POST", "/events/batch", None, &json!({ "events": many })).is_empty());
    }

    #[test]
    fn query_parameters_by_reference_and_arrays_are_checked() {
        let ok = check(
            "GET",
            "/invoices",
            Some("external_customer_id=c&page=2&per_page=5&statuses[]=draft&statuses[]=finalized"),
            &Value::Null,
        );
        assert_eq!(ok, Vec::<String>::new());
        assert!(!check("GET", "/invoices", Some("page=two"), &Value::Null).is_empty());
        assert!(!check("GET", "/invoices", Some("statuses[]=lost"), &Value::Null).is_empty());
        let missing = check("GET", "/customers/c1/current_usage", None, &Value::Null);
        assert!(
            missing.iter().any(|v| v.contains("external_subscription_id")),
            "{missing:?}"
        );
    }
}
