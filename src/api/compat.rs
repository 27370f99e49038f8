//! Small endpoints that Prometheus clients (Grafana's data source, promtool, scripts) probe before
//! they query: build info, metadata, exemplars and the `/-/healthy` / `/-/ready` probes.
//!
//! klaxon keeps no metric metadata or exemplars yet, so those answer with Prometheus' empty shapes
//! instead of 404s that would make clients give up.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Shared;

/// `GET /api/v1/status/buildinfo`: Grafana reads `version` to pick its query features.
pub async fn buildinfo() -> Json<Value> {
    Json(json!({
        "status": "success",
        "data": {
            "version": env!("CARGO_PKG_VERSION"),
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
            "application": "klaxon",
        }
    }))
}

/// `GET /api/v1/metadata`: no metadata is retained yet, so the map is empty.
pub async fn metadata() -> Json<Value> {
    Json(json!({ "status": "success", "data": {} }))
}

/// `GET|POST /api/v1/query_exemplars`: exemplars are not stored, so the list is empty.
pub async fn query_exemplars() -> Json<Value> {
    Json(json!({ "status": "success", "data": [] }))
}

/// `GET /-/healthy`: liveness as Prometheus answers it.
pub async fn healthy() -> (StatusCode, &'static str) {
    (StatusCode::OK, "klaxon is Healthy.\n")
}

/// `GET /-/ready`: 503 once shutdown has begun, so load balancers drain the instance.
pub async fn ready(State(st): State<Shared>) -> (StatusCode, &'static str) {
    if st.shutting_down.load(Ordering::Relaxed) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "klaxon is shutting down.\n",
        )
    } else {
        (StatusCode::OK, "klaxon is Ready.\n")
    }
}
