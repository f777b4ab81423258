//! Admin API errors: every failure is JSON `{error, message, request_id}` with a fitting status.

use artstore_metadata::MetaError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Per-request context of an admin request, set by the request middleware.
#[derive(Debug, Default)]
pub struct RequestCtx {
    pub id: String,
    /// The route, e.g. `POST /api/v1/service-accounts`, for the log.
    pub operation: String,
    /// Client address.
    pub source: Option<String>,
    /// The authenticated caller, once known (for the audit log).
    pub actor: std::sync::Mutex<Option<artstore_metadata::Identity>>,
}

tokio::task_local! {
    pub static REQUEST_CTX: std::sync::Arc<RequestCtx>;
}

/// The current request's id, or "" outside a request.
pub fn request_id() -> String {
    REQUEST_CTX.try_with(|c| c.id.clone()).unwrap_or_default()
}

/// The current request's route, or "" outside a request.
pub fn request_operation() -> String {
    REQUEST_CTX
        .try_with(|c| c.operation.clone())
        .unwrap_or_default()
}

/// The current request's client address, if known.
pub fn request_source() -> Option<String> {
    REQUEST_CTX.try_with(|c| c.source.clone()).ok().flatten()
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Machine-readable code, e.g. `not_found`, `invalid_client`.
    pub error: String,
    pub message: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u64>,
    /// The request parameter at fault (`invalid_parameter` errors), in the body as `parameter`.
    pub parameter: Option<String>,
    /// A maintenance job in the way (409 of a second rebuild), in the body as `job_id`.
    pub job_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            message: message.into(),
            retry_after: None,
            parameter: None,
            job_id: None,
        }
    }
    /// 400 `invalid_parameter` naming the parameter at fault.
    pub fn invalid_parameter(parameter: impl Into<String>, msg: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", msg);
        e.parameter = Some(parameter.into());
        e
    }
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", msg)
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", msg)
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", msg)
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", msg)
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        );
        e.retry_after = Some(retry_after);
        e
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // One line per refused request; ERROR only for faults of the server.
        let status = self.status.as_u16();
        let (id, operation) = (request_id(), request_operation());
        if status >= 500 && status != 501 {
            tracing::error!(request_id = %id, operation, status, code = %self.error, "admin request failed");
        } else {
            tracing::info!(request_id = %id, operation, status, code = %self.error, "admin request refused");
        }
        let mut body = json!({
            "error": self.error,
            "message": self.message,
            "request_id": request_id(),
        });
        if let Some(p) = self.parameter {
            body["parameter"] = json!(p);
        }
        if let Some(j) = self.job_id {
            body["job_id"] = json!(j);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        if e.is_unavailable() {
            tracing::error!(error = %e, request_id = %request_id(), "index unavailable");
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the index database is unavailable; retry later",
            );
            err.retry_after = Some(1);
            return err;
        }
        if e.is_index_full() {
            tracing::error!(error = %e, request_id = %request_id(), "index storage full");
            return ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                "the index database is full: no space left for it; nothing was changed",
            );
        }
        match e {
            MetaError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            MetaError::NoSuchElement(_) => ApiError::not_found(e.to_string()),
            MetaError::AlreadyExists(what) => ApiError::conflict(format!("{what} already exists")),
            MetaError::NotEmpty(_) => ApiError::conflict(e.to_string()),
            other => {
                // Details (SQL, paths) stay in the log, not in responses.
                tracing::error!(error = %other, request_id = %request_id(), "index error");
                ApiError::internal("internal error; see the server log")
            }
        }
    }
}

/// Like `axum::Json`, but every rejection is an `ApiError`: malformed JSON and unknown fields
/// (with `#[serde(deny_unknown_fields)]` on `T`) → 400, oversized bodies → 413.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body into `T` with an `ApiError` 400 that says what is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("a JSON request body is required"));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

pub(crate) fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body too large",
        )
    } else {
        ApiError::bad_request(format!("cannot read request body: {r}"))
    }
}
