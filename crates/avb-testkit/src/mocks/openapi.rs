//! Request validation against an OpenAPI 3.0 or 3.1 document (JSON or YAML): method + path template, query
//! parameters (also `$ref`'d ones and exploded arrays such as `statuses[]=a&statuses[]=b`), JSON body.
//!
//! Bodies are checked with the `jsonschema` crate (draft 2020-12). The document's `#/components/schemas/…`
//! references are rewritten to `#/$defs/…` so each operation's schema is a self-contained JSON Schema. Changes
//! made while preparing schemas (see [`OpenApiValidator::from_json`]):
//! - `nullable: true` (an OpenAPI 3.0 keyword) becomes `type: [T, "null"]`;
//! - object schemas that list `properties` and say nothing about `additionalProperties` get
//!   `additionalProperties: false`: the documents are generated from the server's classes, so a field that is not
//!   listed is a client bug (a misspelt field is silently dropped, or rejected, by the real server);
//! - `format` is not asserted (annotation only, as in draft 2020-12).

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Not JSON, or not an OpenAPI document with `paths`.
    #[error("invalid OpenAPI document: {0}")]
    Invalid(String),
}

/// One operation of the document.
#[derive(Debug, Clone)]
pub struct Operation {
    /// HTTP method, upper case.
    pub method: String,
    /// The path template as written in the document (`/{realm}/users/{id}`).
    pub template: String,
    /// `operationId`.
    pub operation_id: String,
    segments: Vec<Segment>,
    query: Vec<QueryParam>,
    body_schema: Option<Value>,
    body_required: bool,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone)]
struct QueryParam {
    name: String,
    required: bool,
    schema: Value,
}

/// A matched request: the operation and its path parameters (decoded).
#[derive(Debug, Clone)]
pub struct Matched {
    /// The operation.
    pub operation: Operation,
    /// Path parameters by name.
    pub path_params: HashMap<String, String>,
}

/// Query parameters whose values the document types as plain strings although the server parses them: checked
/// as the server would parse them. (Keycloak's document declares every query parameter `type: string`.)
pub type ValueOverrides = HashMap<String, Value>;

/// Validates requests against one OpenAPI document.
#[derive(Debug)]
pub struct OpenApiValidator {
    operations: Vec<Operation>,
    defs: Value,
    overrides: ValueOverrides,
    compiled: Mutex<HashMap<(String, String), Arc<jsonschema::Validator>>>,
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

impl OpenApiValidator {
    /// Loads a JSON document; `overrides` maps query-parameter names to the schema their values must satisfy
    /// after parsing (see [`ValueOverrides`]); `patch_defs` may adjust the prepared component schemas (`$defs`).
    pub fn from_json(
        text: &str,
        overrides: ValueOverrides,
        patch_defs: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Self, SpecError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| SpecError::Invalid(e.to_string()))?;
        Self::from_value(doc, overrides, patch_defs)
    }

