//! klaxon's own metrics, served at `GET /metrics`: ingestion, queries, HTTP traffic and the process.
//!
//! Every metric lives here so label cardinality is reviewed in one place: labels carry protocols,
//! drop reasons, HTTP methods, status codes and route *templates* only, never request data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{BatchOutcome, Store};

/// Labels of per-protocol ingestion counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    /// `prometheus_text`, `pushgateway`, `remote_write` or `json`.
    pub protocol: &'static str,
}

/// Labels of the dropped-samples counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// Ingestion protocol.
    pub protocol: &'static str,
    /// `out_of_order`, `invalid_labels` or `series_limit`.
    pub reason: &'static str,
}

/// Labels of the query duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// `instant` or `range`.
    pub kind: &'static str,
}

/// Labels of the HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// HTTP method.
    pub method: String,
    /// The matched route template (`/api/v1/label/{name}/values`), or `unmatched`.
    pub route: String,
    /// Response status code.
    pub status: String,
}

/// Labels of the HTTP request duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRouteLabels {
    /// HTTP method.
    pub method: String,
    /// The matched route template, or `unmatched`.
    pub route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// All self-metrics plus the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Samples accepted by ingestion, per protocol.
    pub ingested_samples: Family<ProtocolLabels, Counter>,
    /// Samples of accepted requests that were not stored, per protocol and reason.
    pub dropped_samples: Family<DropLabels, Counter>,
    /// Ingestion requests rejected as a whole (bad body, too large), per protocol.
    pub rejected_requests: Family<ProtocolLabels, Counter>,
    /// Query evaluation time.
    pub query_duration: HistogramFamily<QueryLabels>,
    /// HTTP requests by method, route template and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// HTTP request latency by method and route template.
    pub http_duration: HistogramFamily<HttpRouteLabels>,
    series: Gauge,
    memory: Gauge,
    open_fds: Gauge,
    threads: Gauge,
    rss: Gauge,
    retention_removed: Counter,
    /// Rule evaluation, reload and scheduling metrics.
    pub rules: RuleMetrics,
}

/// Self-metrics of rule evaluation and reloads (no per-rule labels: cardinality stays fixed).
#[derive(Debug)]
pub struct RuleMetrics {
    reload_successful: Gauge,
    reload_success_ts: Gauge<f64, std::sync::atomic::AtomicU64>,
    groups_loaded: Gauge,
    evaluations: Counter,
    evaluation_failures: Counter,
    group_evaluations: Counter,
    iterations_missed: Counter,
    group_duration: Histogram,
}

impl RuleMetrics {
    fn new() -> Self {
        RuleMetrics {
            reload_successful: Gauge::default(),
            reload_success_ts: Gauge::default(),
            groups_loaded: Gauge::default(),
            evaluations: Counter::default(),
            evaluation_failures: Counter::default(),
            group_evaluations: Counter::default(),
            iterations_missed: Counter::default(),
            group_duration: latency_histogram(),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "klaxon_rules_last_reload_successful",
            "Whether the last rule reload succeeded (1) or kept the previous rules (0)",
            self.reload_successful.clone(),
        );
        registry.register(
            "klaxon_rules_last_reload_success_timestamp_seconds",
            "Time of the last successful rule reload",
            self.reload_success_ts.clone(),
        );
        registry.register(
            "klaxon_rule_groups_loaded",
            "Rule groups currently loaded",
            self.groups_loaded.clone(),
        );
        registry.register(
            "klaxon_rule_evaluations",
            "Rule evaluations",
            self.evaluations.clone(),
        );
        registry.register(
            "klaxon_rule_evaluation_failures",
            "Rule evaluations that failed",
            self.evaluation_failures.clone(),
        );
        registry.register(
            "klaxon_rule_group_evaluations",
            "Rule group evaluations",
            self.group_evaluations.clone(),
        );
        registry.register(
            "klaxon_rule_group_iterations_missed",
            "Rule group evaluation slots skipped because evaluation fell behind",
            self.iterations_missed.clone(),
        );
        registry.register(
            "klaxon_rule_group_duration_seconds",
            "Wall time of one rule group evaluation",
            self.group_duration.clone(),
        );
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        Metrics::with_extra(|_| {})
    }

