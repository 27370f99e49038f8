//! Health endpoints in the operations guide's shape: `/health` (liveness), `/health/detailed`
//! (per-subsystem checks) and `/health/metrics` (the same checks as Prometheus text).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Shared, elapsed_ms};
use crate::telemetry::time::format_rfc3339_ms;

/// A check's verdict, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working normally.
    Healthy,
    /// Working, with a problem worth a look.
    Degraded,
    /// Not serving.
    Unhealthy,
}

impl Status {
    fn gauge(self) -> f64 {
        match self {
            Status::Healthy => 1.0,
            Status::Degraded => 0.5,
            Status::Unhealthy => 0.0,
        }
    }
}

/// One entry of `checks[]`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Subsystem name.
    pub name: &'static str,
    /// Verdict.
    pub status: Status,
    /// One-line explanation.
    pub message: String,
    /// How long the check took.
    pub duration_ms: f64,
    /// Subsystem figures.
    pub details: Value,
}

/// The `/health/detailed` body.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Worst check status.
    pub status: Status,
    /// Summary.
    pub message: String,
    /// When the report was made (RFC 3339).
    pub timestamp: String,
    /// Seconds since start-up.
    pub uptime_seconds: i64,
    /// The individual checks.
    pub checks: Vec<Check>,
}

fn store_check(st: &Shared) -> Check {
    let t = Instant::now();
    let series = st.store.series_count();
    let memory = st.store.memory_bytes();
    let opts = st.store.options();
    let full = opts.max_series > 0 && series >= opts.max_series;
    Check {
        name: "store",
        status: if full {
            Status::Degraded
        } else {
            Status::Healthy
        },
        message: if full {
            format!("series limit of {} reached", opts.max_series)
        } else {
            "in-memory store OK".into()
        },
        duration_ms: elapsed_ms(t),
        details: json!({
            "series_count": series,
            "memory_bytes": memory,
            "max_series": opts.max_series,
            "retention_seconds": opts.retention_ms / 1000,
            "last_retention_run": ms_or_null(st.stats.last_gc_ms.load(Ordering::Relaxed)),
        }),
    }
}

fn ms_or_null(ms: i64) -> Value {
    if ms > 0 {
        Value::from(format_rfc3339_ms(ms))
    } else {
        Value::Null
    }
}

fn ingestion_check(st: &Shared, shutting_down: bool) -> Check {
    let t = Instant::now();
    let ok = st.stats.ingest_ok.load(Ordering::Relaxed);
    let rejected = st.stats.ingest_rejected.load(Ordering::Relaxed);
    let (status, message) = if shutting_down {
        (Status::Unhealthy, "shutting down: not accepting samples")
    } else {
        (Status::Healthy, "accepting samples")
    };
    Check {
        name: "ingestion",
        status,
        message: message.into(),
        duration_ms: elapsed_ms(t),
        details: json!({
            "requests_accepted": ok,
            "requests_rejected": rejected,
            "last_ingest": ms_or_null(st.stats.last_ingest_ms.load(Ordering::Relaxed)),
            "auth_required": !st.auth.ingest.is_empty(),
            "max_body_bytes": st.limits.max_body_bytes,
        }),
    }
}

fn query_check(st: &Shared, shutting_down: bool) -> Check {
    let t = Instant::now();
    let total = st.stats.queries.load(Ordering::Relaxed);
    let failed = st.stats.queries_failed.load(Ordering::Relaxed);
    let in_flight = st.stats.queries_in_flight.load(Ordering::Relaxed);
    let (status, message) = if shutting_down {
        (Status::Unhealthy, "shutting down")
    } else {
        (Status::Healthy, "answering queries")
    };
    Check {
        name: "query",
        status,
        message: message.into(),
        duration_ms: elapsed_ms(t),
        details: json!({
            "queries_total": total,
            "queries_failed": failed,
            "queries_in_flight": in_flight,
            "timeout_seconds": st.query_timeout.as_secs_f64(),
            "max_samples": st.engine.options().max_samples,
        }),
    }
}

fn wal_check(st: &Shared) -> Check {
    let t = Instant::now();
    let Some(wal) = &st.wal else {
        return Check {
            name: "wal",
            status: Status::Healthy,
            message: "disabled (--wal-fsync off): pushed samples do not survive a restart".into(),
            duration_ms: elapsed_ms(t),
            details: json!({ "enabled": false }),
        };
    };
    let h = wal.health();
    storage_check("wal", h.healthy, &h.message, &h, t)
}

fn state_check(st: &Shared) -> Check {
    let t = Instant::now();
    let h = st.durable.health();
    storage_check("state", h.healthy, &h.message, &h, t)
}

/// A storage component's own health report as a check: degraded (never unhealthy, since
/// serving goes on from memory) when it is not healthy, with the report as details.
fn storage_check(
    name: &'static str,
    healthy: bool,
    message: &str,
    report: &impl Serialize,
    started: Instant,
) -> Check {
    Check {
        name,
        status: if healthy {
            Status::Healthy
        } else {
            Status::Degraded
        },
        message: message.to_string(),
        duration_ms: elapsed_ms(started),
        details: serde_json::to_value(report).unwrap_or(Value::Null),
    }
}

