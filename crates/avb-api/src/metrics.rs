//! Prometheus metrics with the spec's names, labels and buckets (§12.3), recorded into a recorder owned by the
//! [`crate::App`] — not a process-global one — so several apps (tests, embedded use) never mix their numbers.
//!
//! Where they come from: HTTP requests (the pipeline), WebSocket connections and messages, sessions (realtime
//! connections), API-key use (admission), storage operations ([`avb_tenancy::observed`] around the app's
//! store: `avb_db_query_duration_seconds`), the speech and language engines ([`avb_voice::metered`] around the
//! session ports: `avb_stt_*`, `avb_tts_*`, `avb_llm_*`), background jobs (the job runner; the spec's Celery
//! names are kept so existing dashboards work), the tenant cache (hits and misses, read at each scrape) and
//! tenant totals by tier and status (recounted by the job runner, spec task `aggregate-metrics`).

use avb_core::{ApiKeyId, TenantId};
use avb_tenancy::observed::StoreObserver;
use avb_tenancy::resolve::TenantCache;
use avb_voice::metered::{LlmRecord, SttRecord, TtsRecord, VoiceMeter};
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

const TARGET: &str = "avb";

/// Buckets of histograms the spec gives none of its own for, and of HTTP durations: the spec's HTTP buckets
/// (10 ms to 10 s) with three finer ones below, since this server answers most requests in about a millisecond.
const DEFAULT_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The spec's own buckets, per histogram.
const SPEC_BUCKETS: &[(&str, &[f64])] = &[
    (
        "avb_session_duration_seconds",
        &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0],
    ),
    ("avb_stt_duration_seconds", &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]),
    (
        "avb_stt_audio_duration_seconds",
        &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0],
    ),
    ("avb_tts_duration_seconds", &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0]),
    ("avb_llm_duration_seconds", &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
    (
        "avb_db_query_duration_seconds",
        &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0],
    ),
    (
        "avb_celery_task_duration_seconds",
        &[0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0],
    ),
];

/// `(method, endpoint, status)` of a finished request.
type HttpSeries = (&'static str, &'static str, u16);

/// The app's metrics. Cloning shares them (the store observer and the engine meter hold clones).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

struct MetricsInner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// `avb_http_requests_total` and `avb_http_request_duration_seconds` handles per series, registered on a
    /// series' first request: later requests skip building and hashing the metric keys.
    http: RwLock<HashMap<HttpSeries, (Counter, Histogram)>>,
    /// `avb_api_key_usage_total` per key, likewise (a request authenticated by key bumps it).
    api_keys: RwLock<HashMap<ApiKeyId, Counter>>,
    /// `avb_db_query_duration_seconds` per operation, likewise (several per request).
    db: RwLock<HashMap<&'static str, Histogram>>,
    /// Engine label values seen so far (models and languages come from clients' session settings).
    engine_labels: BoundedLabels,
    /// The tenant cache whose own hit and miss totals are read into `avb_cache_*_total{cache="tenant"}` each time
    /// the metrics are rendered (by `/metrics` and by monitoring snapshots alike).
    tenant_cache: Option<TenantCache>,
}

/// Distinct label values of the engine metrics (models, languages, voices, providers; some chosen by clients
/// in their session settings) exported as they are, across those metrics; further values are exported as
/// [`OTHER_LABEL`]: a client sending a new voice or language per session must not grow the exposition (and
/// Prometheus) without bound.
pub const MAX_CLIENT_LABEL_VALUES: usize = 128;

/// The label value that stands for every value beyond [`MAX_CLIENT_LABEL_VALUES`] (and for over-long ones).
pub const OTHER_LABEL: &str = "other";

/// Longest label value exported as is.
const MAX_LABEL_LEN: usize = 64;

/// The label values admitted so far, first come first kept.
#[derive(Default)]
struct BoundedLabels {
    seen: RwLock<HashSet<String>>,
}

