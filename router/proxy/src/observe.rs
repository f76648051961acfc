//! What the router tells the outside about its requests: [`AccessRecord`]s for the control plane (sent without
//! ever blocking a request; dropped and counted when the receiver falls behind) and Prometheus [`Metrics`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

use crate::traffic::Traffic;

/// One request as the router saw it, for the app's log stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// The app the host belongs to; `None` for an unknown host.
    pub app: Option<String>,
    /// The instance that answered (`web.1`), if a backend was tried.
    pub instance: Option<String>,
    pub backend: Option<SocketAddr>,
    pub method: String,
    pub host: String,
    /// The path without the query string (queries may carry secrets).
    pub path: String,
    /// 499 when the client left before any response.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Time until the backend's response head.
    pub upstream: Option<Duration>,
    /// Time until the response was sent or abandoned.
    pub total: Duration,
    pub request_id: Option<String>,
    /// The failure code (`H12`, `H13`, … see the table in the crate's `pages` module), when it did not end
    /// normally.
    pub error: Option<&'static str>,
}

/// A status class label: `2xx`, `4xx`, …
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
struct Class(u8);

impl Class {
    fn of(status: u16) -> Self {
        Self(u8::try_from(status / 100).unwrap_or(5).clamp(1, 5))
    }
}

impl EncodeLabelValue for Class {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        write!(encoder, "{}xx", self.0)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    app: String,
    class: Class,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    app: String,
}

/// An app's name and its metric handles, made once per app and kept across table swaps, so that a request
/// updates its app's series with atomics only (no label map lookup, no lock, no allocation).
#[derive(Debug)]
pub(crate) struct AppHandle {
    pub name: Arc<str>,
    /// Indexed by status class - 1; each series is made when first used.
    requests: [OnceLock<Counter>; 5],
    duration: OnceLock<LatencyHistogram>,
}

impl AppHandle {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: Arc::from(name),
            requests: std::array::from_fn(|_| OnceLock::new()),
            duration: OnceLock::new(),
        }
    }
}

/// The router's Prometheus metrics. Cloning gives another handle on the same registry; give one to
/// [`crate::ProxyConfig::metrics`] and one to [`crate::serve_admin`].
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<StatusLabels, Counter>,
    duration: Family<AppLabels, LatencyHistogram>,
    backends_ejected: Gauge,
    in_flight: Gauge,
    table_version: Gauge,
    access_log_dropped: Counter<u64, AtomicU64>,
    /// The backends whose state the gauges report, set by `serve`.
    traffic: Mutex<Option<Traffic>>,
}

/// Finite histogram buckets: upper bounds of 1 ms doubling 17 times (to about 65 s), then +Inf.
const BUCKETS: usize = 17;

/// The bucket a latency of `micros` falls in: the first whose upper bound (1 ms × 2^i) is not below it, or
/// [`BUCKETS`] (+Inf).
pub(crate) fn bucket_index(micros: u64) -> usize {
    (0..BUCKETS).find(|&i| micros <= 1000u64 << i).unwrap_or(BUCKETS)
}

/// A latency histogram updated with atomics only (prometheus-client's own takes a lock per observation).
#[derive(Debug, Clone, Default)]
pub(crate) struct LatencyHistogram {
    cells: Arc<HistogramCells>,
}

