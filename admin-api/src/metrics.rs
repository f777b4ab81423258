//! Prometheus metrics, served as OpenMetrics text at `GET /metrics` on the admin port: S3 requests
//! per operation, admin requests per route, S3 bytes in/out, and per-element usage read from the
//! index at scrape time.
//!
//! Recording is lock-free on the hot path apart from the label map's read lock; label values are
//! `&'static str`, integers or shared `Arc<str>`s, so a request allocates no label strings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use artstore_metadata::Store;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
/// The counter type handed to the S3 side for streamed response bytes.
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::AdminState;
use crate::error::ApiError;

/// Operation label of S3 requests refused before the operation was known (bad signature,
/// invalid bearer token, unroutable request).
pub const UNKNOWN_OPERATION: &str = "unknown";
/// Route label of admin requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Request latency buckets in seconds: 1 ms to 1 min.
const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The OpenMetrics content type (Prometheus negotiates it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct S3RequestLabels {
    pub operation: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct S3OpLabels {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdminRequestLabels {
    pub method: &'static str,
    pub route: Arc<str>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdminRouteLabels {
    pub method: &'static str,
    pub route: Arc<str>,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric of the process; one instance shared by the S3 endpoint and the admin API.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    s3_requests: Family<S3RequestLabels, Counter>,
    s3_duration: Histograms<S3OpLabels>,
    s3_received: Family<S3OpLabels, Counter>,
    s3_sent: Family<S3OpLabels, Counter>,
    admin_requests: Family<AdminRequestLabels, Counter>,
    admin_duration: Histograms<AdminRouteLabels>,
    /// Incomplete multipart uploads aborted by the expiry sweep.
    uploads_expired: Counter,
    /// Interned route templates: the set is bounded by the router's routes.
    routes: RwLock<HashMap<Box<str>, Arc<str>>>,
    elements: Arc<ElementUsage>,
    spool: Arc<AuditSpoolGauges>,
    scrub: ScrubCounters,
    /// One scrape at a time: the element snapshot and its encoding belong together.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("artstore");
        let s3_requests = Family::<S3RequestLabels, Counter>::default();
        let s3_duration = Histograms::<S3OpLabels>::new_with_constructor(latency_histogram);
        let s3_received = Family::<S3OpLabels, Counter>::default();
        let s3_sent = Family::<S3OpLabels, Counter>::default();
        let admin_requests = Family::<AdminRequestLabels, Counter>::default();
        let admin_duration =
            Histograms::<AdminRouteLabels>::new_with_constructor(latency_histogram);
        let elements = Arc::new(ElementUsage::default());
        let spool = Arc::new(AuditSpoolGauges::default());
        let uploads_expired = Counter::default();
        registry.register(
            "multipart_uploads_expired",
            "Incomplete multipart uploads aborted because they were older than their expiry age",
            uploads_expired.clone(),
        );
        registry.register(
            "s3_requests",
            "S3 requests by operation and HTTP status",
            s3_requests.clone(),
        );
        registry.register_with_unit(
            "s3_request_duration",
            "Time until the S3 response headers are ready, by operation",
            Unit::Seconds,
            s3_duration.clone(),
        );
        registry.register_with_unit(
            "s3_received",
            "Request body bytes read by the S3 endpoint, by operation",
            Unit::Bytes,
            s3_received.clone(),
        );
        registry.register_with_unit(
            "s3_sent",
            "Response body bytes sent by the S3 endpoint, by operation",
            Unit::Bytes,
            s3_sent.clone(),
        );
        registry.register(
            "admin_requests",
            "Admin API requests by method, route template and HTTP status",
            admin_requests.clone(),
        );
        registry.register_with_unit(
            "admin_request_duration",
            "Admin API request latency by method and route template",
            Unit::Seconds,
            admin_duration.clone(),
        );
        registry.register_collector(Box::new(elements.clone()));
        registry.register_collector(Box::new(spool.clone()));
        let scrub = ScrubCounters::default();
        registry.register_with_unit(
            "scrub",
            "Data bytes the background scrub re-read",
            Unit::Bytes,
            scrub.bytes.clone(),
        );
        registry.register(
            "scrub_objects",
            "Objects the background scrub checked",
            scrub.objects.clone(),
        );
        registry.register(
            "scrub_corrupt",
            "Checks by the background scrub that found an object's data damaged (size, checksum, missing file or sidecar)",
            scrub.corrupt.clone(),
        );
        Metrics {
            registry,
            s3_requests,
            s3_duration,
            s3_received,
            s3_sent,
            admin_requests,
            admin_duration,
            uploads_expired,
            routes: RwLock::new(HashMap::new()),
            elements,
            spool,
            scrub,
            scrape: Mutex::new(()),
        }
    }

    /// The counters the background scrub adds to.
    pub fn scrub(&self) -> &ScrubCounters {
        &self.scrub
    }

    /// One finished S3 request (its response headers are ready).
    pub fn s3_request(&self, operation: &'static str, status: u16, elapsed: Duration) {
        self.s3_requests
            .get_or_create(&S3RequestLabels { operation, status })
            .inc();
        self.s3_duration
            .get_or_create(&S3OpLabels { operation })
            .observe(elapsed.as_secs_f64());
    }

    /// Request body bytes of an S3 operation.
    pub fn s3_received(&self, operation: &'static str, bytes: u64) {
        if bytes > 0 {
            self.s3_received
                .get_or_create(&S3OpLabels { operation })
                .inc_by(bytes);
        }
    }

    /// The response-bytes counter of an operation, for a streaming body to add to.
    pub fn s3_sent(&self, operation: &'static str) -> Counter {
        self.s3_sent
            .get_or_create(&S3OpLabels { operation })
            .clone()
    }

    /// The counter of expired multipart uploads, for the expiry sweep to add to.
    pub fn uploads_expired(&self) -> Counter {
        self.uploads_expired.clone()
    }

    /// The shared label value of a route template.
    fn route(&self, template: &str) -> Arc<str> {
        if let Ok(map) = self.routes.read()
            && let Some(r) = map.get(template)
        {
            return r.clone();
        }
        let r: Arc<str> = Arc::from(template);
        if let Ok(mut map) = self.routes.write() {
            return map
                .entry(template.into())
                .or_insert_with(|| r.clone())
                .clone();
        }
        r
    }

    /// One finished admin request; `route` is the matched template, `None` when nothing matched.
    pub fn admin_request(
        &self,
        method: &Method,
        route: Option<&str>,
        status: u16,
        elapsed: Duration,
    ) {
        let route = self.route(route.unwrap_or(UNMATCHED_ROUTE));
        let method = method_label(method);
        self.admin_requests
            .get_or_create(&AdminRequestLabels {
                method,
                route: route.clone(),
                status,
            })
            .inc();
        self.admin_duration
            .get_or_create(&AdminRouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition. Element usage comes from the index now; when the index cannot be
    /// read, the request metrics are still served (monitoring matters most then).
    pub async fn render(&self, store: &Store) -> Result<String, std::fmt::Error> {
        let rows = match store.list_elements().await {
            Ok(els) => els
                .into_iter()
                .map(|e| ElementRow {
                    mode: e.mode.to_string(),
                    name: e.name,
                    objects: e.object_count,
                    used_bytes: e.used_bytes,
                    capacity_bytes: e.capacity_bytes,
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: cannot read storage elements from the index");
                Vec::new()
            }
        };
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        match self.elements.rows.lock() {
            Ok(mut r) => *r = rows,
            Err(p) => *p.into_inner() = rows,
        }
        *self.spool.stats.lock().unwrap_or_else(|p| p.into_inner()) = store.audit_spool_stats();
        let mut out = String::with_capacity(8 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// What the background scrub counts (`artstore_scrub_*`).
#[derive(Debug, Clone, Default)]
pub struct ScrubCounters {
    pub bytes: Counter,
    pub objects: Counter,
    pub corrupt: Counter,
}

/// Static method labels (no allocation per request); anything unusual is "other".
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Debug)]
struct ElementRow {
    name: String,
    mode: String,
    objects: i64,
    used_bytes: i64,
    capacity_bytes: Option<i64>,
}

/// Name, help, unit and value of one per-element gauge.
type GaugeSpec = (
    &'static str,
    &'static str,
    Option<Unit>,
    fn(&ElementRow) -> Option<i64>,
);

/// Per-element gauges, filled from the index right before each encoding.
#[derive(Debug, Default)]
struct ElementUsage {
    rows: Mutex<Vec<ElementRow>>,
}

impl Collector for ElementUsage {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let gauges: [GaugeSpec; 3] = [
            (
                "element_objects",
                "Objects stored in the storage element (from the index)",
                None,
                |r| Some(r.objects),
            ),
            (
                "element_used",
                "Bytes stored in the storage element (from the index)",
                Some(Unit::Bytes),
                |r| Some(r.used_bytes),
            ),
            (
                "element_capacity",
                "Quota of the storage element, when it has one",
                Some(Unit::Bytes),
                |r| r.capacity_bytes,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for r in rows.iter() {
                if let Some(v) = value(r) {
                    let labels = [("element", r.name.as_str())];
                    ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "element_mode",
            "1 for the storage element's current mode (edit, rw, ro, ar)",
            None,
            MetricType::Gauge,
        )?;
        for r in rows.iter() {
            let labels = [("element", r.name.as_str()), ("mode", r.mode.as_str())];
            ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Audit events spooled to disk while the index could not take them (only with a spool).
#[derive(Debug, Default)]
struct AuditSpoolGauges {
    stats: Mutex<Option<artstore_metadata::SpoolStats>>,
}

impl Collector for AuditSpoolGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(st) = *self.stats.lock().unwrap_or_else(|p| p.into_inner()) else {
            return Ok(());
        };
        let counters = [
            (
                "audit_spooled",
                "Audit events spooled to disk because the index could not take them",
                st.spooled,
            ),
            (
                "audit_replayed",
                "Spooled audit events written to the index later",
                st.replayed,
            ),
        ];
        for (name, help, v) in counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(v).encode(metric)?;
        }
        let metric = encoder.encode_descriptor(
            "audit_spool_pending",
            "Spooled audit events still waiting for the index",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(st.pending).unwrap_or(i64::MAX)).encode(metric)?;
        Ok(())
    }
}

/// `GET /metrics` (no authentication, like the probes).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "OpenMetrics text: `artstore_s3_requests_total{operation,status}`, \
        `artstore_s3_request_duration_seconds{operation}`, `artstore_s3_received_bytes_total`, \
        `artstore_s3_sent_bytes_total`, `artstore_admin_requests_total{method,route,status}`, \
        `artstore_admin_request_duration_seconds{method,route}`, and per storage element \
        `artstore_element_objects`, `artstore_element_used_bytes`, `artstore_element_capacity_bytes`, \
        `artstore_element_mode`. No authentication.",
    responses(
        (status = 200, description = "Metrics in the OpenMetrics text format",
         content_type = "application/openmetrics-text", body = String),
        (status = 500, description = "Encoding failed", body = crate::openapi::ErrorBody),
    )
)]
pub async fn metrics(State(st): State<AdminState>) -> Result<Response, ApiError> {
    let text = st.metrics.render(&st.store).await.map_err(|e| {
        tracing::error!(error = %e, "cannot encode metrics");
        ApiError::internal("cannot encode metrics")
    })?;
    let mut resp = text.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(resp)
}