impl BoundedLabels {
    /// `value` when it is admitted (already seen, or room left), [`OTHER_LABEL`] otherwise.
    fn admit(&self, value: &str) -> String {
        if value.len() > MAX_LABEL_LEN {
            return OTHER_LABEL.to_owned();
        }
        let known = |seen: &HashSet<String>| seen.contains(value);
        if known(&self.seen.read().unwrap_or_else(PoisonError::into_inner)) {
            return value.to_owned();
        }
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        // Checked again under the write lock: another caller may have admitted it, or filled the set, meanwhile.
        if known(&seen) || seen.len() < MAX_CLIENT_LABEL_VALUES {
            seen.insert(value.to_owned());
            value.to_owned()
        } else {
            OTHER_LABEL.to_owned()
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn labels(pairs: &[(&'static str, String)]) -> Vec<Label> {
    pairs.iter().map(|(k, v)| Label::new(*k, v.clone())).collect()
}

fn metadata() -> Metadata<'static> {
    Metadata::new(TARGET, metrics::Level::INFO, None)
}

/// The cached handle of `key`, registering it with `register` on first use.
fn cached<K: std::hash::Hash + Eq + Copy, H: Clone>(
    cache: &RwLock<HashMap<K, H>>,
    key: K,
    register: impl FnOnce() -> H,
) -> H {
    if let Some(handle) = cache.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return handle.clone();
    }
    let handle = register();
    cache
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_insert(handle)
        .clone()
}

impl Metrics {
    /// A fresh recorder: the spec's buckets where it gives them, 1 ms to 10 s elsewhere.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// A fresh recorder that also exports `tenant_cache`'s hit and miss totals.
    pub fn with_tenant_cache(tenant_cache: TenantCache) -> Self {
        Self::build(Some(tenant_cache))
    }

    fn build(tenant_cache: Option<TenantCache>) -> Self {
        let builder = SPEC_BUCKETS.iter().fold(
            PrometheusBuilder::new().set_buckets(DEFAULT_BUCKETS),
            |builder, (name, buckets)| {
                builder.and_then(|b| b.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets))
            },
        );
        // Only an empty bucket list is refused, and none of the constants is empty.
        let recorder = builder
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        Self {
            inner: Arc::new(MetricsInner {
                recorder,
                handle,
                http: RwLock::default(),
                api_keys: RwLock::default(),
                db: RwLock::default(),
                engine_labels: BoundedLabels::default(),
                tenant_cache,
            }),
        }
    }

    /// Adds to a counter.
    pub fn count(&self, name: &'static str, labels_: &[(&'static str, String)], by: u64) {
        let key = Key::from_parts(name, labels(labels_));
        self.inner
            .recorder
            .register_counter(&key, &metadata())
            .increment(by);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels_: &[(&'static str, String)], value: f64) {
        let key = Key::from_parts(name, labels(labels_));
        self.inner.recorder.register_gauge(&key, &metadata()).set(value);
    }

    /// Moves a gauge by `delta`.
    pub fn gauge_add(&self, name: &'static str, labels_: &[(&'static str, String)], delta: f64) {
        let key = Key::from_parts(name, labels(labels_));
        let gauge = self.inner.recorder.register_gauge(&key, &metadata());
        if delta >= 0.0 {
            gauge.increment(delta)
        } else {
            gauge.decrement(-delta)
        }
    }

