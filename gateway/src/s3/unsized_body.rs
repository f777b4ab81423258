//! PutObject and UploadPart bodies of unknown length (`Transfer-Encoding: chunked`, or an
//! HTTP/2 stream, without `Content-Length`). s3s 0.14 refuses such an `UNSIGNED-PAYLOAD`
//! request with 411 MissingContentLength before any operation runs, although it would
//! stream the body unchanged. Such a request gets a placeholder `Content-Length: 0` for that
//! check (the header was absent when the client signed, so it is not a signed header) and an
//! `UnknownLength` mark, by which the operations know the declared length means nothing.

use http::header::CONTENT_LENGTH;
use http_body::Body as _;
use s3s::S3Request;

/// The request's `Content-Length` is a placeholder: the body's length is unknown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnknownLength;

pub fn allow_unsized_body(mut req: http::Request<s3s::Body>) -> http::Request<s3s::Body> {
    let h = req.headers();
    let unsized_put = req.method() == http::Method::PUT
        && !h.contains_key(CONTENT_LENGTH)
        && !h.contains_key("x-amz-copy-source")
        && h.get("x-amz-content-sha256")
            .is_some_and(|v| v.as_bytes() == b"UNSIGNED-PAYLOAD")
        && req.body().size_hint().exact().is_none();
    if unsized_put {
        req.headers_mut()
            .insert(CONTENT_LENGTH, http::HeaderValue::from_static("0"));
        req.extensions_mut().insert(UnknownLength);
    }
    req
}

/// The body length the client declared, if it declared one.
pub(crate) fn declared_length<T>(req: &S3Request<T>, content_length: Option<i64>) -> Option<i64> {
    if req.extensions.get::<UnknownLength>().is_some() {
        None
    } else {
        content_length
    }
}