#[derive(Debug, Default)]
struct HistogramCells {
    counts: [AtomicU64; BUCKETS + 1],
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    pub(crate) fn observe(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.cells.counts[bucket_index(micros)].fetch_add(1, Ordering::Relaxed);
        self.cells.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Per-bucket counts; the encoder makes them cumulative. The count is their sum, so a scrape during
        // an update stays consistent.
        let buckets: Vec<(f64, u64)> = (0..=BUCKETS)
            .map(|i| {
                let upper = if i < BUCKETS {
                    0.001 * f64::from(1u32 << i)
                } else {
                    f64::MAX
                };
                (upper, self.cells.counts[i].load(Ordering::Relaxed))
            })
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.cells.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let requests = Family::<StatusLabels, Counter>::default();
        let duration = Family::<AppLabels, LatencyHistogram>::default();
        let (backends_ejected, in_flight, table_version) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let access_log_dropped = Counter::default();
        let mut registry = Registry::with_prefix("berth_router");
        registry.register(
            "requests",
            "Requests answered, by app (\"-\" for unknown hosts) and status class",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the response, by app",
            duration.clone(),
        );
        registry.register(
            "backends_ejected",
            "Backends currently ejected after failed connections",
            backends_ejected.clone(),
        );
        registry.register(
            "in_flight",
            "Requests and upgraded tunnels in progress to backends",
            in_flight.clone(),
        );
        registry.register(
            "route_table_version",
            "Version of the route table being served",
            table_version.clone(),
        );
        registry.register(
            "access_log_dropped",
            "Access records dropped because their receiver fell behind",
            access_log_dropped.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                duration,
                backends_ejected,
                in_flight,
                table_version,
                access_log_dropped,
                traffic: Mutex::new(None),
            }),
        }
    }

    /// The metrics in the OpenMetrics text format (what Prometheus scrapes).
    pub fn encode(&self) -> String {
        if let Some(traffic) = self.lock_traffic().as_ref() {
            let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            self.inner.backends_ejected.set(gauge(traffic.ejected()));
            self.inner.in_flight.set(gauge(traffic.total_in_flight()));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }

    pub(crate) fn watch(&self, traffic: Traffic) {
        *self.lock_traffic() = Some(traffic);
    }

    pub(crate) fn table_version(&self, version: u64) {
        self.inner
            .table_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// Counts one request of `app` (`None`: an unknown host, counted as app `-`).
    fn request(&self, app: Option<&AppHandle>, status: u16, total: Duration) {
        let class = Class::of(status);

        let Some(app) = app else {
            let app = "-".to_owned();
            let labels = AppLabels { app: app.clone() };
            self.inner.duration.get_or_create(&labels).observe(total);
            self.inner
                .requests
                .get_or_create(&StatusLabels { app, class })
                .inc();
            return;
        };
        let labels = || AppLabels {
            app: app.name.to_string(),
        };
        app.duration
            .get_or_init(|| self.inner.duration.get_or_create_owned(&labels()))
            .observe(total);
        app.requests[usize::from(class.0 - 1)]
            .get_or_init(|| {
                let labels = StatusLabels {
                    app: app.name.to_string(),
                    class,
                };
                self.inner.requests.get_or_create_owned(&labels)
            })
            .inc();
    }

    fn lock_traffic(&self) -> std::sync::MutexGuard<'_, Option<Traffic>> {
        self.inner
            .traffic
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Where finished requests go: the metrics, and the optional access-record channel.
#[derive(Debug)]
pub(crate) struct Observer {
    pub metrics: Metrics,
    pub sink: Option<mpsc::Sender<AccessRecord>>,
}

impl Observer {
    /// Counts the request, and sends its record if anyone listens (without waiting: a full channel drops it).
    pub(crate) fn finished(
        &self,
        record: impl FnOnce() -> AccessRecord,
        app: Option<&AppHandle>,
        status: u16,
        total: Duration,
    ) {
        self.metrics.request(app, status, total);
        if let Some(sink) = &self.sink {
            if sink.try_send(record()).is_err() {
                self.metrics.inner.access_log_dropped.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        let cases = [
            (101, Class(1)),
            (200, Class(2)),
            (304, Class(3)),
            (404, Class(4)),
            (499, Class(4)),
            (502, Class(5)),
            (999, Class(5)),
            (0, Class(1)),
        ];
        for (status, want) in cases {
            assert_eq!(Class::of(status), want, "{status}");
        }
    }

    #[test]
    fn latencies_fall_in_doubling_buckets() {
        let cases = [
            (0, 0),
            (1000, 0),
            (1001, 1),
            (2000, 1),
            (2001, 2),
            (65_536_000, 16),
            (65_536_001, 17),
            (u64::MAX, 17),
        ];
        for (micros, want) in cases {
            assert_eq!(bucket_index(micros), want, "{micros} µs");
        }
    }

    #[test]
    fn histogram_encodes_cumulative_buckets() {
        let metrics = Metrics::new();
        let app = AppHandle::new("web");
        for ms in [1, 3, 3, 100_000] {
            metrics.request(Some(&app), 200, Duration::from_millis(ms));
        }
        let text = metrics.encode();
        for line in [
            "berth_router_request_duration_seconds_bucket{le=\"0.001\",app=\"web\"} 1",
            "berth_router_request_duration_seconds_bucket{le=\"0.002\",app=\"web\"} 1",
            "berth_router_request_duration_seconds_bucket{le=\"0.004\",app=\"web\"} 3",
            "berth_router_request_duration_seconds_bucket{le=\"65.536\",app=\"web\"} 3",
            "berth_router_request_duration_seconds_bucket{le=\"+Inf\",app=\"web\"} 4",
            "berth_router_request_duration_seconds_count{app=\"web\"} 4",
            "berth_router_request_duration_seconds_sum{app=\"web\"} 100.007",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[tokio::test]
    async fn records_are_sent_or_counted_as_dropped() {
        let (tx, mut rx) = mpsc::channel(1);
        let observer = Observer {
            metrics: Metrics::new(),
            sink: Some(tx),
        };
        let record = |status| AccessRecord {
            app: Some("web".into()),
            instance: None,
            backend: None,
            method: "GET".into(),
            host: "web.localhost".into(),
            path: "/".into(),
            status,
            bytes: 0,
            upstream: None,
            total: Duration::from_millis(3),
            request_id: None,
            error: None,
        };
        let web = AppHandle::new("web");
        for status in [200, 201, 500] {
            observer.finished(|| record(status), Some(&web), status, Duration::from_millis(3));
        }
        observer.finished(|| record(404), None, 404, Duration::from_millis(1));
        assert_eq!(rx.recv().await.unwrap().status, 200);
        let text = observer.metrics.encode();
        for line in [
            "berth_router_access_log_dropped_total 3",
            "berth_router_requests_total{app=\"-\",class=\"4xx\"} 1",
            "berth_router_requests_total{app=\"web\",class=\"2xx\"} 2",
            "berth_router_requests_total{app=\"web\",class=\"5xx\"} 1",
            "berth_router_request_duration_seconds_count{app=\"web\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