    /// Creates every metric and lets other stages (notify) register theirs in the same registry.
    pub fn with_extra(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        extra(&mut registry);
        let ingested_samples = Family::<ProtocolLabels, Counter>::default();
        let dropped_samples = Family::<DropLabels, Counter>::default();
        let rejected_requests = Family::<ProtocolLabels, Counter>::default();
        let query_duration: HistogramFamily<QueryLabels> =
            Family::new_with_constructor(latency_histogram);
        for kind in ["instant", "range"] {
            // Expose both series from the start, so dashboards see zero rather than absence.
            let _ = query_duration.get_or_create(&QueryLabels { kind });
        }
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration: HistogramFamily<HttpRouteLabels> =
            Family::new_with_constructor(latency_histogram);
        let series = Gauge::default();
        let memory = Gauge::default();
        let open_fds = Gauge::default();
        let threads = Gauge::default();
        let rss = Gauge::default();
        let retention_removed = Counter::default();
        let rules = RuleMetrics::new();
        rules.register(&mut registry);
        registry.register(
            "klaxon_ingested_samples",
            "Samples accepted by ingestion endpoints",
            ingested_samples.clone(),
        );
        registry.register(
            "klaxon_dropped_samples",
            "Samples of accepted requests that were not stored",
            dropped_samples.clone(),
        );
        registry.register(
            "klaxon_rejected_ingest_requests",
            "Ingestion requests rejected whole (nothing stored)",
            rejected_requests.clone(),
        );
        registry.register(
            "klaxon_query_duration_seconds",
            "Query evaluation time",
            query_duration.clone(),
        );
        registry.register(
            "klaxon_series_in_memory",
            "Series held by the in-memory store",
            series.clone(),
        );
        registry.register(
            "klaxon_store_memory_bytes",
            "Approximate heap bytes used by the store",
            memory.clone(),
        );
        registry.register(
            "klaxon_retention_removed_series",
            "Series deleted by retention",
            retention_removed.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            http_duration.clone(),
        );
        registry.register(
            "process_open_fds_total",
            "Open file descriptors",
            open_fds.clone(),
        );
        registry.register(
            "process_threads_total",
            "Threads of the process",
            threads.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident set size in bytes",
            rss.clone(),
        );
        Metrics {
            registry,
            ingested_samples,
            dropped_samples,
            rejected_requests,
            query_duration,
            http_requests,
            http_duration,
            series,
            memory,
            open_fds,
            threads,
            rss,
            retention_removed,
            rules,
        }
    }

    /// Counts the outcome of one accepted ingestion batch.
    pub fn record_batch(&self, protocol: &'static str, out: &BatchOutcome) {
        let accepted = (out.stored + out.duplicates) as u64;
        self.ingested_samples
            .get_or_create(&ProtocolLabels { protocol })
            .inc_by(accepted);
        for (reason, n) in [
            ("out_of_order", out.dropped_out_of_order),
            ("invalid_labels", out.dropped_invalid),
            ("series_limit", out.dropped_series_limit),
        ] {
            if n > 0 {
                self.dropped_samples
                    .get_or_create(&DropLabels { protocol, reason })
                    .inc_by(n as u64);
            }
        }
    }

    /// Records a rule reload: success gauge, success time and loaded groups.
    pub fn record_rules_reload(&self, success: bool, last_success_ms: Option<i64>, groups: usize) {
        self.rules.reload_successful.set(i64::from(success));
        if let Some(ms) = last_success_ms {
            self.rules.reload_success_ts.set(ms as f64 / 1000.0);
        }
        self.rules.groups_loaded.set(gauge_value(groups));
    }

    /// Counts one rule group evaluation and its rules' failures.
    pub fn record_rule_group_eval(&self, report: &crate::rules::GroupEvalReport) {
        let r = &self.rules;
        r.group_evaluations.inc();
        r.evaluations.inc_by(report.rules.len() as u64);
        let failed = report.rules.iter().filter(|x| x.error.is_some()).count();
        r.evaluation_failures.inc_by(failed as u64);
        r.group_duration.observe(report.duration.as_secs_f64());
    }

    /// Counts evaluation slots a group skipped.
    pub fn record_rule_group_missed(&self, missed: u64) {
        self.rules.iterations_missed.inc_by(missed);
    }

    /// Counts series deleted by a retention pass.
    pub fn record_retention(&self, series_removed: usize) {
        self.retention_removed.inc_by(series_removed as u64);
    }

    /// Renders every metric in the OpenMetrics text format, refreshing the store and process gauges first.
    pub fn render(&self, store: &Store) -> String {
        self.series.set(gauge_value(store.series_count()));
        self.memory.set(gauge_value(store.memory_bytes()));
        let p = ProcessStats::read();
        self.open_fds.set(gauge_value(p.open_fds));
        self.threads.set(gauge_value(p.threads));
        self.rss.set(gauge_value(p.resident_bytes));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Counts read from `/proc/self` (zero where unavailable, e.g. off Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Open file descriptors.
    pub open_fds: usize,
    /// OS threads.
    pub threads: usize,
    /// Resident set size in bytes.
    pub resident_bytes: usize,
}

impl ProcessStats {
    /// Reads the current process' statistics.
    pub fn read() -> Self {
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> usize {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        ProcessStats {
            open_fds,
            threads: field("Threads:"),
            resident_bytes: field("VmRSS:").saturating_mul(1024),
        }
    }
}