    /// Loads a YAML document (OpenAPI 3.1 documents are often YAML), otherwise as [`OpenApiValidator::from_json`].
    pub fn from_yaml(
        text: &str,
        overrides: ValueOverrides,
        patch_defs: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Self, SpecError> {
        let doc: Value = serde_norway::from_str(text).map_err(|e| SpecError::Invalid(e.to_string()))?;
        Self::from_value(doc, overrides, patch_defs)
    }

    /// Loads a parsed document. Parameters given as `$ref: '#/components/parameters/…'` are resolved.
    pub fn from_value(
        doc: Value,
        overrides: ValueOverrides,
        patch_defs: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Self, SpecError> {
        let parameters = doc
            .pointer("/components/parameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let resolve = |p: &Value| -> Value {
            match p
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/parameters/"))
            {
                Some(name) => parameters.get(name).cloned().unwrap_or(Value::Null),
                None => p.clone(),
            }
        };
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or_else(|| SpecError::Invalid("no `paths` object".into()))?;
        let mut defs = doc
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        prepare_schema(&mut defs);
        if let Some(map) = defs.as_object_mut() {
            patch_defs(map);
        }
        let mut operations = Vec::new();
        for (template, item) in paths {
            let shared_params = item.get("parameters").and_then(Value::as_array);
            let segments = template
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Literal(s.to_owned()),
                })
                .collect::<Vec<_>>();
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let params = shared_params.into_iter().flatten().chain(
                    op.get("parameters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten(),
                );
                let query = params
                    .map(resolve)
                    .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                    .filter_map(|p| {
                        Some(QueryParam {
                            name: p.get("name")?.as_str()?.to_owned(),
                            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                            schema: p
                                .get("schema")
                                .cloned()
                                .map(|mut s| {
                                    prepare_schema(&mut s);
                                    s
                                })
                                .unwrap_or_else(|| json!({})),
                        })
                    })
                    .collect();
                let body = op.get("requestBody");
                let mut body_schema = body
                    .and_then(|b| b.pointer("/content/application~1json/schema"))
                    .cloned();
                if let Some(schema) = body_schema.as_mut() {
                    prepare_schema(schema);
                }
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    operation_id: op
                        .get("operationId")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    segments: segments.clone(),
                    query,
                    body_required: body.and_then(|b| b.get("required")).and_then(Value::as_bool)
                        == Some(true),
                    body_schema,
                });
            }
        }
        Ok(Self {
            operations,
            defs,
            overrides,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// Number of operations in the document.
    pub fn operation_count(&self) -> usize {
        self.operations.len()
    }

    /// Finds the operation for `method` and a path relative to the document's server base. With several matching
    /// templates the one with the most literal segments wins (`/users/count` before `/users/{id}`).
    /// `Err` is a violation: no template matches the path, or none of the matching ones has the method.
    pub fn match_operation(&self, method: &str, path: &str) -> Result<Matched, String> {
        let parts = path.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>();
        let mut best: Option<(usize, &Operation, HashMap<String, String>)> = None;
        let mut path_matched = false;
        for op in &self.operations {
            if op.segments.len() != parts.len() {
                continue;
            }
            let mut params = HashMap::new();
            let mut literals = 0;
            let matches = op.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                Segment::Literal(lit) => {
                    literals += 1;
                    lit == part
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), percent_decode(part));
                    true
                }
            });
            if !matches {
                continue;
            }
            path_matched = true;
            if !op.method.eq_ignore_ascii_case(method) {
                continue;
            }
            if best.as_ref().is_none_or(|(n, _, _)| literals > *n) {
                best = Some((literals, op, params));
            }
        }
        match best {
            Some((_, op, path_params)) => Ok(Matched {
                operation: op.clone(),
                path_params,
            }),
            None if path_matched => Err(format!("method {method} is not defined for path {path}")),
            None => Err(format!("no path template of the document matches {path}")),
        }
    }

    /// Violations of the query string (`None` = no query string) against the operation.
    pub fn validate_query(&self, op: &Operation, query: Option<&str>) -> Vec<String> {
        let mut violations = Vec::new();
        let pairs = query
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let mut seen = HashMap::new();
        let mut arrays: HashMap<&str, Vec<Value>> = HashMap::new();
        for (name, value) in &pairs {
            *seen.entry(name.as_str()).or_insert(0) += 1;
            let Some(param) = op.query.iter().find(|p| &p.name == name) else {
                violations.push(format!(
                    "query parameter `{name}` is not defined for {}",
                    op.operation_id
                ));
                continue;
            };
            if param.schema.get("type").and_then(Value::as_str) == Some("array") {
                let items = param.schema.get("items").cloned().unwrap_or_else(|| json!({}));
                arrays
                    .entry(param.name.as_str())
                    .or_default()
                    .push(coerce(&items, value));
                continue;
            }
            let typed = match self.overrides.get(name) {
                Some(schema) => Some((schema.clone(), parse_scalar(value))),
                None => Some((param.schema.clone(), coerce(&param.schema, value))),
            };
            if let Some((schema, instance)) = typed {
                match self.standalone(&schema) {
                    Ok(validator) => {
                        for err in validator.iter_errors(&instance) {
                            violations.push(format!("query parameter `{name}`={value:?}: {err}"));
                        }
                    }
                    Err(e) => violations.push(format!(
                        "schema of query parameter `{name}` does not compile: {e}"
                    )),
                }
            }
        }
        for (name, items) in arrays {
            if let Some(param) = op.query.iter().find(|p| p.name == name) {
                match self.standalone(&param.schema) {
                    Ok(validator) => {
                        for err in validator.iter_errors(&Value::Array(items)) {
                            violations.push(format!("query parameter `{name}`: {err}"));
                        }
                    }
                    Err(e) => violations.push(format!(
                        "schema of query parameter `{name}` does not compile: {e}"
                    )),
                }
            }
            seen.remove(name);
        }
        for (name, count) in seen {
            if count > 1 {
                violations.push(format!("query parameter `{name}` given {count} times"));
            }
        }
        for param in op.query.iter().filter(|p| p.required) {
            if !pairs.iter().any(|(n, _)| n == &param.name) {
                violations.push(format!("required query parameter `{}` is missing", param.name));
            }
        }
        violations
    }

    /// Violations of the body (raw bytes, with its `Content-Type`) against the operation's request body.
    pub fn validate_body(&self, op: &Operation, content_type: Option<&str>, body: &[u8]) -> Vec<String> {
        let Some(schema) = &op.body_schema else {
            return if body.is_empty() {
                Vec::new()
            } else {
                vec![format!("{} takes no request body", op.operation_id)]
            };
        };
        if body.is_empty() {
            return if op.body_required {
                vec!["request body is required".into()]
            } else {
                Vec::new()
            };
        }
        let mut violations = Vec::new();
        let is_json = content_type
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            violations.push(format!(
                "Content-Type must be application/json, got {}",
                content_type.unwrap_or("none")
            ));
        }
        let instance: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                violations.push(format!("body is not JSON: {e}"));
                return violations;
            }
        };
        match self.body_validator(op, schema) {
            Ok(validator) => {
                for err in validator.iter_errors(&instance) {
                    violations.push(format!("body{}: {err}", err.instance_path()));
                }
            }
            Err(e) => violations.push(format!("schema of {} does not compile: {e}", op.operation_id)),
        }
        violations
    }

    /// Compiles `schema` with the document's component schemas available as `$defs`.
    fn standalone(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = ("schema".to_owned(), schema.to_string());
        if let Some(v) = self
            .compiled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Arc::clone(v));
        }
        let mut root = match schema {
            Value::Object(map) => map.clone(),
            other => {
                let mut map = Map::new();
                map.insert("allOf".into(), json!([other]));
                map
            }
        };
        root.insert("$defs".into(), self.defs.clone());
        let validator = Arc::new(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&Value::Object(root))
                .map_err(|e| e.to_string())?,
        );
        self.compiled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Arc::clone(&validator));
        Ok(validator)
    }

    fn body_validator(&self, op: &Operation, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = (op.method.clone(), op.template.clone());
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = compiled.get(&key) {
            return Ok(Arc::clone(v));
        }
        let mut root = match schema {
            Value::Object(map) => map.clone(),
            other => {
                let mut map = Map::new();
                map.insert("allOf".into(), json!([other]));
                map
            }
        };
        root.insert("$defs".into(), self.defs.clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&Value::Object(root))
            .map_err(|e| e.to_string())?;
        let validator = Arc::new(validator);
        compiled.insert(key, Arc::clone(&validator));
        Ok(validator)
    }
}

