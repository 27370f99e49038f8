//! `GET /api/v1/history?alertname=&fingerprint=&since=&until=&limit=`: alert state changes and
//! notification attempts from durable state, newest first. `since`/`until` take RFC 3339 or unix
//! seconds like Prometheus' API; `limit` defaults to 100 (at most 10000).

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};

use super::params::parse_form;
use super::query::parse_time;
use super::{ApiError, Shared};
use crate::dispatch::Fingerprint;
use crate::state::HistoryQuery;
use crate::state::history::{DEFAULT_LIMIT, MAX_LIMIT};

/// Reads the query parameters, naming the one that is malformed.
pub fn parse_query(raw: Option<&str>) -> Result<HistoryQuery, ApiError> {
    let pairs = raw.map(parse_form).unwrap_or_default();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, v)| n == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let mut q = HistoryQuery {
        alertname: get("alertname").map(str::to_string),
        ..HistoryQuery::default()
    };
    if let Some(f) = get("fingerprint") {
        let fp: Fingerprint = f.parse().map_err(|_| {
            ApiError::bad_data(format!(
                "invalid parameter \"fingerprint\": {f:?} is not a hex fingerprint"
            ))
        })?;
        q.fingerprint = Some(fp.to_string());
    }
    if let Some(s) = get("since") {
        q.since_ms = parse_time("since", s)?;
    }
    if let Some(s) = get("until") {
        q.until_ms = parse_time("until", s)?;
    }
    if q.since_ms > q.until_ms {
        return Err(ApiError::bad_data(
            "invalid parameter \"until\": end timestamp must not be before start time",
        ));
    }
    q.limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": {l:?} is not a number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    Ok(q)
}

/// `GET /api/v1/history`.
pub async fn history(
    State(st): State<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = parse_query(raw.as_deref())?;
    let (rows, warning) = st.durable.history(q).await;
    let data: Vec<Value> = rows.iter().map(|e| e.to_json()).collect();
    let mut body = json!({"status": "success", "data": data});
    if let (Some(w), Some(o)) = (warning, body.as_object_mut()) {
        o.insert("warnings".into(), json!([w]));
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters_and_rejects_bad_ones() {
        let q = parse_query(Some(
            "alertname=HighCPU&fingerprint=AB&since=1700000000&until=2023-11-14T22:14:00Z&limit=5",
        ))
        .unwrap();
        assert_eq!(q.alertname.as_deref(), Some("HighCPU"));
        assert_eq!(q.fingerprint.as_deref(), Some("00000000000000ab"));
        assert_eq!(q.since_ms, 1_700_000_000_000);
        assert_eq!(q.until_ms, 1_700_000_040_000);
        assert_eq!(q.limit, 5);
        let d = parse_query(None).unwrap();
        assert_eq!(d.limit, DEFAULT_LIMIT);
        for bad in [
            "limit=0",
            "limit=10001",
            "limit=x",
            "fingerprint=zz",
            "since=yesterday",
            "since=20&until=10",
        ] {
            let e = parse_query(Some(bad)).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
        }
    }
}
