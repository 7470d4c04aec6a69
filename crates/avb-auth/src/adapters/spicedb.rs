//! `SpiceDbAuthorizer`: the [`Authorizer`] port over a SpiceDB server (the standard `authzed.api.v1` gRPC API,
//! client crate `spicedb-grpc-tonic`), feature `spicedb`.
//!
//! - **Configuration** ([`SpiceDbConfig`]): endpoint (`host:port` or a URL), preshared key (sent as
//!   `authorization: Bearer …`, redacted from `Debug`), TLS on/off (system roots plus an optional CA file), and
//!   a per-call timeout (default 5 s, shortened by the [`Ctx`] deadline). [`SpiceDbAuthorizerBuilder::from_env`]
//!   reads `SPICEDB_ENDPOINT`, `SPICEDB_PRESHARED_KEY`, `SPICEDB_INSECURE` and `SPICEDB_CA_CERT`.
//! - **Fails closed.** A transport failure or a timeout is [`avb_core::Error::Unavailable`]
//!   (`service_unavailable`); a rejected preshared key is [`Error::Config`]; an answer other than
//!   `HAS_PERMISSION` (including a conditional one) is a denial. No error is ever an allow.
//! - **Errors keep their meaning.** SpiceDB's `google.rpc.ErrorInfo` reason is used when present, its status
//!   code and message otherwise, so both adapters report unknown definitions, unknown relations, conflicts,
//!   schema errors and orphaning schema changes with the same [`Error`] variants.
//! - **Consistency.** [`ZedToken`]s are SpiceDB's own; [`Consistency`] maps to `minimize_latency`,
//!   `at_least_as_fresh` and `fully_consistent`.
//! - Inputs SpiceDB would accept but the port forbids (a wildcard subject in a check, an empty filter) are
//!   rejected before any call, the way the local engine rejects them.
//!
//! [`SpiceDbAuthorizer::sync_schema`] writes the embedded spec schema ([`zed::AGENTVOICEBOX_SCHEMA`]): the
//! `sync-permissions` step.

use crate::adapters::local_authz::DEFAULT_MAX_DEPTH;
use crate::authorizer::{
    Authorizer, BulkCheckResult, CheckRequest, CheckResult, Consistency, LookupResourcesRequest,
    LookupSubject, LookupSubjectsRequest, ObjectRef, Permissionship, Relationship, RelationshipFilter,
    RelationshipUpdate, SubjectFilter, SubjectRef, SubjectRelationFilter, ZedToken, validate_object_id,
};
use crate::zed::{self, Position, SchemaError, SchemaErrorKind};
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::Ctx;
use spicedb_grpc_tonic::v1 as pb;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

/// Default per-call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const BACKEND: &str = "spicedb";

/// How to reach SpiceDB.
#[derive(Clone)]
pub struct SpiceDbConfig {
    /// `host:port` (SpiceDB's usual form) or `http(s)://host:port`.
    pub endpoint: String,
    /// The server's preshared key.
    pub preshared_key: String,
    /// TLS on (default) or plaintext (`SPICEDB_INSECURE=true`, for loopback and tests).
    pub tls: bool,
    /// A PEM file with the CA that signed the server's certificate, in addition to the system roots.
    pub ca_certificate: Option<PathBuf>,
    /// Upper bound of every call (the request's own deadline may shorten it).
    pub timeout: Duration,
}

