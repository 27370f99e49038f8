//! The API's error response: Prometheus' `{"status":"error","errorType":...,"error":...}` body with
//! the status code Prometheus uses for each error type.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ingest::{IngestError, IngestErrorKind};

/// Prometheus' error classes (`errorType` in the JSON body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Malformed request: 400 (413 / 415 for size and media-type problems).
    BadData,
    /// The query failed while evaluating: 422.
    Execution,
    /// The query ran past its timeout: 503.
    Timeout,
    /// A bug or a failed background task: 500.
    Internal,
    /// Missing or wrong bearer token: 401.
    Unauthorized,
    /// No such route: 404.
    NotFound,
}

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::Unauthorized => "unauthorized",
            ErrorType::NotFound => "not_found",
        }
    }
}

/// An error answer from any handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Error class.
    pub kind: ErrorType,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// A 400 `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }

    /// A 422 `execution` error.
    pub fn execution(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            kind: ErrorType::Execution,
            message: message.into(),
        }
    }

    /// A 503 `timeout` error.
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: ErrorType::Timeout,
            message: message.into(),
        }
    }

    /// A 500 `internal` error.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: ErrorType::Internal,
            message: message.into(),
        }
    }

    /// A 401 `unauthorized` error.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: ErrorType::Unauthorized,
            message: message.into(),
        }
    }

    /// A `bad_data` error with a specific status (413 body too large, 415 media type).
    pub fn bad_data_status(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = match e.kind {
            IngestErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            IngestErrorKind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestErrorKind::Syntax | IngestErrorKind::Limit | IngestErrorKind::Decompress => {
                StatusCode::BAD_REQUEST
            }
        };
        ApiError::bad_data_status(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "errorType": self.kind.as_str(),
            "error": self.message,
        });
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp.extensions_mut().insert(self);
        resp
    }
}