    /// Records a histogram sample.
    pub fn observe(&self, name: &'static str, labels_: &[(&'static str, String)], value: f64) {
        let key = Key::from_parts(name, labels(labels_));
        self.inner
            .recorder
            .register_histogram(&key, &metadata())
            .record(value);
    }

    /// One finished HTTP request: `avb_http_requests_total` and `avb_http_request_duration_seconds`.
    pub fn http_request(&self, method: &'static str, endpoint: &'static str, status: u16, seconds: f64) {
        let series = (method, endpoint, status);
        let (counter, histogram) = cached(&self.inner.http, series, || self.register_http(series));
        counter.increment(1);
        histogram.record(seconds);
    }

    fn register_http(&self, (method, endpoint, status): HttpSeries) -> (Counter, Histogram) {
        let metadata = metadata();
        let method = Label::from_static_parts("method", method);
        let endpoint = Label::from_static_parts("endpoint", endpoint);
        let counter = Key::from_parts(
            "avb_http_requests_total",
            vec![
                method.clone(),
                endpoint.clone(),
                Label::new("status", status.to_string()),
            ],
        );
        let histogram = Key::from_parts("avb_http_request_duration_seconds", vec![method, endpoint]);
        (
            self.inner.recorder.register_counter(&counter, &metadata),
            self.inner.recorder.register_histogram(&histogram, &metadata),
        )
    }

    /// One request authenticated by an API key: `avb_api_key_usage_total{tenant_id, key_id}`.
    pub fn api_key_used(&self, tenant: TenantId, key: ApiKeyId) {
        cached(&self.inner.api_keys, key, || {
            let key = Key::from_parts(
                "avb_api_key_usage_total",
                vec![
                    Label::new("tenant_id", tenant.to_string()),
                    Label::new("key_id", key.to_string()),
                ],
            );
            self.inner.recorder.register_counter(&key, &metadata())
        })
        .increment(1);
    }

    /// One storage operation: `avb_db_query_duration_seconds{operation}`.
    pub fn db_query(&self, operation: &'static str, seconds: f64) {
        cached(&self.inner.db, operation, || {
            let key = Key::from_parts(
                "avb_db_query_duration_seconds",
                vec![Label::from_static_parts("operation", operation)],
            );
            self.inner.recorder.register_histogram(&key, &metadata())
        })
        .record(seconds);
    }

    /// One background job finished: `avb_celery_tasks_total{task, status}` (`success` or `failure`) and
    /// `avb_celery_task_duration_seconds{task}`.
    pub fn job_finished(&self, task: &str, succeeded: bool, seconds: f64) {
        let status = if succeeded { "success" } else { "failure" };
        self.count(
            "avb_celery_tasks_total",
            &[("task", task.to_owned()), ("status", status.to_owned())],
            1,
        );
        self.observe(
            "avb_celery_task_duration_seconds",
            &[("task", task.to_owned())],
            seconds,
        );
    }

    /// Sets a cache's hit and miss totals (`avb_cache_hits_total{cache}`, `avb_cache_misses_total{cache}`) from
    /// the counts the cache keeps itself.
    pub fn cache_totals(&self, cache: &'static str, hits: u64, misses: u64) {
        let label = || vec![Label::from_static_parts("cache", cache)];
        let recorder = &self.inner.recorder;
        recorder
            .register_counter(&Key::from_parts("avb_cache_hits_total", label()), &metadata())
            .absolute(hits);
        recorder
            .register_counter(&Key::from_parts("avb_cache_misses_total", label()), &metadata())
            .absolute(misses);
    }

    /// Sets `avb_tenants_total{tier, status}`.
    pub fn tenants(&self, tier: &'static str, status: &'static str, count: u64) {
        let key = Key::from_parts(
            "avb_tenants_total",
            vec![
                Label::from_static_parts("tier", tier),
                Label::from_static_parts("status", status),
            ],
        );
        // Gauges are f64; tenant counts stay far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        self.inner
            .recorder
            .register_gauge(&key, &metadata())
            .set(count as f64);
    }

    /// The Prometheus text exposition, with the totals read from their sources (the tenant cache) first.
    pub fn render(&self) -> String {
        if let Some(cache) = &self.inner.tenant_cache {
            let stats = cache.stats();
            self.cache_totals("tenant", stats.hits, stats.misses);
        }
        self.inner.handle.render()
    }

    /// Every counter and gauge, and every histogram's `_sum` and `_count`, as structured samples: the numbers of
    /// [`Metrics::render`] exactly (they are read back from it), for consumers that want JSON
    /// (`/ws/v2/admin/monitoring`). Histogram buckets are left out.
    pub fn snapshot(&self) -> Vec<Sample> {
        parse_exposition(&self.render())
    }
}

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sample {
    /// Series name (`avb_http_requests_total`, `avb_tts_duration_seconds_sum`, …).
    pub name: String,
    /// Labels, by name.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Value (`NaN` and infinities, which JSON cannot carry, are left out of snapshots).
    pub value: f64,
}

/// Reads the samples back from the Prometheus text format as the exporter writes it (`name{k="v",…} value` lines,
/// label values escaped with `\\`, `\"` and `\n`). Hand-written rather than a parser crate: the input is our own
/// exporter's, a narrow and fixed subset of the format. Lines that do not parse are skipped, never a panic.
fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(parse_sample)
        .filter(|sample| !sample.name.ends_with("_bucket") && sample.value.is_finite())
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        None => (series, std::collections::BTreeMap::new()),
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"` (the braces removed) into a map; `None` when malformed.
fn parse_labels(mut rest: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let mut labels = std::collections::BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after.get(end + 1..)?;
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Some(labels)
}

/// Storage operations of the app's store (wrapped in [`avb_tenancy::observed::ObservedStore`] by the builder).
impl StoreObserver for Metrics {
    fn observe(&self, operation: &'static str, elapsed: Duration, _ok: bool) {
        self.db_query(operation, elapsed.as_secs_f64());
    }
}

/// The speech and language engines of realtime sessions (wrapped by the builder, see
/// [`avb_voice::realtime::engine::SessionPorts::metered`]).
impl VoiceMeter for Metrics {
    fn stt(&self, record: &SttRecord) {
        let labels = &self.inner.engine_labels;
        let model = labels.admit(&record.model);
        self.count(
            "avb_stt_requests_total",
            &[
                ("model", model.clone()),
                ("language", labels.admit(&record.language)),
            ],
            1,
        );
        if let Some(processing) = record.processing {
            self.observe(
                "avb_stt_duration_seconds",
                &[("model", model.clone())],
                processing.as_secs_f64(),
            );
        }
        self.observe(
            "avb_stt_audio_duration_seconds",
            &[("model", model)],
            record.audio_seconds,
        );
    }

