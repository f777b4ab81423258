//! `POST /api/v1/auth/token` (OAuth 2 client credentials), `GET /.well-known/jwks.json` and
//! `POST /api/v1/keys/rotate`.

use artstore_metadata::{AccountStatus, now_ms};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AdminState;
use crate::audit::record;
use crate::auth::Caller;
use crate::error::{ApiError, parse_json};

pub fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(jwks))
        .routes(routes!(rotate))
}

/// Client credentials as JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TokenRequest)]
struct JsonCreds {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    scope: Option<String>,
}

/// Client credentials as an RFC 6749 form; the id and secret may come in HTTP Basic instead.
#[derive(ToSchema)]
#[schema(as = TokenForm)]
#[allow(dead_code)]
struct TokenForm {
    /// Must be `client_credentials`.
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Token requests allowed per minute per client id and per source address.
const TOKEN_ATTEMPTS_PER_CLIENT: i64 = 60;
const TOKEN_ATTEMPTS_PER_SOURCE: i64 = 300;

fn invalid_client(msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_client", msg)
}

/// Client id, secret and grant type from a JSON body, a form body or HTTP Basic.
fn credentials(headers: &HeaderMap, body: &[u8]) -> Result<(String, String), ApiError> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let basic = basic_auth(headers)?;
    let (id, secret, grant) = if ctype.starts_with("application/json") {
        let c: JsonCreds = parse_json(body)?;
        (Some(c.client_id), Some(c.client_secret), c.grant_type)
    } else if ctype.starts_with("application/x-www-form-urlencoded") || body.is_empty() {
        let mut id = None;
        let mut secret = None;
        let mut grant = None;
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("form body is not UTF-8"))?;
        for pair in text.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = form_decode(v);
            match form_decode(k).as_str() {
                "client_id" => id = Some(v),
                "client_secret" => secret = Some(v),
                "grant_type" => grant = Some(v),
                // RFC 6749 §3.1: unrecognised parameters are ignored.
                _ => {}
            }
        }
        if grant.is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type=client_credentials is required",
            ));
        }
        (id, secret, grant)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "send application/json or application/x-www-form-urlencoded",
        ));
    };
    if let Some(g) = grant
        && g != "client_credentials"
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant type '{g}' is not supported; use client_credentials"),
        ));
    }
    match (basic, id, secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send client credentials either in the body or with HTTP Basic, not both",
        )),
        (Some((i, s)), None, None) => Ok((i, s)),
        (None, Some(i), Some(s)) => Ok((i, s)),
        _ => Err(invalid_client("client_id and client_secret are required")),
    }
}

fn basic_auth(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| invalid_client("malformed Authorization header"))?;
    let Some(b64) = v
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .map(|_| &v[6..])
    else {
        return Err(invalid_client("the token endpoint accepts HTTP Basic only"));
    };
    let raw = B64
        .decode(b64.trim())
        .map_err(|_| invalid_client("malformed HTTP Basic credentials"))?;
    let text =
        String::from_utf8(raw).map_err(|_| invalid_client("malformed HTTP Basic credentials"))?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| invalid_client("malformed HTTP Basic credentials"))?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    operation_id = "issueToken",
    tag = "auth",
    summary = "Client credentials → access token",
    description = "OAuth 2 client credentials (RFC 6749 §4.4): JSON `{client_id, client_secret}`, \
        or a form with `grant_type=client_credentials` and the credentials in the form or in HTTP \
        Basic. Answers carry `Cache-Control: no-store`. Limited to 60 attempts per minute per \
        client id and 300 per client address.",
    request_body(content(
        (JsonCreds = "application/json"),
        (TokenForm = "application/x-www-form-urlencoded"),
    )),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "A bearer token", body = crate::openapi::TokenResponse),
        (status = 400, description = "Malformed body, missing or unsupported grant type", body = crate::openapi::ErrorBody),
        (status = 401, description = "`invalid_client`: unknown client or wrong secret", body = crate::openapi::ErrorBody),
        (status = 403, description = "`unauthorized_client`: the account is suspended or expired, or its secret has expired", body = crate::openapi::ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = crate::openapi::ErrorBody),
        (status = 429, description = "Too many attempts for this client or address", body = crate::openapi::ErrorBody),
        (status = 503, description = "`unavailable`: the index database cannot be reached; retry after `Retry-After` seconds", body = crate::openapi::ErrorBody),
    )
)]
async fn token(State(st): State<AdminState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&st, &headers, &body).await {
        Ok(r) => r,
        Err(e) => {
            // 401/403 are audited by `issue` with the client id; the rest (bad requests,
            // rate limiting) here.
            if !matches!(e.status.as_u16(), 401 | 403) {
                let outcome = if e.status == StatusCode::TOO_MANY_REQUESTS {
                    "denied"
                } else {
                    "failure"
                };
                let detail = format!("HTTP {} {}", e.status.as_u16(), e.error);
                record(&st, None, "token.issue", None, outcome, Some(detail)).await;
            }
            let mut resp = e.into_response();
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"artstore\""),
                );
            }
            no_store(&mut resp);
            resp
        }
    }
}

