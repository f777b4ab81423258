//! What a SigV4 request may carry beyond its signature, checked on the raw request before s3s
//! sees it, for every operation: the credential scope must name this endpoint, presigned URLs
//! live at most seven days, and headers that change what a request means must be signed.

use http::HeaderMap;
use percent_encoding::percent_decode_str;
use s3s::{S3Error, S3ErrorCode, s3_error};

/// AWS's upper bound for `X-Amz-Expires`: seven days.
const MAX_PRESIGNED_SECS: i64 = 604_800;

/// Headers that become stored attributes; a presigned URL must have signed them.
const STORED_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// `x-amz-*` headers a presigned request may carry unsigned: the payload hash is verified
/// against the body anyway, and the SDKs never sign the other two when presigning.
const PRESIGNED_UNSIGNED_OK: &[&str] = &[
    "x-amz-content-sha256",
    "x-amz-user-agent",
    "x-amz-checksum-mode",
];

/// Refuses what the signature does not cover; requests that are not SigV4 pass unchanged
/// (anonymous and bearer requests are s3s's and the bearer layer's business).
pub fn check(uri: &http::Uri, headers: &HeaderMap, region: &str) -> Result<(), S3Error> {
    let query = query_params(uri.query().unwrap_or_default());
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v.as_str())
    };
    if param("X-Amz-Signature").is_some() {
        return check_presigned(&param, headers, region);
    }
    let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("AWS4-HMAC-SHA256"))
    else {
        return Ok(());
    };
    let field = |name: &str| {
        auth.split(',')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
    };
    if let Some(credential) = field("Credential") {
        scope_matches(credential, region).map_err(|msg| {
            error(
                S3ErrorCode::AuthorizationHeaderMalformed,
                http::StatusCode::BAD_REQUEST,
                format!("The authorization header is malformed; {msg}"),
            )
        })?;
    }
    let signed: Vec<&str> = field("SignedHeaders")
        .unwrap_or_default()
        .split(';')
        .collect();
    for name in headers.keys().map(http::HeaderName::as_str) {
        if name.starts_with("x-amz-") && !signed.contains(&name) {
            return Err(not_signed(name));
        }
    }
    Ok(())
}

fn check_presigned<'a>(
    param: &impl Fn(&str) -> Option<&'a str>,
    headers: &HeaderMap,
    region: &str,
) -> Result<(), S3Error> {
    let query_error = |msg: String| {
        error(
            S3ErrorCode::AuthorizationQueryParametersError,
            http::StatusCode::BAD_REQUEST,
            msg,
        )
    };
    if param("X-Amz-Algorithm") != Some("AWS4-HMAC-SHA256") {
        // SigV4a and unknown algorithms: s3s answers them.
        return Ok(());
    }
    let credential = param("X-Amz-Credential").unwrap_or_default();
    scope_matches(credential, region).map_err(|msg| {
        query_error(format!(
            "Error parsing the X-Amz-Credential parameter; {msg}"
        ))
    })?;
    let expires = param("X-Amz-Expires")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .ok_or_else(|| query_error("X-Amz-Expires should be a number of seconds".to_owned()))?;
    if expires > MAX_PRESIGNED_SECS {
        return Err(query_error(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_SECS}"
        )));
    }
    let signed_at = param("X-Amz-Date")
        .and_then(parse_amz_date)
        .ok_or_else(|| query_error("X-Amz-Date must be in the ISO8601 Long Format".to_owned()))?;
    if time::OffsetDateTime::now_utc() > signed_at + time::Duration::seconds(expires) {
        return Err(s3_error!(AccessDenied, "Request has expired"));
    }
    let signed: Vec<&str> = param("X-Amz-SignedHeaders")
        .unwrap_or_default()
        .split(';')
        .collect();
    for name in headers.keys().map(http::HeaderName::as_str) {
        let must_sign = (name.starts_with("x-amz-") && !PRESIGNED_UNSIGNED_OK.contains(&name))
            || STORED_HEADERS.contains(&name);
        if must_sign && !signed.contains(&name) {
            return Err(not_signed(name));
        }
    }
    Ok(())
}

fn not_signed(name: &str) -> S3Error {
    tracing::debug!(header = name, "unsigned header in a signed request");
    s3_error!(
        AccessDenied,
        "There were headers present in the request which were not signed: {name}"
    )
}

/// `AK/YYYYMMDD/region/service/aws4_request`: the region must be ours and the service `s3`.
fn scope_matches(credential: &str, region: &str) -> Result<(), String> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [_, _, got_region, service, "aws4_request"] = parts.as_slice() else {
        return Err(format!("the credential '{credential}' is not well-formed"));
    };
    if *got_region != region {
        return Err(format!(
            "the region '{got_region}' is wrong; expecting '{region}'"
        ));
    }
    if *service != "s3" {
        return Err(format!("the service '{service}' is wrong; expecting 's3'"));
    }
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(s: &str) -> Option<time::OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

fn error(code: S3ErrorCode, status: http::StatusCode, msg: String) -> S3Error {
    let mut e = S3Error::with_message(code, msg);
    e.set_status_code(status);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_and_scopes() {
        let t = parse_amz_date("20261201T094703Z").unwrap();
        assert_eq!((t.year(), t.hour(), t.second()), (2026, 9, 3));
        assert!(parse_amz_date("2026-12-01T09:47:03Z").is_none());
        assert!(scope_matches("AK/20261201/us-east-1/s3/aws4_request", "us-east-1").is_ok());
        assert!(scope_matches("AK/20261201/eu-west-1/s3/aws4_request", "us-east-1").is_err());
        assert!(scope_matches("AK/20261201/us-east-1/sts/aws4_request", "us-east-1").is_err());
        assert!(scope_matches("AK/us-east-1/s3", "us-east-1").is_err());
    }
}