impl SpiceDbConfig {
    /// TLS on, 5 s timeout.
    pub fn new(endpoint: impl Into<String>, preshared_key: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            preshared_key: preshared_key.into(),
            tls: true,
            ca_certificate: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for SpiceDbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiceDbConfig")
            .field("endpoint", &self.endpoint)
            .field("preshared_key", &"<redacted>")
            .field("tls", &self.tls)
            .field("ca_certificate", &self.ca_certificate)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Builds a [`SpiceDbAuthorizer`].
#[derive(Debug, Clone)]
pub struct SpiceDbAuthorizerBuilder {
    config: SpiceDbConfig,
}

fn config_error(message: impl Into<String>) -> Error {
    Error::Config(message.into())
}

impl SpiceDbAuthorizerBuilder {
    /// A builder for `endpoint` with `preshared_key` (TLS on, 5 s timeout).
    pub fn new(endpoint: impl Into<String>, preshared_key: impl Into<String>) -> Self {
        Self {
            config: SpiceDbConfig::new(endpoint, preshared_key),
        }
    }

    /// From a complete configuration.
    pub fn from_config(config: SpiceDbConfig) -> Self {
        Self { config }
    }

    /// From the process environment: `SPICEDB_ENDPOINT` and `SPICEDB_PRESHARED_KEY` (required),
    /// `SPICEDB_INSECURE` (`true`/`false`, default `false`: TLS on) and `SPICEDB_CA_CERT` (a PEM path).
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or malformed variable.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env`], reading variables through `lookup`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the missing or malformed variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let endpoint = get("SPICEDB_ENDPOINT").ok_or_else(|| config_error("SPICEDB_ENDPOINT is not set"))?;
        let key =
            get("SPICEDB_PRESHARED_KEY").ok_or_else(|| config_error("SPICEDB_PRESHARED_KEY is not set"))?;
        let insecure = match get("SPICEDB_INSECURE").map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
            Some(v) => {
                return Err(config_error(format!(
                    "SPICEDB_INSECURE must be true or false, not `{v}`"
                )));
            }
        };
        let mut builder = Self::new(endpoint, key).insecure(insecure);
        if let Some(path) = get("SPICEDB_CA_CERT") {
            builder = builder.ca_certificate(path);
        }
        Ok(builder)
    }

    /// TLS on or off.
    #[must_use]
    pub fn tls(mut self, enabled: bool) -> Self {
        self.config.tls = enabled;
        self
    }

    /// Plaintext HTTP/2 when `insecure` (the inverse of [`Self::tls`]).
    #[must_use]
    pub fn insecure(self, insecure: bool) -> Self {
        self.tls(!insecure)
    }

    /// Trusts the CA in this PEM file too.
    #[must_use]
    pub fn ca_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.ca_certificate = Some(path.into());
        self
    }

    /// Per-call timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The configuration so far.
    pub fn config(&self) -> &SpiceDbConfig {
        &self.config
    }

    /// Validates the configuration and prepares a lazily connecting channel: SpiceDB need not be up yet, and
    /// calls made while it is down fail with `service_unavailable`. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty endpoint or key, a zero timeout, a scheme that contradicts the TLS
    /// setting, an unreadable CA file, or no Tokio runtime.
    pub fn build(self) -> Result<SpiceDbAuthorizer> {
        let config = self.config;
        if config.preshared_key.trim().is_empty() {
            return Err(config_error("the SpiceDB preshared key is empty"));
        }
        if config.timeout.is_zero() {
            return Err(config_error("the SpiceDB timeout must be positive"));
        }
        let url = endpoint_url(&config.endpoint, config.tls)?;
        let bearer = AsciiMetadataValue::try_from(format!("Bearer {}", config.preshared_key))
            .map_err(|_| config_error("the SpiceDB preshared key must be printable ASCII"))?;
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| config_error(format!("invalid SpiceDB endpoint `{url}`: {e}")))?
            .connect_timeout(config.timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        if config.tls {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &config.ca_certificate {
                let pem = std::fs::read(path).map_err(|e| {
                    config_error(format!("cannot read SPICEDB_CA_CERT {}: {e}", path.display()))
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| config_error(format!("SpiceDB TLS configuration: {e}")))?;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(config_error(
                "SpiceDbAuthorizerBuilder::build must run inside a Tokio runtime",
            ));
        }
        let channel = endpoint.connect_lazy();
        let auth = BearerAuth(bearer);
        Ok(SpiceDbAuthorizer {
            permissions: pb::permissions_service_client::PermissionsServiceClient::with_interceptor(
                channel.clone(),
                auth.clone(),
            ),
            schema: pb::schema_service_client::SchemaServiceClient::with_interceptor(channel, auth),
            url,
            tls: config.tls,
            timeout: config.timeout,
        })
    }
}

/// `host:port` → `http(s)://host:port`; an explicit scheme must agree with the TLS setting.
fn endpoint_url(endpoint: &str, tls: bool) -> Result<String> {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        return Err(config_error("the SpiceDB endpoint is empty"));
    }
    match endpoint.split_once("://") {
        None => Ok(format!("{}://{endpoint}", if tls { "https" } else { "http" })),
        Some(("https", _)) if tls => Ok(endpoint.to_owned()),
        Some(("http", _)) if !tls => Ok(endpoint.to_owned()),
        Some((scheme, _)) => Err(config_error(format!(
            "SpiceDB endpoint scheme `{scheme}` contradicts TLS {} (set SPICEDB_INSECURE accordingly)",
            if tls { "on" } else { "off" }
        ))),
    }
}

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
struct BearerAuth(AsciiMetadataValue);

impl Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Svc = InterceptedService<Channel, BearerAuth>;

/// The SpiceDB adapter of [`Authorizer`]. Cheap to clone (clients share one HTTP/2 connection).
#[derive(Clone)]
pub struct SpiceDbAuthorizer {
    permissions: pb::permissions_service_client::PermissionsServiceClient<Svc>,
    schema: pb::schema_service_client::SchemaServiceClient<Svc>,
    url: String,
    tls: bool,
    timeout: Duration,
}

impl fmt::Debug for SpiceDbAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiceDbAuthorizer")
            .field("endpoint", &self.url)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SpiceDbAuthorizer {
    /// A builder for `endpoint` with `preshared_key`.
    pub fn builder(
        endpoint: impl Into<String>,
        preshared_key: impl Into<String>,
    ) -> SpiceDbAuthorizerBuilder {
        SpiceDbAuthorizerBuilder::new(endpoint, preshared_key)
    }

    /// Writes the embedded spec schema ([`zed::AGENTVOICEBOX_SCHEMA`]) to SpiceDB (`sync-permissions`).
    ///
    /// # Errors
    /// As [`Authorizer::write_schema`]: a change that would orphan stored relationships is refused.
    pub async fn sync_schema(&self, ctx: &Ctx) -> Result<ZedToken> {
        self.write_schema(ctx, zed::AGENTVOICEBOX_SCHEMA).await
    }

    /// Runs one call under the per-call timeout (shortened by the context's deadline), mapping failures.
    async fn call<T, Fut>(&self, ctx: &Ctx, op: &'static str, run: impl FnOnce(Duration) -> Fut) -> Result<T>
    where
        Fut: Future<Output = std::result::Result<T, Status>>,
    {
        let (budget, ctx_bound) = match ctx.remaining()? {
            Some(left) if left < self.timeout => (left, true),
            _ => (self.timeout, false),
        };
        match tokio::time::timeout(budget, run(budget)).await {
            Ok(Ok(value)) => Ok(value),
            // The call ran out of the caller's own time (tonic's client-side timeout or the server's).
            Ok(Err(_)) if ctx_bound && ctx.remaining().is_err() => {
                Err(avb_core::Error::DeadlineExceeded.into())
            }
            Ok(Err(status)) => {
                let err = map_status(&status);
                if matches!(err, Error::Core(_) | Error::Config(_)) {
                    tracing::warn!(op, code = ?status.code(), message = status.message(), "SpiceDB call failed");
                }
                Err(err)
            }
            Err(_) if ctx_bound => Err(avb_core::Error::DeadlineExceeded.into()),
            Err(_) => {
                tracing::warn!(op, timeout = ?budget, "SpiceDB call timed out");
                Err(unavailable(format!("{op} timed out after {budget:?}")))
            }
        }
    }
}

fn timed<T>(message: T, budget: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(budget);
    request
}

fn unavailable(reason: impl Into<String>) -> Error {
    Error::Core(avb_core::Error::unavailable(BACKEND, reason.into()))
}

fn internal(reason: impl fmt::Display) -> Error {
    Error::Core(avb_core::Error::Internal(format!("spicedb: {reason}")))
}

// ------------------------------------------------------------------------------------------------------------
// Types, both ways.

fn object_to_pb(object: &ObjectRef) -> pb::ObjectReference {
    pb::ObjectReference {
        object_type: object.object_type.clone(),
        object_id: object.object_id.clone(),
    }
}

fn subject_to_pb(subject: &SubjectRef) -> pb::SubjectReference {
    pb::SubjectReference {
        object: Some(object_to_pb(&subject.object)),
        optional_relation: subject.optional_relation.clone().unwrap_or_default(),
    }
}

fn relationship_to_pb(rel: &Relationship) -> pb::Relationship {
    pb::Relationship {
        resource: Some(object_to_pb(&rel.resource)),
        relation: rel.relation.clone(),
        subject: Some(subject_to_pb(&rel.subject)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

fn object_from_pb(object: Option<pb::ObjectReference>) -> Result<ObjectRef> {
    let object = object.ok_or_else(|| internal("response without an object reference"))?;
    Ok(ObjectRef::new(object.object_type, object.object_id))
}

fn relationship_from_pb(rel: Option<pb::Relationship>) -> Result<Relationship> {
    let rel = rel.ok_or_else(|| internal("response without a relationship"))?;
    let subject = rel
        .subject
        .ok_or_else(|| internal("relationship without a subject"))?;
    let subject = SubjectRef {
        object: object_from_pb(subject.object)?,
        optional_relation: Some(subject.optional_relation).filter(|r| !r.is_empty()),
    };
    Ok(Relationship::new(
        object_from_pb(rel.resource)?,
        rel.relation,
        subject,
    ))
}

fn update_to_pb(update: &RelationshipUpdate) -> pb::RelationshipUpdate {
    use pb::relationship_update::Operation;
    let operation = match update {
        RelationshipUpdate::Create(_) => Operation::Create,
        RelationshipUpdate::Touch(_) => Operation::Touch,
        RelationshipUpdate::Delete(_) => Operation::Delete,
    };
    pb::RelationshipUpdate {
        operation: operation as i32,
        relationship: Some(relationship_to_pb(update.relationship())),
    }
}

fn subject_filter_to_pb(filter: &SubjectFilter) -> pb::SubjectFilter {
    let relation = |relation: &str| pb::subject_filter::RelationFilter {
        relation: relation.to_owned(),
    };
    pb::SubjectFilter {
        subject_type: filter.subject_type.clone(),
        optional_subject_id: filter.subject_id.clone().unwrap_or_default(),
        optional_relation: match &filter.relation {
            SubjectRelationFilter::Any => None,
            // An empty relation selects plain objects (SpiceDB's `...`).
            SubjectRelationFilter::Ellipsis => Some(relation("")),
            SubjectRelationFilter::Relation(r) => Some(relation(r)),
        },
    }
}

fn filter_to_pb(filter: &RelationshipFilter) -> Result<pb::RelationshipFilter> {
    if filter.is_empty() {
        return Err(Error::InvalidRequest(
            "a relationship filter needs at least one field".into(),
        ));
    }
    Ok(pb::RelationshipFilter {
        resource_type: filter.resource_type.clone().unwrap_or_default(),
        optional_resource_id: filter.resource_id.clone().unwrap_or_default(),
        optional_resource_id_prefix: String::new(),
        optional_relation: filter.relation.clone().unwrap_or_default(),
        optional_subject_filter: filter.subject.as_ref().map(subject_filter_to_pb),
    })
}

fn consistency_to_pb(consistency: &Consistency) -> pb::Consistency {
    use pb::consistency::Requirement;
    let requirement = match consistency {
        Consistency::MinimizeLatency => Requirement::MinimizeLatency(true),
        Consistency::AtLeastAsFresh(token) => Requirement::AtLeastAsFresh(pb::ZedToken {
            token: token.as_str().to_owned(),
        }),
        Consistency::FullyConsistent => Requirement::FullyConsistent(true),
    };
    pb::Consistency {
        requirement: Some(requirement),
    }
}

fn token_from_pb(token: Option<pb::ZedToken>) -> Result<ZedToken> {
    match token {
        Some(t) if !t.token.is_empty() => Ok(ZedToken::new(t.token)),
        _ => Err(internal("response without a ZedToken")),
    }
}

/// Only `HAS_PERMISSION` allows; `NO_PERMISSION` and `CONDITIONAL_PERMISSION` (missing caveat context) deny.
fn permissionship_from_pb(value: i32) -> Result<Permissionship> {
    use pb::check_permission_response::Permissionship as P;
    match P::try_from(value) {
        Ok(P::HasPermission) => Ok(Permissionship::HasPermission),
        Ok(P::NoPermission | P::ConditionalPermission) => Ok(Permissionship::NoPermission),
        Ok(P::Unspecified) | Err(_) => Err(internal(format!("unexpected permissionship {value}"))),
    }
}

/// The port's rules for a check, applied before calling: valid ids, no wildcard subject.
fn validate_check(request: &CheckRequest) -> Result<()> {
    validate_object_id(&request.resource.object_id, false)?;
    validate_object_id(&request.subject.object.object_id, false)
}

fn check_item(request: &CheckRequest) -> pb::CheckBulkPermissionsRequestItem {
    pb::CheckBulkPermissionsRequestItem {
        resource: Some(object_to_pb(&request.resource)),
        permission: request.permission.clone(),
        subject: Some(subject_to_pb(&request.subject)),
        context: None,
    }
}

// ------------------------------------------------------------------------------------------------------------
// Errors.

/// `google.rpc.Status`, decoded from a status's binary details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// `google.rpc.ErrorInfo`: SpiceDB puts its `ERROR_REASON_*` and metadata here.
#[derive(Clone, PartialEq, prost::Message)]
struct ErrorInfo {
    #[prost(string, tag = "1")]
    reason: String,
    #[prost(string, tag = "2")]
    domain: String,
    #[prost(map = "string, string", tag = "3")]
    metadata: HashMap<String, String>,
}

const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

fn error_info(details: &[prost_types::Any]) -> Option<ErrorInfo> {
    details
        .iter()
        .filter(|any| any.type_url == ERROR_INFO_TYPE)
        .find_map(|any| <ErrorInfo as prost::Message>::decode(any.value.as_slice()).ok())
}

fn map_status(status: &Status) -> Error {
    let info = if status.details().is_empty() {
        None
    } else {
        <RpcStatus as prost::Message>::decode(status.details())
            .ok()
            .and_then(|s| error_info(&s.details))
    };
    map_error(status.code(), status.message(), info.as_ref())
}

/// The text between the first pair of backticks after `after` (`object definition \`x\` not found` → `x`).
fn quoted_after<'a>(message: &'a str, after: &str) -> Option<&'a str> {
    let rest = message.get(message.find(after)? + after.len()..)?;
    let start = rest.find('`')? + 1;
    let rest = rest.get(start..)?;
    rest.get(..rest.find('`')?)
}

/// `… line 3, column 27: …` → the position.
fn schema_position(message: &str) -> Option<Position> {
    let number_after = |key: &str| -> Option<u32> {
        let rest = message.get(message.find(key)? + key.len()..)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some(Position {
        line: number_after("line ")?,
        column: number_after("column ")?,
    })
}

fn schema_error(message: &str) -> Error {
    match schema_position(message) {
        Some(position) => Error::Schema(SchemaError::new(SchemaErrorKind::Syntax, position, message)),
        None => Error::InvalidRequest(message.to_owned()),
    }
}

fn unknown_definition(message: &str, info: Option<&ErrorInfo>) -> Error {
    let name = info
        .and_then(|i| i.metadata.get("definition_name").cloned())
        .or_else(|| quoted_after(message, "definition").map(str::to_owned))
        .unwrap_or_else(|| message.to_owned());
    Error::UnknownDefinition(name)
}

fn unknown_relation(message: &str, info: Option<&ErrorInfo>) -> Error {
    let meta = |key: &str| info.and_then(|i| i.metadata.get(key).cloned());
    Error::UnknownRelation {
        definition: meta("definition_name")
            .or_else(|| quoted_after(message, "under definition").map(str::to_owned))
            .unwrap_or_default(),
        relation: meta("relation_or_permission_name")
            .or_else(|| quoted_after(message, "relation/permission").map(str::to_owned))
            .unwrap_or_else(|| message.to_owned()),
    }
}

fn invalid_relationship(message: &str, info: Option<&ErrorInfo>) -> Error {
    let relationship = info
        .and_then(|i| i.metadata.get("relationship").cloned())
        .unwrap_or_default();
    Error::InvalidRelationship {
        relationship,
        reason: message.to_owned(),
    }
}

/// Maps SpiceDB's answer to the port's errors: by `ErrorInfo` reason when present, else by code and message.
fn map_error(code: Code, message: &str, info: Option<&ErrorInfo>) -> Error {
    if let Some(info) = info {
        match info.reason.as_str() {
            "ERROR_REASON_UNKNOWN_DEFINITION" => return unknown_definition(message, Some(info)),
            "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION" => return unknown_relation(message, Some(info)),
            "ERROR_REASON_SCHEMA_PARSE_ERROR" => return schema_error(message),
            "ERROR_REASON_INVALID_SUBJECT_TYPE"
            | "ERROR_REASON_CANNOT_UPDATE_PERMISSION"
            | "ERROR_REASON_WILDCARD_NOT_ALLOWED" => return invalid_relationship(message, Some(info)),
            "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP" => {
                return Error::AlreadyExists(message.to_owned());
            }
            "ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED" => {
                return Error::MaxDepthExceeded {
                    max_depth: DEFAULT_MAX_DEPTH,
                };
            }
            "ERROR_REASON_SERVICE_READ_ONLY"
            | "ERROR_REASON_SERIALIZATION_FAILURE"
            | "ERROR_REASON_INMEMORY_TOO_MANY_CONCURRENT_UPDATES"
            | "ERROR_REASON_DATASTORE_NOT_MIGRATED" => return unavailable(message.to_owned()),
            _ => {}
        }
    }
    match code {
        Code::AlreadyExists => Error::AlreadyExists(message.to_owned()),
        Code::FailedPrecondition | Code::InvalidArgument | Code::NotFound | Code::OutOfRange => {
            map_request_error(code, message, info)
        }
        Code::Unauthenticated | Code::PermissionDenied => Error::Config(format!(
            "SpiceDB rejected the preshared key ({}): {message}",
            if code == Code::Unauthenticated {
                "unauthenticated"
            } else {
                "permission denied"
            }
        )),
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Unknown => unavailable(format!("{code:?}: {message}")),
        Code::Ok | Code::Internal | Code::DataLoss | Code::Unimplemented => {
            internal(format!("{code:?}: {message}"))
        }
    }
}

/// Errors about the request itself, told apart by SpiceDB's messages (the reason may be missing).
fn map_request_error(code: Code, message: &str, info: Option<&ErrorInfo>) -> Error {
    let lower = message.to_ascii_lowercase();
    if lower.starts_with("object definition `") && lower.contains("not found") {
        unknown_definition(message, info)
    } else if lower.contains("relation/permission `") && lower.contains("not found") {
        unknown_relation(message, info)
    } else if lower.starts_with("parse error") || lower.contains("error parsing schema") {
        schema_error(message)
    } else if lower.contains("relationship exists") || lower.contains("relationships exist") {
        // A schema change that would orphan stored relationships.
        Error::SchemaInUse(message.to_owned())
    } else if lower.contains("not allowed on relation")
        || lower.contains("cannot write a relationship to permission")
        || lower.contains("wildcard")
    {
        invalid_relationship(message, info)
    } else if lower.contains("max depth") || lower.contains("maximum depth") {
        Error::MaxDepthExceeded {
            max_depth: DEFAULT_MAX_DEPTH,
        }
    } else if lower.contains("revision") || lower.contains("zedtoken") {
        Error::InvalidZedToken(message.to_owned())
    } else if code == Code::NotFound {
        Error::InvalidRequest(format!("not found: {message}"))
    } else {
        Error::InvalidRequest(message.to_owned())
    }
}

// ------------------------------------------------------------------------------------------------------------
// The port.

#[async_trait]
impl Authorizer for SpiceDbAuthorizer {
    async fn check(
        &self,
        ctx: &Ctx,
        request: &CheckRequest,
        consistency: &Consistency,
    ) -> Result<CheckResult> {
        validate_check(request)?;
        let message = pb::CheckPermissionRequest {
            consistency: Some(consistency_to_pb(consistency)),
            resource: Some(object_to_pb(&request.resource)),
            permission: request.permission.clone(),
            subject: Some(subject_to_pb(&request.subject)),
            context: None,
            with_tracing: false,
        };
        let mut client = self.permissions.clone();
        let response = self
            .call(ctx, "CheckPermission", |budget| async move {
                client.check_permission(timed(message, budget)).await
            })
            .await?
            .into_inner();
        Ok(CheckResult {
            permissionship: permissionship_from_pb(response.permissionship)?,
            checked_at: token_from_pb(response.checked_at)?,
        })
    }

    async fn check_bulk(
        &self,
        ctx: &Ctx,
        requests: &[CheckRequest],
        consistency: &Consistency,
    ) -> Result<BulkCheckResult> {
        // Items the port rejects fail alone; the rest go to SpiceDB in one call.
        let mut results: Vec<Option<Result<Permissionship>>> = Vec::with_capacity(requests.len());
        let mut items = Vec::new();
        for request in requests {
            match validate_check(request) {
                Ok(()) => {
                    items.push(check_item(request));
                    results.push(None);
                }
                Err(err) => results.push(Some(Err(err))),
            }
        }
        let message = pb::CheckBulkPermissionsRequest {
            consistency: Some(consistency_to_pb(consistency)),
            items,
            with_tracing: false,
        };
        let sent = message.items.len();
        let mut client = self.permissions.clone();
        let response = self
            .call(ctx, "CheckBulkPermissions", |budget| async move {
                client.check_bulk_permissions(timed(message, budget)).await
            })
            .await?
            .into_inner();
        if response.pairs.len() != sent {
            return Err(internal(format!(
                "bulk check answered {} of {sent} items",
                response.pairs.len()
            )));
        }
        let mut answers = response.pairs.into_iter().map(|pair| {
            use pb::check_bulk_permissions_pair::Response;
            match pair.response {
                Some(Response::Item(item)) => permissionship_from_pb(item.permissionship),
                Some(Response::Error(status)) => Err(map_error(
                    Code::from_i32(status.code),
                    &status.message,
                    error_info(&status.details).as_ref(),
                )),
                None => Err(internal("bulk check pair without an answer")),
            }
        });
        let results = results
            .into_iter()
            .map(|slot| match slot {
                Some(rejected) => rejected,
                None => answers
                    .next()
                    .unwrap_or_else(|| Err(internal("bulk check answers ran out"))),
            })
            .collect();
        Ok(BulkCheckResult {
            checked_at: token_from_pb(response.checked_at)?,
            results,
        })
    }

    async fn write_relationships(&self, ctx: &Ctx, updates: &[RelationshipUpdate]) -> Result<ZedToken> {
        let message = pb::WriteRelationshipsRequest {
            updates: updates.iter().map(update_to_pb).collect(),
            optional_preconditions: Vec::new(),
            optional_transaction_metadata: None,
        };
        let mut client = self.permissions.clone();
        let response = self
            .call(ctx, "WriteRelationships", |budget| async move {
                client.write_relationships(timed(message, budget)).await
            })
            .await?
            .into_inner();
        token_from_pb(response.written_at)
    }

    async fn delete_relationships(&self, ctx: &Ctx, filter: &RelationshipFilter) -> Result<ZedToken> {
        let message = pb::DeleteRelationshipsRequest {
            relationship_filter: Some(filter_to_pb(filter)?),
            optional_preconditions: Vec::new(),
            optional_limit: 0,
            optional_allow_partial_deletions: false,
            optional_transaction_metadata: None,
        };
        let mut client = self.permissions.clone();
        let response = self
            .call(ctx, "DeleteRelationships", |budget| async move {
                client.delete_relationships(timed(message, budget)).await
            })
            .await?
            .into_inner();
        token_from_pb(response.deleted_at)
    }

    async fn lookup_resources(
        &self,
        ctx: &Ctx,
        request: &LookupResourcesRequest,
        consistency: &Consistency,
    ) -> Result<Vec<String>> {
        validate_object_id(&request.subject.object.object_id, false)?;
        let message = pb::LookupResourcesRequest {
            consistency: Some(consistency_to_pb(consistency)),
            resource_object_type: request.resource_type.clone(),
            permission: request.permission.clone(),
            subject: Some(subject_to_pb(&request.subject)),
            context: None,
            optional_limit: 0,
            optional_cursor: None,
        };
        let mut client = self.permissions.clone();
        let found = self
            .call(ctx, "LookupResources", |budget| async move {
                let mut stream = client
                    .lookup_resources(timed(message, budget))
                    .await?
                    .into_inner();
                let mut ids = Vec::new();
                while let Some(item) = stream.message().await? {
                    // Conditional results (missing caveat context) are not grants.
                    if item.permissionship == pb::LookupPermissionship::HasPermission as i32 {
                        ids.push(item.resource_object_id);
                    }
                }
                Ok(ids)
            })
            .await?;
        let mut found = found;
        found.sort();
        found.dedup();
        Ok(found)
    }

    async fn lookup_subjects(
        &self,
        ctx: &Ctx,
        request: &LookupSubjectsRequest,
        consistency: &Consistency,
    ) -> Result<Vec<LookupSubject>> {
        validate_object_id(&request.resource.object_id, false)?;
        let message = pb::LookupSubjectsRequest {
            consistency: Some(consistency_to_pb(consistency)),
            resource: Some(object_to_pb(&request.resource)),
            permission: request.permission.clone(),
            subject_object_type: request.subject_type.clone(),
            optional_subject_relation: request.optional_subject_relation.clone().unwrap_or_default(),
            context: None,
            optional_concrete_limit: 0,
            optional_cursor: None,
            wildcard_option: pb::lookup_subjects_request::WildcardOption::IncludeWildcards as i32,
        };
        let has = pb::LookupPermissionship::HasPermission as i32;
        let mut client = self.permissions.clone();
        let found = self
            .call(ctx, "LookupSubjects", |budget| async move {
                let mut stream = client.lookup_subjects(timed(message, budget)).await?.into_inner();
                let mut subjects = Vec::new();
                while let Some(item) = stream.message().await? {
                    let Some(subject) = item.subject else { continue };
                    if subject.permissionship != has {
                        continue;
                    }
                    let mut excluded: Vec<String> = item
                        .excluded_subjects
                        .into_iter()
                        .map(|s| s.subject_object_id)
                        .collect();
                    excluded.sort();
                    excluded.dedup();
                    subjects.push(LookupSubject {
                        subject_id: subject.subject_object_id,
                        excluded_subject_ids: excluded,
                    });
                }
                Ok(subjects)
            })
            .await?;
        // SpiceDB streams unmerged pieces (`* except {a, b}`, then `a`); the port promises the merged form.
        Ok(crate::authorizer::merge_lookup_subjects(found))
    }

    async fn read_relationships(
        &self,
        ctx: &Ctx,
        filter: &RelationshipFilter,
        consistency: &Consistency,
    ) -> Result<Vec<Relationship>> {
        let message = pb::ReadRelationshipsRequest {
            consistency: Some(consistency_to_pb(consistency)),
            relationship_filter: Some(filter_to_pb(filter)?),
            optional_limit: 0,
            optional_cursor: None,
        };
        let mut client = self.permissions.clone();
        let raw = self
            .call(ctx, "ReadRelationships", |budget| async move {
                let mut stream = client
                    .read_relationships(timed(message, budget))
                    .await?
                    .into_inner();
                let mut rels = Vec::new();
                while let Some(item) = stream.message().await? {
                    rels.push(item.relationship);
                }
                Ok(rels)
            })
            .await?;
        let mut rels = raw
            .into_iter()
            .map(relationship_from_pb)
            .collect::<Result<Vec<_>>>()?;
        rels.sort();
        rels.dedup();
        Ok(rels)
    }

    async fn write_schema(&self, ctx: &Ctx, schema: &str) -> Result<ZedToken> {
        let message = pb::WriteSchemaRequest {
            schema: schema.to_owned(),
        };
        let mut client = self.schema.clone();
        let response = self
            .call(ctx, "WriteSchema", |budget| async move {
                client.write_schema(timed(message, budget)).await
            })
            .await?
            .into_inner();
        token_from_pb(response.written_at)
    }

    async fn read_schema(&self, ctx: &Ctx) -> Result<String> {
        let mut client = self.schema.clone();
        let response = self
            .call(ctx, "ReadSchema", |budget| async move {
                match client.read_schema(timed(pb::ReadSchemaRequest {}, budget)).await {
                    Ok(response) => Ok(response.into_inner().schema_text),
                    // SpiceDB answers NOT_FOUND while no schema has been written: that is an empty schema.
                    Err(status) if status.code() == Code::NotFound => Ok(String::new()),
                    Err(status) => Err(status),
                }
            })
            .await?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{ErrorCode, HasCode};

    /// The `grpc-status-details-bin` SpiceDB v1.54 sent for a lookup on an unknown type.
    const UNKNOWN_DEFINITION_DETAILS: &[u8] = b"\x08\t\x12\"object definition `nope` not found\x1as\n(type.googleapis.com/google.rpc.ErrorInfo\x12G\n\x1fERROR_REASON_UNKNOWN_DEFINITION\x12\x0bauthzed.com\x1a\x17\n\x0fdefinition_name\x12\x04nope";

    fn info(reason: &str, metadata: &[(&str, &str)]) -> ErrorInfo {
        ErrorInfo {
            reason: reason.into(),
            domain: "authzed.com".into(),
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn error_info_is_decoded_from_status_details() {
        let status = <RpcStatus as prost::Message>::decode(UNKNOWN_DEFINITION_DETAILS).unwrap();
        assert_eq!(status.code, Code::FailedPrecondition as i32);
        let info = error_info(&status.details).unwrap();
        assert_eq!(info.reason, "ERROR_REASON_UNKNOWN_DEFINITION");
        assert_eq!(
            info.metadata.get("definition_name").map(String::as_str),
            Some("nope")
        );
    }

    #[test]
    fn reasons_win_over_messages() {
        // The message alone would not say which definition; the metadata does.
        let err = map_error(
            Code::FailedPrecondition,
            "something opaque",
            Some(&info(
                "ERROR_REASON_UNKNOWN_DEFINITION",
                &[("definition_name", "robot")],
            )),
        );
        assert!(
            matches!(&err, Error::UnknownDefinition(n) if n == "robot"),
            "{err:?}"
        );
        let err = map_error(
            Code::FailedPrecondition,
            "opaque",
            Some(&info(
                "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
                &[
                    ("definition_name", "tenant"),
                    ("relation_or_permission_name", "fly"),
                ],
            )),
        );
        assert!(
            matches!(&err, Error::UnknownRelation { definition, relation } if definition == "tenant" && relation == "fly"),
            "{err:?}"
        );
        let err = map_error(
            Code::InvalidArgument,
            "x",
            Some(&info("ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED", &[])),
        );
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "depth failures deny");
        let err = map_error(
            Code::Unavailable,
            "ro",
            Some(&info("ERROR_REASON_SERVICE_READ_ONLY", &[])),
        );
        assert_eq!(err.code(), ErrorCode::ServiceUnavailable);
    }

    #[test]
    fn messages_are_understood_without_reasons() {
        let cases: [(Code, &str, ErrorCode); 9] = [
            (
                Code::FailedPrecondition,
                "object definition `spaceship` not found",
                ErrorCode::ValidationError,
            ),
            (
                Code::FailedPrecondition,
                "relation/permission `fly` not found under definition `tenant`",
                ErrorCode::ValidationError,
            ),
            (
                Code::AlreadyExists,
                "could not CREATE relationship `a`, as it already existed",
                ErrorCode::Conflict,
            ),
            (
                Code::FailedPrecondition,
                "cannot delete relation `public` in object definition `theme`, as at least one relationship exists under it",
                ErrorCode::Conflict,
            ),
            (
                Code::Unavailable,
                "tcp connect error",
                ErrorCode::ServiceUnavailable,
            ),
            (Code::DeadlineExceeded, "deadline", ErrorCode::ServiceUnavailable),
            (Code::Unknown, "h2 protocol error", ErrorCode::ServiceUnavailable),
            (
                Code::Unauthenticated,
                "Request unauthenticated with bearer",
                ErrorCode::InternalError,
            ),
            (Code::Internal, "boom", ErrorCode::InternalError),
        ];
        for (code, message, expected) in cases {
            let err = map_error(code, message, None);
            assert_eq!(err.code(), expected, "{code:?} {message}: {err:?}");
        }
        let err = map_error(
            Code::FailedPrecondition,
            "relation/permission `fly` not found under definition `tenant`",
            None,
        );
        assert!(
            matches!(&err, Error::UnknownRelation { definition, relation } if definition == "tenant" && relation == "fly"),
            "{err:?}"
        );
        let err = map_error(
            Code::InvalidArgument,
            "parse error in `schema`, line 3, column 27: Expected end of statement",
            None,
        );
        assert!(
            matches!(&err, Error::Schema(e) if e.position == Position { line: 3, column: 27 }),
            "{err:?}"
        );
    }

    #[test]
    fn only_has_permission_allows() {
        use pb::check_permission_response::Permissionship as P;
        assert_eq!(
            permissionship_from_pb(P::HasPermission as i32).unwrap(),
            Permissionship::HasPermission
        );
        assert_eq!(
            permissionship_from_pb(P::NoPermission as i32).unwrap(),
            Permissionship::NoPermission
        );
        assert_eq!(
            permissionship_from_pb(P::ConditionalPermission as i32).unwrap(),
            Permissionship::NoPermission
        );
        assert!(permissionship_from_pb(P::Unspecified as i32).is_err());
        assert!(permissionship_from_pb(99).is_err());
    }

    #[test]
    fn types_map_both_ways() {
        for text in [
            "tenant:t1#admin@user:u1",
            "theme:t#public@user:*",
            "doc:1#viewer@group:eng#member",
        ] {
            let rel: Relationship = text.parse().unwrap();
            assert_eq!(relationship_from_pb(Some(relationship_to_pb(&rel))).unwrap(), rel);
        }
        let filter = RelationshipFilter::resource_type("doc").with_subject(SubjectFilter {
            subject_type: "user".into(),
            subject_id: None,
            relation: SubjectRelationFilter::Ellipsis,
        });
        let pb_filter = filter_to_pb(&filter).unwrap();
        assert_eq!(pb_filter.resource_type, "doc");
        let relation = pb_filter
            .optional_subject_filter
            .unwrap()
            .optional_relation
            .unwrap();
        assert_eq!(relation.relation, "", "ellipsis is the empty relation");
        assert!(filter_to_pb(&RelationshipFilter::default()).is_err());
        let token = ZedToken::new("GhUKEzE3");
        let pb::Consistency { requirement } = consistency_to_pb(&Consistency::AtLeastAsFresh(token));
        assert_eq!(
            requirement,
            Some(pb::consistency::Requirement::AtLeastAsFresh(pb::ZedToken {
                token: "GhUKEzE3".into()
            }))
        );
    }

    #[test]
    fn endpoints_get_the_scheme_their_tls_setting_implies() {
        assert_eq!(
            endpoint_url("spicedb:50051", true).unwrap(),
            "https://spicedb:50051"
        );
        assert_eq!(
            endpoint_url("127.0.0.1:50051", false).unwrap(),
            "http://127.0.0.1:50051"
        );
        assert!(endpoint_url("https://x:1", false).is_err());
        assert!(endpoint_url("http://x:1", true).is_err());
        assert!(endpoint_url("  ", true).is_err());
    }
}