async fn issue(st: &AdminState, headers: &HeaderMap, body: &[u8]) -> Result<Response, ApiError> {
    let (client_id, secret) = credentials(headers, body)?;
    // Against secret guessing: attempts per client id and per source address.
    let source = crate::error::request_source().unwrap_or_default();
    st.limiter
        .check(&format!("token-source:{source}"), TOKEN_ATTEMPTS_PER_SOURCE)
        .await
        .map_err(ApiError::too_many_requests)?;
    st.limiter
        .check(
            &format!("token-client:{client_id}"),
            TOKEN_ATTEMPTS_PER_CLIENT,
        )
        .await
        .map_err(ApiError::too_many_requests)?;
    // From the index, not the cache: issuing a credential follows a suspension or a rotated
    // secret at once, wherever it was made (tokens are issued rarely).
    let acc = st.store.account_by_client_id(&client_id).await?;
    // Same answer for an unknown id and a wrong secret, so ids cannot be probed.
    let Some(acc) = acc.filter(|a| {
        bool::from(a.client_secret.as_bytes().ct_eq(secret.as_bytes()))
            && a.status != AccountStatus::Deleted
    }) else {
        record(
            st,
            None,
            "token.issue",
            Some(&client_id),
            "denied",
            Some("invalid client credentials".into()),
        )
        .await;
        return Err(invalid_client("invalid client credentials"));
    };
    let inactive = if acc.status != AccountStatus::Active {
        Some(format!(
            "service account '{}' is {}",
            acc.name,
            acc.status.as_str()
        ))
    } else if acc.secret_expires_ms.is_some_and(|e| e <= now_ms()) {
        Some(format!(
            "the secret of service account '{}' has expired",
            acc.name
        ))
    } else {
        None
    };
    if let Some(msg) = inactive {
        record(
            st,
            Some(&acc.identity()),
            "token.issue",
            Some(&client_id),
            "denied",
            Some(msg.clone()),
        )
        .await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            msg,
        ));
    }
    let issued = st.keys.issue(&acc).await.map_err(|e| {
        tracing::error!(error = %e, "cannot sign token");
        ApiError::internal("cannot sign token")
    })?;
    record(
        st,
        Some(&acc.identity()),
        "token.issue",
        Some(&client_id),
        "success",
        None,
    )
    .await;
    let mut resp = Json(json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at,
    }))
    .into_response();
    no_store(&mut resp);
    Ok(resp)
}

fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    operation_id = "getJwks",
    tag = "auth",
    summary = "Public token signing keys (JWK set)",
    responses(
        (status = 200, description = "Every key that verifies tokens, newest last", body = crate::openapi::Jwks),
        (status = 500, description = "The keys cannot be loaded", body = crate::openapi::ErrorBody),
    )
)]
async fn jwks(State(st): State<AdminState>) -> Result<Response, ApiError> {
    let set = st.keys.jwks().await.map_err(|e| {
        tracing::error!(error = %e, "cannot load signing keys");
        ApiError::internal("cannot load signing keys")
    })?;
    let mut resp = Json(set).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(resp)
}

#[utoipa::path(
    post,
    path = "/api/v1/keys/rotate",
    operation_id = "rotateSigningKey",
    tag = "auth",
    summary = "Add a new signing key",
    description = "New tokens are signed with the new key; tokens signed by older keys stay valid \
        until they expire. Admins only.",
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 201, description = "The new key", body = crate::openapi::RotatedKey),
        (status = 500, description = "Key generation failed", body = crate::openapi::ErrorBody),
    )
)]
async fn rotate(State(st): State<AdminState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let kid = st.keys.rotate().await.map_err(|e| {
        tracing::error!(error = %e, "key rotation failed");
        ApiError::internal("key rotation failed")
    })?;
    record(
        &st,
        Some(caller.identity()),
        "keys.rotate",
        Some(&kid),
        "success",
        None,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"kid": kid, "alg": "RS256"})),
    )
        .into_response())
}
