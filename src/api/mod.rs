//! The HTTP API of `klaxon serve`: ingestion, the Prometheus query API, health and self-metrics.
//!
//! [`router`] builds the axum `Router` over a shared [`AppState`]; `crate::server` binds it to a
//! socket. Every request passes [`observe`], which assigns the correlation id, opens the request
//! span that log lines inherit, and records `http_requests_total` under the route *template*.

pub mod auth;
pub mod compat;
pub mod delivery;
pub mod error;
pub mod health;
pub mod history;
pub mod ingest;
pub mod metrics;
pub mod params;
pub mod query;
pub mod rules;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tracing::Instrument;

pub use error::{ApiError, ErrorType};

use crate::clock::SharedClock;
use crate::eval::Engine;
use crate::ingest::Limits;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::telemetry::metrics::{HttpLabels, HttpRouteLabels};

/// Bearer tokens per endpoint class; an empty list leaves that class open.
#[derive(Debug, Clone, Default)]
pub struct AuthTokens {
    /// Accepted on ingestion endpoints.
    pub ingest: Vec<String>,
    /// Accepted on admin endpoints.
    pub admin: Vec<String>,
}

/// Running counters the health checks report.
#[derive(Debug, Default)]
pub struct Stats {
    /// Ingestion requests answered with success.
    pub ingest_ok: AtomicU64,
    /// Ingestion requests rejected whole.
    pub ingest_rejected: AtomicU64,
    /// Wall-clock ms of the last successful ingestion (0 = never).
    pub last_ingest_ms: AtomicI64,
    /// Queries answered (any outcome).
    pub queries: AtomicU64,
    /// Queries that failed to evaluate or timed out.
    pub queries_failed: AtomicU64,
    /// Queries evaluating right now (including timed-out ones still finishing in the background).
    pub queries_in_flight: AtomicI64,
    /// Wall-clock ms of the last retention pass (0 = not yet).
    pub last_gc_ms: AtomicI64,
}

/// Everything a handler needs, shared by all requests.
#[derive(Debug)]
pub struct AppState {
    /// The in-memory series store.
    pub store: Arc<Store>,
    /// The query engine (carries `max_samples`).
    pub engine: Engine,
    /// The process clock: default timestamps, health times.
    pub clock: SharedClock,
    /// Self-metrics.
    pub metrics: Arc<Metrics>,
    /// Bearer tokens.
    pub auth: AuthTokens,
    /// Ingestion limits handed to the decoders.
    pub limits: Limits,
    /// Upper bound (and default) of a query's `timeout` parameter.
    pub query_timeout: Duration,
    /// Start time, for `uptime_seconds`.
    pub started_ms: i64,
    /// Set when shutdown begins, so `/health` answers 503 while in-flight work drains.
    pub shutting_down: AtomicBool,
    /// Counters for the health checks.
    pub stats: Stats,
    /// Rule groups, alert state and reloads.
    pub rules: crate::rules::Manager,
    /// Write-ahead log of pushed samples (`None` with `--wal-fsync off`), written before every ack.
    pub wal: Option<Arc<crate::wal::Wal>>,
    /// Alert delivery: dispatcher, notifier and their config.
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    /// The delivery config file, when one is used (reloaded with the rules).
    pub config_path: Option<std::path::PathBuf>,
    /// Durable state: alert state, silences, acks, outbox and history in `<data-dir>/state.db`.
    pub durable: Arc<crate::state::DurableState>,
}

/// The state handle handlers extract.
pub type Shared = Arc<AppState>;

