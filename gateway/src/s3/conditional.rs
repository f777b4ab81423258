//! Conditional requests (RFC 9110 §13 as S3 applies them).

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Result, s3_error};

/// The validators a request may carry.
#[derive(Default)]
pub(crate) struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(t) => t.value().trim_matches('"') == etag,
    }
}

fn secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

pub(crate) enum Outcome {
    Proceed,
    /// 304 for reads; copy sources and writes turn this into 412.
    NotModified,
}

/// Evaluates the validators against an existing object (etag bare, mtime in ms).
/// If-Match failing or If-Unmodified-Since failing → 412; If-None-Match or
/// If-Modified-Since failing → NotModified.
pub(crate) fn evaluate(c: &Conditions<'_>, etag: &str, modified_ms: i64) -> S3Result<Outcome> {
    let modified = modified_ms.div_euclid(1000);
    if let Some(m) = c.if_match {
        if !matches(m, etag) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    } else if let Some(t) = c.if_unmodified_since
        && modified > secs(t)
    {
        return Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ));
    }
    if let Some(n) = c.if_none_match {
        if matches(n, etag) {
            return Ok(Outcome::NotModified);
        }
    } else if let Some(t) = c.if_modified_since
        && modified <= secs(t)
    {
        return Ok(Outcome::NotModified);
    }
    Ok(Outcome::Proceed)
}

/// For writes (PutObject, CompleteMultipartUpload): `If-None-Match: *` means "only if
/// absent", `If-Match` means "only if the current ETag matches".
pub(crate) fn check_write(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    current_etag: Option<&str>,
) -> S3Result<()> {
    let failed = || {
        s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )
    };
    if let Some(n) = if_none_match
        && let Some(cur) = current_etag
        && matches(n, cur)
    {
        return Err(failed());
    }
    if let Some(m) = if_match {
        match current_etag {
            None => return Err(s3_error!(NoSuchKey, "The specified key does not exist.")),
            Some(cur) if !matches(m, cur) => return Err(failed()),
            Some(_) => {}
        }
    }
    Ok(())
}

/// `If-Match` / `If-None-Match` read from the raw headers, for operations whose s3s input
/// does not model them (CopyObject's destination). A malformed value is a client error.
pub(crate) fn write_conditions(
    headers: &http::HeaderMap,
) -> S3Result<(Option<ETagCondition>, Option<ETagCondition>)> {
    let parse = |name: http::header::HeaderName| -> S3Result<Option<ETagCondition>> {
        headers
            .get(&name)
            .map(|v| {
                ETagCondition::parse_http_header(v.as_bytes())
                    .map_err(|_| s3_error!(InvalidArgument, "invalid {name} header"))
            })
            .transpose()
    };
    Ok((
        parse(http::header::IF_MATCH)?,
        parse(http::header::IF_NONE_MATCH)?,
    ))
}