    fn tts(&self, record: &TtsRecord) {
        let labels = &self.inner.engine_labels;
        let voice = labels.admit(&record.voice);
        self.count(
            "avb_tts_requests_total",
            &[
                ("voice", voice.clone()),
                ("language", labels.admit(&record.language)),
            ],
            1,
        );
        self.observe(
            "avb_tts_duration_seconds",
            &[("voice", voice.clone())],
            record.duration.as_secs_f64(),
        );
        self.count("avb_tts_characters_total", &[("voice", voice)], record.characters);
    }

    fn llm(&self, record: &LlmRecord) {
        let labels = &self.inner.engine_labels;
        let provider = labels.admit(&record.provider);
        let model = labels.admit(&record.model);
        let series = [("provider", provider.clone()), ("model", model.clone())];
        self.count("avb_llm_requests_total", &series, 1);
        for (kind, tokens) in [("input", record.input_tokens), ("output", record.output_tokens)] {
            self.count(
                "avb_llm_tokens_total",
                &[
                    ("provider", provider.clone()),
                    ("model", model.clone()),
                    ("type", kind.to_owned()),
                ],
                tokens,
            );
        }
        self.observe("avb_llm_duration_seconds", &series, record.duration.as_secs_f64());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_label_values_are_bounded() {
        let metrics = Metrics::new();
        let limit = MAX_CLIENT_LABEL_VALUES;
        for i in 0..limit + 10 {
            metrics.tts(&TtsRecord::new(
                format!("voice-{i}"),
                "en",
                1,
                0.1,
                Duration::ZERO,
            ));
        }
        // A known value keeps its own series after the set is full; an over-long one never gets one.
        metrics.tts(&TtsRecord::new("voice-0", "en", 1, 0.1, Duration::ZERO));
        metrics.tts(&TtsRecord::new("v".repeat(65), "en", 1, 0.1, Duration::ZERO));
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("avb_tts_characters_total{"))
            .count();
        // The distinct voices admitted (the language "en" took one place), plus "other".
        assert_eq!(series, limit - 1 + 1, "{text}");
        assert!(
            text.contains("avb_tts_characters_total{voice=\"voice-0\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("avb_tts_characters_total{voice=\"other\"} 12"),
            "{text}"
        );
    }

    #[test]
    fn snapshots_read_back_what_the_exposition_says() {
        let metrics = Metrics::new();
        metrics.count(
            "avb_sessions_total",
            &[
                ("tenant_id", "t\"1\\x\ny".to_owned()),
                ("status", "completed".to_owned()),
            ],
            3,
        );
        metrics.gauge("avb_active_sessions", &[("tenant_id", "a,b=c".to_owned())], 2.0);
        metrics.observe("avb_tts_duration_seconds", &[("voice", "alloy".to_owned())], 0.5);
        let samples = metrics.snapshot();
        let find = |name: &str| samples.iter().filter(|s| s.name == name).collect::<Vec<_>>();
        let sessions = find("avb_sessions_total");
        assert_eq!(sessions.len(), 1, "{samples:?}");
        assert_eq!(sessions[0].labels["tenant_id"], "t\"1\\x\ny");
        assert_eq!(sessions[0].labels["status"], "completed");
        assert_eq!(sessions[0].value, 3.0);
        assert_eq!(find("avb_active_sessions")[0].labels["tenant_id"], "a,b=c");
        assert_eq!(find("avb_active_sessions")[0].value, 2.0);
        assert_eq!(find("avb_tts_duration_seconds_count")[0].value, 1.0);
        assert_eq!(find("avb_tts_duration_seconds_sum")[0].value, 0.5);
        assert!(find("avb_tts_duration_seconds_bucket").is_empty());
    }

    #[test]
    fn malformed_exposition_lines_are_skipped() {
        let text = "ok 1\nbad{a=\"x} 2\nbad{a=x} 3\nnovalue\nnan NaN\nlabels{a=\"1\",b=\"2\"} 4\n";
        let samples = parse_exposition(text);
        let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok", "labels"], "{samples:?}");
    }

    #[test]
    fn storage_operations_use_the_specs_buckets() {
        let metrics = Metrics::new();
        StoreObserver::observe(&metrics, "tenants.get", Duration::from_micros(300), true);
        StoreObserver::observe(&metrics, "tenants.get", Duration::from_millis(20), false);
        let text = metrics.render();
        for (le, count) in [
            ("0.001", 1),
            ("0.005", 1),
            ("0.01", 1),
            ("0.05", 2),
            ("1", 2),
            ("+Inf", 2),
        ] {
            let line = format!(
                "avb_db_query_duration_seconds_bucket{{operation=\"tenants.get\",le=\"{le}\"}} {count}"
            );
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(!text.contains("le=\"0.0025\""), "{text}");
    }
}
