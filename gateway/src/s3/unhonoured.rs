//! Request fields ArtStore does not honour. A write that carries one is refused with
//! `501 NotImplemented`, naming the field, before anything is read or stored: answering 200
//! would claim e.g. an object lock or an encryption that does not exist (issue 8).
//! One table, checked for every operation by the access hook.

use http::{HeaderMap, Method, Uri};
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

/// A header ArtStore ignores, and the values that mean what ArtStore does anyway.
struct Unhonoured {
    header: &'static str,
    /// Values (case-insensitive) that ask for nothing beyond ArtStore's behaviour.
    accepted: &'static [&'static str],
    reason: &'static str,
}

const fn refuse(header: &'static str, reason: &'static str) -> Unhonoured {
    Unhonoured {
        header,
        accepted: &[],
        reason,
    }
}

const OBJECT_LOCK: &str = "object lock (retention and legal holds) is not supported";
// Data is stored as sent: claiming SSE (even AES256) would misstate how it is kept.
const SSE: &str = "server-side encryption is not supported; data is stored as sent";
const SSE_C: &str = "server-side encryption with customer keys is not supported";
const GRANTS: &str = "access control lists are not supported: access is governed by service accounts, grants and bucket policies";

const TABLE: &[Unhonoured] = &[
    refuse("x-amz-object-lock-mode", OBJECT_LOCK),
    refuse("x-amz-object-lock-retain-until-date", OBJECT_LOCK),
    refuse("x-amz-object-lock-legal-hold", OBJECT_LOCK),
    Unhonoured {
        header: "x-amz-bucket-object-lock-enabled",
        accepted: &["false"],
        reason: OBJECT_LOCK,
    },
    refuse("x-amz-server-side-encryption", SSE),
    refuse("x-amz-server-side-encryption-aws-kms-key-id", SSE),
    refuse("x-amz-server-side-encryption-context", SSE),
    Unhonoured {
        header: "x-amz-server-side-encryption-bucket-key-enabled",
        accepted: &["false"],
        reason: SSE,
    },
    refuse("x-amz-server-side-encryption-customer-algorithm", SSE_C),
    refuse("x-amz-server-side-encryption-customer-key", SSE_C),
    refuse("x-amz-server-side-encryption-customer-key-md5", SSE_C),
    refuse(
        "x-amz-copy-source-server-side-encryption-customer-algorithm",
        SSE_C,
    ),
    refuse(
        "x-amz-copy-source-server-side-encryption-customer-key",
        SSE_C,
    ),
    refuse(
        "x-amz-copy-source-server-side-encryption-customer-key-md5",
        SSE_C,
    ),
    Unhonoured {
        header: "x-amz-storage-class",
        accepted: &["STANDARD"],
        reason: "every object is stored in the STANDARD class",
    },
    refuse(
        "x-amz-website-redirect-location",
        "website redirects are not supported",
    ),
    refuse("x-amz-grant-full-control", GRANTS),
    refuse("x-amz-grant-read", GRANTS),
    refuse("x-amz-grant-read-acp", GRANTS),
    refuse("x-amz-grant-write", GRANTS),
    refuse("x-amz-grant-write-acp", GRANTS),
    Unhonoured {
        header: "x-amz-object-ownership",
        accepted: &["BucketOwnerEnforced"],
        reason: "objects are always owned as with BucketOwnerEnforced (ACLs disabled)",
    },
    refuse("x-amz-mfa", "MFA delete is not supported"),
    refuse(
        "x-amz-write-offset-bytes",
        "appending to objects is not supported",
    ),
];

fn not_implemented(msg: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::NotImplemented, msg)
}

/// Buckets are unversioned: no version but `null` exists.
pub(crate) fn no_such_version() -> S3Error {
    s3_error!(
        NoSuchVersion,
        "The specified version does not exist (buckets are unversioned)"
    )
}

/// Refuses a request that asks for something ArtStore would silently not do.
pub fn check_honoured(op: &str, method: &Method, uri: &Uri, headers: &HeaderMap) -> S3Result<()> {
    // Reads ask nothing of the stored state; every other method may change it.
    if method != Method::GET && method != Method::HEAD {
        for u in TABLE {
            let Some(v) = headers.get(u.header) else {
                continue;
            };
            let value = String::from_utf8_lossy(v.as_bytes());
            if u.accepted
                .iter()
                .any(|a| a.eq_ignore_ascii_case(value.trim()))
            {
                continue;
            }
            tracing::info!(
                op,
                header = u.header,
                "refused an unhonoured request header"
            );
            return Err(not_implemented(format!(
                "{op}: header {}: {} is not implemented: {}",
                u.header, value, u.reason
            )));
        }
    }
    let query = uri.query().unwrap_or_default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "versionId" {
            if v.is_empty() {
                return Err(s3_error!(
                    InvalidArgument,
                    "Version id cannot be the empty string"
                ));
            }
            if v != "null" {
                return Err(no_such_version());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, uri: &str, headers: &[(&str, &str)]) -> S3Result<()> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        check_honoured("PutObject", &method, &uri.parse().unwrap(), &h)
    }

    #[test]
    fn refuses_each_unhonoured_value_and_accepts_the_harmless_ones() {
        let e = check(Method::PUT, "/b/k", &[("x-amz-storage-class", "GLACIER")]).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::NotImplemented);
        assert!(e.message().unwrap().contains("x-amz-storage-class"));
        check(Method::PUT, "/b/k", &[("x-amz-storage-class", "standard")]).unwrap();
        check(
            Method::PUT,
            "/b",
            &[("x-amz-bucket-object-lock-enabled", "False")],
        )
        .unwrap();
        // Reads are not refused for write-only headers.
        check(Method::GET, "/b/k", &[("x-amz-storage-class", "GLACIER")]).unwrap();
    }

    #[test]
    fn version_ids_other_than_null_do_not_exist() {
        check(Method::GET, "/b/k?versionId=null", &[]).unwrap();
        let e = check(Method::GET, "/b/k?versionId=3HL4kqtJ", &[]).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::NoSuchVersion);
        let e = check(Method::DELETE, "/b/k?versionId=", &[]).unwrap_err();
        assert_eq!(*e.code(), S3ErrorCode::InvalidArgument);
    }
}
