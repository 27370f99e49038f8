//! Ingestion endpoints: Prometheus text / OpenMetrics import, Pushgateway-style pushes,
//! remote_write 1.0 and klaxon's JSON push.
//!
//! Every request is atomic: the body is decompressed and decoded completely on the blocking pool,
//! and only a fully valid batch reaches `Store::append_batch`, so a rejected request stores
//! nothing. Samples are queryable as soon as the response is sent.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, Shared};
use crate::ingest::{
    Decoded, Format, Ignored, IngestError, Limits, add_labels, check_remote_write_content_type,
    decode_body_encoding, decode_remote_write_full, parse_json_push, parse_text,
    pushgateway_path_labels,
};
use crate::store::BatchOutcome;
use crate::telemetry::metrics::{DropLabels, ProtocolLabels};

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Decodes `body` with `decode` and appends the result; nothing is stored unless decoding succeeds.
async fn ingest<F>(
    st: &Shared,
    protocol: &'static str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    decode: F,
) -> Result<BatchOutcome, ApiError>
where
    F: FnOnce(&[u8], i64, &Limits) -> Result<Decoded, IngestError> + Send + 'static,
{
    let result = match body {
        Err(rejection) => Err(ApiError::bad_data_status(
            rejection.status(),
            rejection.body_text(),
        )),
        Ok(body) => {
            let encoding = header_str(headers, header::CONTENT_ENCODING).map(str::to_string);
            let st2 = Arc::clone(st);
            tokio::task::spawn_blocking(move || {
                let plain = decode_body_encoding(&body, encoding.as_deref(), &st2.limits)?;
                let decoded = decode(&plain, st2.clock.now_ms(), &st2.limits)?;
                if let Some(wal) = &st2.wal {
                    wal.append(&decoded.samples).map_err(wal_unavailable)?;
                }
                let out = st2.store.append_batch(&decoded.samples);
                Ok::<_, ApiError>((out, decoded.ignored))
            })
            .await
            .map_err(|e| ApiError::internal(format!("ingestion task failed: {e}")))
            .and_then(std::convert::identity)
        }
    };
    match result {
        Ok((out, ignored)) => {
            st.metrics.record_batch(protocol, &out);
            record_ignored(st, protocol, &ignored);
            st.stats.ingest_ok.fetch_add(1, Ordering::Relaxed);
            st.stats
                .last_ingest_ms
                .store(st.clock.now_ms(), Ordering::Relaxed);
            Ok(out)
        }
        Err(e) => {
            st.stats.ingest_rejected.fetch_add(1, Ordering::Relaxed);
            st.metrics
                .rejected_requests
                .get_or_create(&ProtocolLabels { protocol })
                .inc();
            Err(e)
        }
    }
}

/// A 503 for a push the WAL could not log: nothing was stored, and the message names the path and the failure.
fn wal_unavailable(e: crate::wal::WalError) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: super::ErrorType::Internal,
        message: format!("samples not stored: the write-ahead log is unavailable: {e}"),
    }
}

fn record_ignored(st: &Shared, protocol: &'static str, ig: &Ignored) {
    for (reason, n) in [
        ("native_histogram", ig.histograms),
        ("exemplar", ig.exemplars),
        ("created", ig.created),
    ] {
        if n > 0 {
            st.metrics
                .dropped_samples
                .get_or_create(&DropLabels { protocol, reason })
                .inc_by(n as u64);
        }
    }
}

/// The success body of the text and JSON endpoints.
fn accepted(out: &BatchOutcome) -> Response {
    Json(json!({
        "status": "success",
        "accepted": out.stored + out.duplicates,
        "dropped": {
            "out_of_order": out.dropped_out_of_order,
            "invalid_labels": out.dropped_invalid,
            "series_limit": out.dropped_series_limit,
        },
    }))
    .into_response()
}

fn text_decoder(
    format: Format,
) -> impl FnOnce(&[u8], i64, &Limits) -> Result<Decoded, IngestError> + Send + 'static {
    move |body, ts, limits| parse_text(body, format, ts, limits)
}

/// `POST /api/v1/import/prometheus`: text 0.0.4, or OpenMetrics by `Content-Type`.
pub async fn import_prometheus(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let format = Format::from_content_type(header_str(&headers, header::CONTENT_TYPE));
    let out = ingest(&st, "prometheus_text", &headers, body, text_decoder(format)).await?;
    Ok(accepted(&out))
}

/// `POST|PUT /metrics/job/{job}{/label/value}*`: text with grouping labels from the path.
///
/// PUT is accepted like POST: klaxon keeps every series until retention, it does not replace
/// a Pushgateway group.
pub async fn pushgateway(
    State(st): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let path = uri.path().strip_prefix("/metrics/").unwrap_or_default();
    let grouping = match pushgateway_path_labels(path) {
        Ok(g) => g,
        Err(e) => {
            st.stats.ingest_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
    };
    let format = Format::from_content_type(header_str(&headers, header::CONTENT_TYPE));
    let decode = move |body: &[u8], ts: i64, limits: &Limits| {
        let mut d = parse_text(body, format, ts, limits)?;
        add_labels(&mut d.samples, &grouping);
        Ok(d)
    };
    let out = ingest(&st, "pushgateway", &headers, body, decode).await?;
    Ok(accepted(&out))
}

/// `POST /api/v1/write`: remote_write 1.0 (snappy protobuf); 415 for remote_write 2.0, 204 on success.
pub async fn remote_write(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_remote_write_content_type(header_str(&headers, header::CONTENT_TYPE))?;
    let decode = |body: &[u8], _ts: i64, limits: &Limits| decode_remote_write_full(body, limits);
    ingest(&st, "remote_write", &headers, body, decode).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/push`: klaxon's JSON push format (string samples included).
pub async fn json_push(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let decode = |body: &[u8], ts: i64, limits: &Limits| {
        parse_json_push(body, ts, limits).map(|samples| Decoded {
            samples,
            ..Decoded::default()
        })
    };
    let out = ingest(&st, "json", &headers, body, decode).await?;
    Ok(accepted(&out))
}
