//! Requests with a small XML body (DeleteObjects, CompleteMultipartUpload, bucket and object
//! configuration) are read whole by s3s before any operation runs, so the digests a client
//! declares for them are verified here, in front of s3s.

use artstore_backends::Hasher;
use s3s::{S3Error, s3_error};

use super::checksum::Declared;

/// Largest control body accepted (s3s's own XML limit).
const MAX_CONTROL_BODY: usize = 20 << 20;

const PUT_SUBRESOURCES: &[&str] = &[
    "tagging",
    "acl",
    "policy",
    "cors",
    "lifecycle",
    "versioning",
    "encryption",
    "website",
    "logging",
    "notification",
    "replication",
    "ownershipControls",
    "publicAccessBlock",
    "object-lock",
    "legal-hold",
    "retention",
    "accelerate",
    "requestPayment",
];

fn has_param(req: &http::Request<s3s::Body>, name: &str) -> bool {
    let query = req.uri().query().unwrap_or_default();
    query
        .split('&')
        .any(|kv| kv.split('=').next() == Some(name))
}

fn is_control(req: &http::Request<s3s::Body>) -> bool {
    let has = |name: &str| has_param(req, name);
    match *req.method() {
        http::Method::POST => has("delete") || has("uploadId") || has("restore"),
        http::Method::PUT => !has("partNumber") && PUT_SUBRESOURCES.iter().any(|s| has(s)),
        _ => false,
    }
}

fn declares_digest(h: &http::HeaderMap) -> bool {
    h.contains_key("content-md5")
        || h.keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-") && k != "x-amz-checksum-algorithm")
}

/// Passes the request on with its body buffered, or answers `BadDigest`/`InvalidDigest`.
pub async fn verify_control_body(
    req: http::Request<s3s::Body>,
) -> Result<http::Request<s3s::Body>, S3Error> {
    if !is_control(&req) {
        return Ok(req);
    }
    // On CompleteMultipartUpload the x-amz-checksum-* headers declare the whole object's
    // checksum (checked by the operation), not the XML body's.
    let completes = req.method() == http::Method::POST && has_param(&req, "uploadId");
    let headers: http::HeaderMap = req
        .headers()
        .iter()
        .filter(|(k, _)| !(completes && k.as_str().starts_with("x-amz-checksum-")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !declares_digest(&headers) {
        return Ok(req);
    }
    let declared = Declared::from_headers(&headers)?;
    let (parts, mut body) = req.into_parts();
    let bytes = body
        .store_all_limited(MAX_CONTROL_BODY)
        .await
        .map_err(|e| s3_error!(MalformedXML, "cannot read the request body: {e}"))?;
    let mut h = Hasher::new(&declared.algorithms);
    h.update(&bytes);
    declared.verify(&h.finalize(), None)?;
    Ok(http::Request::from_parts(parts, s3s::Body::from(bytes)))
}
