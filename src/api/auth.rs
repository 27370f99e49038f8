//! Optional bearer-token authentication: with tokens configured for an endpoint class, requests
//! must carry `Authorization: Bearer <token>`; without tokens the class is open.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Shared};

/// The token of an `Authorization: Bearer ...` header, if present.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares without stopping at the first differing byte, so timing does not leak token prefixes.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// Whether `headers` carry one of `tokens` (always true when `tokens` is empty).
pub fn authorized(tokens: &[String], headers: &HeaderMap) -> Result<(), ApiError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let Some(given) = bearer(headers) else {
        return Err(ApiError::unauthorized("missing bearer token"));
    };
    let mut ok = false;
    for t in tokens {
        ok |= constant_time_eq(t.as_bytes(), given.as_bytes());
    }
    if ok {
        Ok(())
    } else {
        Err(ApiError::unauthorized("invalid bearer token"))
    }
}

/// Middleware for ingestion routes: checks `auth.ingest_tokens`.
pub async fn require_ingest_token(State(st): State<Shared>, req: Request, next: Next) -> Response {
    match authorized(&st.auth.ingest, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(
                event_type = "security",
                path = %req.uri().path(),
                reason = %e.message,
                "ingestion request refused"
            );
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_tokens() {
        let tokens = vec!["s3cret".to_string()];
        let mut h = HeaderMap::new();
        assert!(authorized(&[], &h).is_ok());
        assert!(authorized(&tokens, &h).is_err());
        h.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert!(authorized(&tokens, &h).is_err());
        h.insert(header::AUTHORIZATION, "bearer s3cret".parse().unwrap());
        assert!(authorized(&tokens, &h).is_ok());
        h.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(authorized(&tokens, &h).is_err());
    }
}
