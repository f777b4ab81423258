//! SigV4 header authentication for admin requests: rebuild the canonical request, sign it with
//! the account's secret and compare in constant time. The payload hash is the real body digest
//! (computed by the `body_digest` middleware), so a signed admin body cannot be swapped.

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Largest admin body accepted for a signed request (bodies are small JSON documents).
pub const MAX_SIGNED_BODY: usize = 1024 * 1024;
/// Allowed clock difference between client and server.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// The SHA-256 of the request body, hex.
#[derive(Debug, Clone)]
pub struct BodyDigest(pub String);

/// Buffers the body of SigV4-signed requests to record its digest; others pass untouched.
pub async fn body_digest(req: Request, next: Next) -> Response {
    let signed = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(ALGORITHM));
    if !signed {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_SIGNED_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            )
            .into_response();
        }
    };
    parts
        .extensions
        .insert(BodyDigest(hex::encode(Sha256::digest(&bytes))));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[derive(Debug)]
pub struct Parsed {
    pub access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

/// Parses `AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(v: &str) -> Result<Parsed, String> {
    let rest = v
        .strip_prefix(ALGORITHM)
        .ok_or("not a SigV4 Authorization header")?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for item in rest.split(',') {
        let item = item.trim();
        if let Some(x) = item.strip_prefix("Credential=") {
            cred = Some(x);
        } else if let Some(x) = item.strip_prefix("SignedHeaders=") {
            signed = Some(x);
        } else if let Some(x) = item.strip_prefix("Signature=") {
            sig = Some(x);
        }
    }
    let (Some(cred), Some(signed), Some(sig)) = (cred, signed, sig) else {
        return Err("malformed SigV4 Authorization header".into());
    };
    let scope: Vec<&str> = cred.split('/').collect();
    let [ak, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err("malformed SigV4 credential scope".into());
    };
    Ok(Parsed {
        access_key: (*ak).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: sig.to_ascii_lowercase(),
    })
}

/// Checks the signature of `parts` against `secret`.
pub fn verify(parts: &Parts, p: &Parsed, secret: &str) -> Result<(), String> {
    let amz_date = header(parts, "x-amz-date").ok_or("x-amz-date header is required")?;
    if !p.signed_headers.iter().any(|h| h == "host") {
        return Err("the host header must be signed".into());
    }
    if !amz_date.starts_with(&p.date) || amz_date.len() != 16 {
        return Err("x-amz-date does not match the credential scope".into());
    }
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(&amz_date, fmt)
        .map_err(|_| "malformed x-amz-date")?
        .assume_utc();
    let skew = (time::OffsetDateTime::now_utc() - at).whole_seconds().abs();
    if skew > MAX_SKEW_SECS {
        return Err("request time too skewed".into());
    }
    let body_hash = parts
        .extensions
        .get::<BodyDigest>()
        .map(|d| d.0.clone())
        .ok_or("request body digest unavailable")?;
    if let Some(declared) = header(parts, "x-amz-content-sha256")
        && declared != body_hash
    {
        return Err("x-amz-content-sha256 does not match the body".into());
    }
    let mut canon_headers = String::new();
    for name in &p.signed_headers {
        let value = if name == "host" {
            header(parts, "host")
                .or_else(|| parts.uri.authority().map(|a| a.to_string()))
                .unwrap_or_default()
        } else {
            let vals: Vec<String> = parts
                .headers
                .get_all(name.as_str())
                .iter()
                .map(|v| collapse(&String::from_utf8_lossy(v.as_bytes())))
                .collect();
            vals.join(",")
        };
        canon_headers.push_str(&format!("{name}:{value}\n"));
    }
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method.as_str(),
        canonical_path(parts.uri.path()),
        canonical_query(parts.uri.query().unwrap_or("")),
        canon_headers,
        p.signed_headers.join(";"),
        body_hash,
    );
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), p.date.as_bytes());
    for part in [p.region.as_bytes(), p.service.as_bytes(), b"aws4_request"] {
        key = hmac(&key, part);
    }
    let expected = hex::encode(hmac(&key, to_sign.as_bytes()));
    if bool::from(expected.as_bytes().ct_eq(p.signature.as_bytes())) {
        Ok(())
    } else {
        Err("the request signature does not match".into())
    }
}

fn header(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

fn collapse(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Each segment decoded and re-encoded once (admin paths are plain ASCII ids and names).
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| encode(&decode(seg)))
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(q: &str) -> String {
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                encode(&decode(&k.replace('+', " "))),
                encode(&decode(&v.replace('+', " "))),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// HMAC-SHA256 (RFC 2104) on the workspace's sha2.
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn query_is_sorted_and_encoded() {
        assert_eq!(canonical_query("b=2&a=x%20y&c"), "a=x%20y&b=2&c=");
    }
}