/// The value of a query parameter typed by its schema (a string stays a string unless the schema says otherwise).
fn coerce(schema: &Value, raw: &str) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer" | "number" | "boolean") => parse_scalar(raw),
        _ => Value::String(raw.to_owned()),
    }
}

/// `true`/`false`/numbers as JSON scalars; anything else as a string.
fn parse_scalar(raw: &str) -> Value {
    match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
    }
}

/// Rewrites refs to `$defs`, translates `nullable`, and closes listed-property objects (see the module docs).
fn prepare_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(name) = reference.strip_prefix("#/components/schemas/")
            {
                *reference = format!("#/$defs/{name}");
            }
            if map.get("nullable") == Some(&Value::Bool(true))
                && let Some(ty) = map.get("type").cloned()
                && ty.is_string()
            {
                map.remove("nullable");
                map.insert("type".into(), json!([ty, "null"]));
            }
            let is_object = map.get("type").and_then(Value::as_str) == Some("object");
            if is_object
                && map.get("properties").is_some_and(Value::is_object)
                && !map.contains_key("additionalProperties")
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(prepare_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(prepare_schema),
        _ => {}
    }
}

/// Percent-decodes one path segment (invalid escapes are kept as they are).
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = ((*h as char).to_digit(16), (*l as char).to_digit(16))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const DOC: &str = r##"{
      "openapi": "3.0.2",
      "paths": {
        "/{realm}/users/{id}": { "get": { "operationId": "byId" } },
        "/{realm}/users/count": { "get": { "operationId": "count",
            "parameters": [{ "in": "query", "name": "n", "required": true, "schema": { "type": "integer" } }] } },
        "/{realm}/things": { "post": { "operationId": "postThing",
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/Thing" } } } } } }
      },
      "components": { "schemas": { "Thing": { "type": "object", "properties": {
          "name": { "type": "string", "nullable": true }, "size": { "type": "integer" } } } } }
    }"##;

    fn validator() -> OpenApiValidator {
        OpenApiValidator::from_json(DOC, HashMap::new(), |_| {}).unwrap()
    }

    #[test]
    fn literal_segments_win_over_parameters_and_parameters_are_decoded() {
        let v = validator();
        assert_eq!(
            v.match_operation("GET", "/r/users/count")
                .unwrap()
                .operation
                .operation_id,
            "count"
        );
        let m = v.match_operation("GET", "/r/users/a%2Fb").unwrap();
        assert_eq!(m.operation.operation_id, "byId");
        assert_eq!(m.path_params["id"], "a/b");
        assert!(
            v.match_operation("DELETE", "/r/users/x")
                .unwrap_err()
                .starts_with("method")
        );
        assert!(v.match_operation("GET", "/r/nothing").is_err());
    }

    #[test]
    fn query_and_body_violations_are_reported() {
        let v = validator();
        let count = v.match_operation("GET", "/r/users/count").unwrap().operation;
        assert!(v.validate_query(&count, Some("n=3")).is_empty());
        assert_eq!(
            v.validate_query(&count, None).len(),
            1,
            "required parameter missing"
        );
        assert_eq!(v.validate_query(&count, Some("n=x&m=1")).len(), 2);
        let post = v.match_operation("POST", "/r/things").unwrap().operation;
        let json = Some("application/json");
        assert!(
            v.validate_body(&post, json, br#"{"name":null,"size":1}"#)
                .is_empty(),
            "nullable translated"
        );
        assert_eq!(v.validate_body(&post, json, br#"{"size":"big"}"#).len(), 1);
        assert_eq!(
            v.validate_body(&post, json, br#"{"colour":"red"}"#).len(),
            1,
            "closed object"
        );
        assert_eq!(v.validate_body(&post, json, b"").len(), 1, "required body");
        assert_eq!(v.validate_body(&post, Some("text/plain"), b"{}").len(), 1);
    }
}
