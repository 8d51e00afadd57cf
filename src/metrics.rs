//! Prometheus metrics, with the `prometheus-client` crate (the Prometheus project's own Rust
//! client): one registry for the process, recorded where things happen (the request middleware,
//! the sendfile path, the database writer, fsync, the token cache) and served as text on
//! `metrics_listen` (`http::metrics_server`), a separate address, off by default.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/api/video/{id}`), never the path: ids do not become series.
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// `ok`, or the error code of the refusal (`signature-mismatch`, `url-used`, …).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// Set on an error response: its code, for `upload_outcomes`.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    pub uploads_in_progress: Gauge,
    pub upload_outcomes: Family<CodeLabel, Counter>,
    pub db_commit_seconds: Histogram,
    pub disk_sync_seconds: Histogram,
    pub token_cache: Family<ResultLabel, Counter>,
    pub free_disk_bytes: Gauge,
    pub jobs_waiting: Gauge,
    registry: Registry,
}

fn seconds() -> Histogram {
    // 100 µs to ~100 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("flare");
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(seconds),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            uploads_in_progress: Gauge::default(),
            upload_outcomes: Family::default(),
            db_commit_seconds: seconds(),
            disk_sync_seconds: seconds(),
            token_cache: Family::default(),
            free_disk_bytes: Gauge::default(),
            jobs_waiting: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            m.latency.clone(),
        );
        registry.register(
            "http_received_bytes",
            "Request body bytes received (declared lengths)",
            m.bytes_received.clone(),
        );
        registry.register(
            "http_sent_bytes",
            "Response body bytes sent",
            m.bytes_sent.clone(),
        );
        registry.register(
            "uploads_in_progress",
            "Upload requests (PUT, tus, IETF) being received now",
            m.uploads_in_progress.clone(),
        );
        registry.register(
            "upload_outcomes",
            "Upload requests by outcome: ok or the refusal's error code",
            m.upload_outcomes.clone(),
        );
        registry.register(
            "db_commit_duration_seconds",
            "Time of each database commit (a group of changes)",
            m.db_commit_seconds.clone(),
        );
        registry.register(
            "disk_sync_duration_seconds",
            "Time of each fsync of an upload",
            m.disk_sync_seconds.clone(),
        );
        registry.register(
            "token_cache_lookups",
            "Token checks answered from the cache (hit) or the database (miss)",
            m.token_cache.clone(),
        );
        registry.register(
            "free_disk_bytes",
            "Free bytes on the data folder's file system, at scrape time",
            m.free_disk_bytes.clone(),
        );
        registry.register(
            "media_jobs_waiting",
            "Poster, rendition and fast-start jobs queued or running, at scrape time",
            m.jobs_waiting.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Records one answered request.
    pub fn request(
        &self,
        route: &str,
        method: &str,
        status: u16,
        secs: f64,
        received: u64,
        sent: u64,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel {
                route: route.to_string(),
            })
            .observe(secs);
        self.bytes_received.inc_by(received);
        self.bytes_sent.inc_by(sent);
    }
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Times `f` into `histogram`.
pub fn timed<T>(histogram: &Histogram, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = f();
    histogram.observe(started.elapsed().as_secs_f64());
    out
}
