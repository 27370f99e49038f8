//! `GET /metrics`: klaxon's self-metrics in the OpenMetrics text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::Shared;

/// Renders the self-metrics registry.
pub async fn handler(State(st): State<Shared>) -> impl IntoResponse {
    let body = st.metrics.render(&st.store);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
