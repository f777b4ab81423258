//! SDK errors as `BackendError`s naming the endpoint and bucket.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::BackendError;

/// The endpoint and bucket every error names.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub endpoint: String,
    pub bucket: String,
}

impl Target {
    /// `what` is the operation and key, e.g. `GetObject p/2026/…`. A missing key (`NoSuchKey`,
    /// or the bodiless 404 of a HEAD) is `NotFound`; no answer (connection refused or reset,
    /// timeout, after the retries) is `RemoteUnreachable`; any other answer is `Remote` with its code.
    pub(crate) fn error<E>(&self, what: &str, err: SdkError<E, HttpResponse>) -> BackendError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &err {
            SdkError::TimeoutError(_) => return self.unreachable(format!("{what}: timed out")),
            SdkError::DispatchFailure(_) => {
                return self.unreachable(format!("{what}: {}", DisplayErrorContext(&err)));
            }
            SdkError::ServiceError(s) => {
                let e = s.err();
                let code = e.code().unwrap_or("error");
                if matches!(code, "NoSuchKey" | "NotFound") {
                    return BackendError::NotFound(format!(
                        "{}/{}: {what}",
                        self.endpoint, self.bucket
                    ));
                }
                let message = match e.message() {
                    Some(m) => m.to_owned(),
                    None => format!(
                        "HTTP {}: {}",
                        s.raw().status().as_u16(),
                        DisplayErrorContext(e)
                    ),
                };
                return self.remote(format!("{what}: {code}: {message}"));
            }
            _ => {}
        }
        self.remote(format!("{what}: {}", DisplayErrorContext(&err)))
    }

    pub(crate) fn remote(&self, message: String) -> BackendError {
        BackendError::Remote {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            message,
        }
    }

    pub(crate) fn unreachable(&self, message: String) -> BackendError {
        BackendError::RemoteUnreachable {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            message,
        }
    }
}