fn delivery_check(st: &Shared) -> Check {
    let t = Instant::now();
    let cfg = st.pipeline.config_status();
    let stats = st.pipeline.dispatcher.status_counts();
    let undelivered: u64 = stats.undelivered.values().sum();
    let mut problems = Vec::new();
    if let Some(e) = &cfg.error {
        problems.push(format!(
            "config reload failed (previous config active): {e}"
        ));
    }
    if undelivered > 0 {
        problems.push(format!(
            "{undelivered} notification(s) kept for unconfigured or unknown channels"
        ));
    }
    let status = if problems.is_empty() {
        Status::Healthy
    } else {
        Status::Degraded
    };
    let message = if !problems.is_empty() {
        problems.join("; ")
    } else if cfg.unconfigured.is_empty() {
        "all notification channels configured".to_string()
    } else {
        format!("{} channel(s) unconfigured", cfg.unconfigured.len())
    };
    Check {
        name: "delivery",
        status,
        message,
        duration_ms: elapsed_ms(t),
        details: json!({
            "config_file": cfg.path.as_ref().map(|p| p.display().to_string()),
            "config_loaded": ms_or_null(cfg.loaded_ms),
            "config_error": cfg.error,
            "unconfigured": cfg.unconfigured,
            "undelivered": stats.undelivered,
            "alerts_firing": stats.alerts_firing,
            "groups": stats.groups,
            "silences_active": stats.silences_active,
            "acks": stats.acks,
        }),
    }
}

/// Runs every check.
pub fn report(st: &Shared) -> Report {
    let shutting_down = st.shutting_down.load(Ordering::Relaxed);
    let checks = vec![
        store_check(st),
        ingestion_check(st, shutting_down),
        query_check(st, shutting_down),
        wal_check(st),
        state_check(st),
        delivery_check(st),
    ];
    let status = checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Healthy);
    let bad: Vec<&str> = checks
        .iter()
        .filter(|c| c.status != Status::Healthy)
        .map(|c| c.name)
        .collect();
    let message = if bad.is_empty() {
        "All systems operational".to_string()
    } else {
        format!("{} check(s) not healthy: {}", bad.len(), bad.join(", "))
    };
    let now = st.clock.now_ms();
    Report {
        status,
        message,
        timestamp: format_rfc3339_ms(now),
        uptime_seconds: (now - st.started_ms).max(0) / 1000,
        checks,
    }
}

fn http_status(s: Status) -> StatusCode {
    if s == Status::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// `GET /health`: 200 while serving, 503 once shutdown has begun.
pub async fn basic(State(st): State<Shared>) -> Response {
    let now = st.clock.now_ms();
    let (status, message) = if st.shutting_down.load(Ordering::Relaxed) {
        (Status::Unhealthy, "shutting down")
    } else {
        (Status::Healthy, "ok")
    };
    let body = json!({
        "status": status,
        "message": message,
        "timestamp": format_rfc3339_ms(now),
        "uptime_seconds": (now - st.started_ms).max(0) / 1000,
    });
    (http_status(status), Json(body)).into_response()
}

/// `GET /health/detailed`: every check with its figures.
pub async fn detailed(State(st): State<Shared>) -> Response {
    let r = report(&st);
    (http_status(r.status), Json(r)).into_response()
}

/// `GET /health/metrics`: the checks as Prometheus gauges.
pub async fn prometheus(State(st): State<Shared>) -> Response {
    let r = report(&st);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP klaxon_health_status Overall health: 1 healthy, 0.5 degraded, 0 unhealthy.\n\
         # TYPE klaxon_health_status gauge\nklaxon_health_status {}",
        r.status.gauge()
    );
    let _ = writeln!(
        out,
        "# HELP klaxon_health_check_status Health of one check: 1 healthy, 0.5 degraded, 0 unhealthy.\n\
         # TYPE klaxon_health_check_status gauge"
    );
    for c in &r.checks {
        let _ = writeln!(
            out,
            "klaxon_health_check_status{{check=\"{}\"}} {}",
            c.name,
            c.status.gauge()
        );
    }
    let _ = writeln!(
        out,
        "# HELP klaxon_health_check_duration_milliseconds Time the check took.\n\
         # TYPE klaxon_health_check_duration_milliseconds gauge"
    );
    for c in &r.checks {
        let _ = writeln!(
            out,
            "klaxon_health_check_duration_milliseconds{{check=\"{}\"}} {}",
            c.name, c.duration_ms
        );
    }
    let _ = writeln!(
        out,
        "# HELP klaxon_uptime_seconds Seconds since start-up.\n\
         # TYPE klaxon_uptime_seconds gauge\nklaxon_uptime_seconds {}",
        r.uptime_seconds
    );
    (
        http_status(r.status),
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