/// Builds the router over `state`.
pub fn router(state: Shared) -> Router {
    let body_limit = state.limits.max_body_bytes;
    let ingest = Router::new()
        .route("/api/v1/import/prometheus", post(ingest::import_prometheus))
        .route(
            "/metrics/job/{*labels}",
            post(ingest::pushgateway).put(ingest::pushgateway),
        )
        .route(
            "/metrics/job@base64/{*labels}",
            post(ingest::pushgateway).put(ingest::pushgateway),
        )
        .route("/api/v1/write", post(ingest::remote_write))
        .route("/api/v1/push", post(ingest::json_push))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_ingest_token,
        ))
        .layer(DefaultBodyLimit::max(body_limit));
    let api = Router::new()
        .route("/api/v1/query", get(query::instant).post(query::instant))
        .route("/api/v1/query_range", get(query::range).post(query::range))
        .route("/api/v1/series", get(query::series).post(query::series))
        .route("/api/v1/labels", get(query::labels).post(query::labels))
        .route("/api/v1/label/{name}/values", get(query::label_values))
        .route("/api/v1/status/buildinfo", get(compat::buildinfo))
        .route("/api/v1/metadata", get(compat::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(compat::query_exemplars).post(compat::query_exemplars),
        )
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/api/v1/status/reload", get(rules::reload_status))
        .route("/-/reload", post(rules::reload))
        .route(
            "/api/v2/alerts",
            get(delivery::list_alerts).post(delivery::post_alerts),
        )
        .route("/api/v2/alerts/groups", get(delivery::list_groups))
        .route("/api/v2/status", get(delivery::status))
        .route("/api/v2/receivers", get(delivery::receivers))
        .route(
            "/api/v2/silences",
            get(delivery::list_silences).post(delivery::post_silence),
        )
        .route(
            "/api/v2/silence/{id}",
            get(delivery::get_silence).delete(delivery::delete_silence),
        )
        .route("/api/v1/alerts/trigger", post(delivery::trigger))
        .route(
            "/api/v1/alerts/{fingerprint}/ack",
            post(delivery::ack_alert),
        )
        .route("/api/v1/alerts/groups/{id}/ack", post(delivery::ack_group))
        .route("/api/v1/acks", get(delivery::acks))
        .route("/api/v1/incidents", get(delivery::incidents))
        .route("/api/v1/history", get(history::history))
        .route("/-/healthy", get(compat::healthy))
        .route("/-/ready", get(compat::ready))
        .route("/health", get(health::basic))
        .route("/health/detailed", get(health::detailed))
        .route("/health/metrics", get(health::prometheus))
        .route("/metrics", get(metrics::handler));
    Router::new()
        .merge(ingest)
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::NOT_FOUND,
        kind: ErrorType::NotFound,
        message: "not found".into(),
    }
}

/// The correlation id of the current request, for handlers that log or echo it.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

/// A random id of `n` 64-bit words in hex (no crypto needed: ids only have to be unique-ish).
pub fn random_hex(words: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut s = String::with_capacity(words * 16);
    for _ in 0..words {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        s.push_str(&format!("{:016x}", h.finish()));
    }
    s
}

/// An incoming id we are willing to echo: short, visible ASCII.
fn usable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?.trim();
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// Trace id from a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`).
fn trace_id_from(headers: &HeaderMap) -> Option<String> {
    let tp = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = tp.split('-');
    let (_, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| trace.to_ascii_lowercase())
}

/// Per-request middleware: correlation id, request span, access log and HTTP metrics.
pub async fn observe(State(st): State<Shared>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let headers = req.headers();
    let correlation_id = headers
        .get("x-request-id")
        .or_else(|| headers.get("x-correlation-id"))
        .and_then(usable_id)
        .unwrap_or_else(|| format!("req_{}", random_hex(1)));
    let trace_id = trace_id_from(headers).unwrap_or_else(|| random_hex(2));
    let span_id = random_hex(1);
    req.extensions_mut()
        .insert(CorrelationId(correlation_id.clone()));
    let span = tracing::info_span!(
        "request",
        correlation_id = %correlation_id,
        trace_id = %trace_id,
        span_id = %span_id,
    );
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = resp.status();
    st.metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method: method.clone(),
            route: route.clone(),
            status: status.as_u16().to_string(),
        })
        .inc();
    st.metrics
        .http_duration
        .get_or_create(&HttpRouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        resp.headers_mut().insert("x-request-id", v.clone());
        resp.headers_mut().insert("x-correlation-id", v);
    }
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let error = resp
        .extensions()
        .get::<ApiError>()
        .map(|e| e.message.clone());
    let _enter = span.enter();
    let quiet = route.starts_with("/health") || route == "/metrics";
    match (status.as_u16(), error) {
        (500.., Some(err)) => tracing::error!(
            event_type = "error", method, route, path, status = status.as_u16(), duration_ms,
            error = %err, "request failed"
        ),
        (_, Some(err)) => tracing::info!(
            event_type = "request", method, route, path, status = status.as_u16(), duration_ms,
            error = %err, "request rejected"
        ),
        _ if quiet => tracing::debug!(
            event_type = "request",
            method,
            route,
            path,
            status = status.as_u16(),
            duration_ms,
            "request finished"
        ),
        _ => tracing::info!(
            event_type = "request",
            method,
            route,
            path,
            status = status.as_u16(),
            duration_ms,
            "request finished"
        ),
    }
    resp
}

/// Milliseconds between `a` and now as a float, for `duration_ms` fields.
pub fn elapsed_ms(a: Instant) -> f64 {
    a.elapsed().as_secs_f64() * 1000.0
}
