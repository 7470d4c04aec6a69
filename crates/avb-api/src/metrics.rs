//! Prometheus metrics with the spec's names (§12.3), recorded into a recorder owned by the [`crate::App`] — not a
//! process-global one — so several apps (tests, embedded use) never mix their numbers.

use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

const TARGET: &str = "avb";

/// `(method, endpoint, status)` of a finished request.
type HttpSeries = (&'static str, &'static str, u16);

/// The app's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// `avb_http_requests_total` and `avb_http_request_duration_seconds` handles per series, registered on a
    /// series' first request: later requests skip building and hashing the metric keys.
    http: RwLock<HashMap<HttpSeries, (Counter, Histogram)>>,
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

impl Metrics {
    /// A fresh recorder with request-duration buckets from 1 ms to 10 s.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Self {
            recorder,
            handle,
            http: RwLock::default(),
        }
    }

    /// Adds to a counter.
    pub fn count(&self, name: &'static str, labels_: &[(&'static str, String)], by: u64) {
        let key = Key::from_parts(name, labels(labels_));
        self.recorder
            .register_counter(&key, &Metadata::new(TARGET, metrics::Level::INFO, None))
            .increment(by);
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &'static str, labels_: &[(&'static str, String)], value: f64) {
        let key = Key::from_parts(name, labels(labels_));
        self.recorder
            .register_gauge(&key, &Metadata::new(TARGET, metrics::Level::INFO, None))
            .set(value);
    }

    /// Moves a gauge by `delta`.
    pub fn gauge_add(&self, name: &'static str, labels_: &[(&'static str, String)], delta: f64) {
        let key = Key::from_parts(name, labels(labels_));
        let gauge = self
            .recorder
            .register_gauge(&key, &Metadata::new(TARGET, metrics::Level::INFO, None));
        if delta >= 0.0 {
            gauge.increment(delta)
        } else {
            gauge.decrement(-delta)
        }
    }

    /// Records a histogram sample.
    pub fn observe(&self, name: &'static str, labels_: &[(&'static str, String)], value: f64) {
        let key = Key::from_parts(name, labels(labels_));
        self.recorder
            .register_histogram(&key, &Metadata::new(TARGET, metrics::Level::INFO, None))
            .record(value);
    }

    /// One finished HTTP request: `avb_http_requests_total` and `avb_http_request_duration_seconds`.
    pub fn http_request(&self, method: &'static str, endpoint: &'static str, status: u16, seconds: f64) {
        let series = (method, endpoint, status);
        {
            let cache = self.http.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((counter, histogram)) = cache.get(&series) {
                counter.increment(1);
                histogram.record(seconds);
                return;
            }
        }
        let handles = self.register_http(series);
        let mut cache = self.http.write().unwrap_or_else(PoisonError::into_inner);
        let (counter, histogram) = cache.entry(series).or_insert(handles);
        counter.increment(1);
        histogram.record(seconds);
    }

    fn register_http(&self, (method, endpoint, status): HttpSeries) -> (Counter, Histogram) {
        let metadata = Metadata::new(TARGET, metrics::Level::INFO, None);
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
            self.recorder.register_counter(&counter, &metadata),
            self.recorder.register_histogram(&histogram, &metadata),
        )
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
