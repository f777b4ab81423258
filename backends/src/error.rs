//! Errors of the storage backends.

use std::path::Path;

/// Everything a backend operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Filesystem or other I/O failure; the message names the path involved.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The request body stream failed while it was being stored.
    #[error("request body error: {0}")]
    Body(String),
    /// The serialised attr.json would exceed `MAX_ATTR_BYTES`.
    #[error("attr.json is {size} bytes, more than the 4096 allowed")]
    AttrTooLarge { size: usize },
    /// An attr.json that cannot be parsed or has an unknown schema.
    #[error("invalid attr.json: {0}")]
    InvalidAttr(String),
    /// A file that should exist does not.
    #[error("not found: {0}")]
    NotFound(String),
    /// A data file whose size is not the one its sidecar and index record: it was truncated
    /// or appended to behind the store's back, so its bytes are not the object's.
    #[error("{path}: the data file is {actual} bytes, the object has {expected}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// The filesystem holding a storage element's files has no space left (or its disk quota
    /// is used up); whatever the failed write began has been removed.
    #[error("the data disk of storage element '{element}' is full: {detail}")]
    DiskFull { element: String, detail: String },
    /// A backend configuration that is not valid; the message names the field at fault.
    #[error("{0}")]
    Config(String),
    /// A configuration of a backend kind this build cannot open.
    #[error("backend kind {0} is not available")]
    Unavailable(String),
    /// A remote S3 service answered with an error (wrong credentials or bucket, permissions,
    /// a 5xx that outlasted the retries); `message` names the operation and the remote's code.
    #[error("remote S3 backend {endpoint} (bucket {bucket}): {message}")]
    Remote {
        endpoint: String,
        bucket: String,
        message: String,
    },
    /// A remote S3 service could not be reached or did not answer within the configured
    /// timeouts, after the retries.
    #[error("remote S3 backend {endpoint} (bucket {bucket}) unreachable: {message}")]
    RemoteUnreachable {
        endpoint: String,
        bucket: String,
        message: String,
    },
}

impl BackendError {
    /// Names the element whose disk it is when the error says the disk is full.
    pub(crate) fn in_element(self, element: &str) -> Self {
        match self {
            BackendError::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) =>
            {
                BackendError::DiskFull {
                    element: element.to_owned(),
                    detail: e.to_string(),
                }
            }
            other => other,
        }
    }

    /// Wraps an I/O error with the path it concerns, keeping its kind so callers can still
    /// match on `ErrorKind`; `NotFound` becomes `BackendError::NotFound`.
    pub(crate) fn io(path: &Path, err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::NotFound {
            return BackendError::NotFound(path.display().to_string());
        }
        BackendError::Io(std::io::Error::new(
            err.kind(),
            format!("{}: {err}", path.display()),
        ))
    }
}
