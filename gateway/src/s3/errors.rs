//! How index and backend failures surface as S3 errors.

use artstore_backends::BackendError;
use artstore_metadata::MetaError;
use s3s::{S3Error, S3ErrorCode, s3_error};

/// Seconds a client is asked to wait (`Retry-After`) when the index is unavailable.
const RETRY_AFTER_SECS: &str = "1";

pub(crate) fn meta(e: MetaError) -> S3Error {
    if e.is_unavailable() {
        tracing::error!(error = %e, "index unavailable");
        return unavailable();
    }
    if e.is_index_full() {
        tracing::error!(error = %e, "index storage full");
        return insufficient_storage(
            "the index database is full: no space left for it; nothing was stored".to_owned(),
        );
    }
    match e {
        q @ MetaError::QuotaExceeded { .. } => quota(&q.to_string()),
        MetaError::NoSuchElement(_) => {
            s3_error!(NoSuchBucket, "The specified bucket does not exist")
        }
        other => {
            tracing::error!(error = %other, "index error");
            s3_error!(InternalError, "index error")
        }
    }
}

/// The index cannot be reached or gave no connection in time: 503 with `Retry-After`.
pub(crate) fn unavailable() -> S3Error {
    let mut e = s3_error!(
        ServiceUnavailable,
        "the index database is unavailable; retry later"
    );
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    e.set_headers(h);
    e
}

/// A disk (an element's data disk or the index's) has no space left: 507, nothing stored.
pub(crate) fn insufficient_storage(msg: String) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom("InsufficientStorage".into()), msg);
    e.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
    e
}

/// A write that would take an element past its `capacity_bytes`: 507, nothing stored.
pub(crate) fn quota(msg: &str) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom("QuotaExceeded".into()), msg.to_owned());
    e.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
    e
}

pub(crate) fn backend(e: BackendError) -> S3Error {
    match e {
        BackendError::Body(msg) => body(&msg),
        BackendError::DiskFull { element, detail } => {
            tracing::error!(%element, %detail, "data disk full");
            insufficient_storage(format!(
                "the data disk of storage element '{element}' is full: no space left; nothing was stored"
            ))
        }
        BackendError::AttrTooLarge { size } => s3_error!(
            MetadataTooLarge,
            "the object's attributes take {size} bytes; attr.json is limited to 4096"
        ),
        e @ (BackendError::Unavailable(_) | BackendError::Config(_)) => {
            backend_unavailable("the storage element", &e)
        }
        e @ (BackendError::Remote { .. } | BackendError::RemoteUnreachable { .. }) => {
            remote_unavailable(&e)
        }
        other => {
            tracing::error!(error = %other, "storage backend error");
            s3_error!(InternalError, "storage backend error")
        }
    }
}

/// The remote service holding the element's bytes failed or did not answer (after the
/// client's retries): 503 naming it, with `Retry-After`; nothing was stored.
pub(crate) fn remote_unavailable(e: &BackendError) -> S3Error {
    tracing::error!(error = %e, "storage element backend failed");
    let mut err = S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        format!("the storage element's backend failed; retry later: {e}"),
    );
    err.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    err.set_headers(h);
    err
}

/// The element's backend cannot be opened on this node: 503 naming the element and why.
pub(crate) fn backend_unavailable(element: &str, e: &BackendError) -> S3Error {
    tracing::error!(%element, error = %e, "storage element backend cannot be opened");
    let mut err = S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        format!("{element}: its backend cannot be used here: {e}"),
    );
    err.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
    err
}

/// A request body that failed mid-stream: a bad payload hash or chunk signature, or a
/// client that went away.
pub(crate) fn body(msg: &str) -> S3Error {
    if msg.contains("Sha256Mismatch") {
        super::body::sha256_mismatch()
    } else if msg.contains("Signature") {
        s3_error!(
            SignatureDoesNotMatch,
            "a chunk signature of the streamed body does not match"
        )
    } else {
        tracing::info!(error = %msg, "request body ended early");
        s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        )
    }
}
