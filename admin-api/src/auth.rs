//! Who is calling the admin API: `Authorization: Bearer <JWT>` or a SigV4-signed request, from
//! an account that is active right now (looked up through the node's cache, which every account
//! change invalidates: suspension bites on every node within a second).

use artstore_metadata::{Account, AccountStatus, Identity, Role, now_ms};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::AdminState;
use crate::error::ApiError;
use crate::sigv4;

/// The authenticated caller of an admin request.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl Caller {
    pub fn identity(&self) -> &Identity {
        &self.0
    }

    /// Admins only.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0.role {
            Some(Role::Admin) => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "'{}' is not an admin; this operation needs the admin role",
                self.0.name
            ))),
        }
    }

    /// Admins and auditors (the read endpoints).
    pub fn require_read(&self) -> Result<(), ApiError> {
        match self.0.role {
            Some(Role::Admin | Role::Auditor) => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "'{}' may not read this; it needs the admin or auditor role",
                self.0.name
            ))),
        }
    }
}

impl FromRequestParts<AdminState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AdminState) -> Result<Self, ApiError> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let caller = authenticate(parts, st).await?;
        let _ = crate::error::REQUEST_CTX.try_with(|c| {
            if let Ok(mut a) = c.actor.lock() {
                *a = Some(caller.0.clone());
            }
        });
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

async fn authenticate(parts: &Parts, st: &AdminState) -> Result<Caller, ApiError> {
    let Some(auth) = parts.headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "authentication required: send a bearer token or a SigV4-signed request",
        ));
    };
    let auth = auth
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    if let Some(token) = strip_prefix_ci(auth, "Bearer ") {
        let claims = st.keys.verify(token.trim()).await.map_err(|e| {
            tracing::info!(error = %e, "admin bearer token refused");
            ApiError::unauthorized(format!("invalid bearer token: {e}"))
        })?;
        let acc = st.store.cached().account_by_id(&claims.sub).await?;
        let acc = usable(acc)?;
        limit(st, &acc).await?;
        return Ok(Caller(acc.identity()));
    }
    if auth.starts_with(sigv4::ALGORITHM) {
        let parsed = sigv4::parse_authorization(auth).map_err(ApiError::unauthorized)?;
        let acc = st
            .store
            .cached()
            .account_by_client_id(&parsed.access_key)
            .await?;
        let acc = usable(acc)?;
        sigv4::verify(parts, &parsed, &acc.client_secret).map_err(ApiError::unauthorized)?;
        limit(st, &acc).await?;
        return Ok(Caller(acc.identity()));
    }
    Err(ApiError::unauthorized(
        "unsupported Authorization scheme; use Bearer or AWS4-HMAC-SHA256",
    ))
}

/// Counts the request against the account's `rate_limit`: 429 with `Retry-After` when exhausted.
async fn limit(st: &AdminState, acc: &Account) -> Result<(), ApiError> {
    match acc.rate_limit {
        Some(per_min) => st
            .limiter
            .check(&acc.id, per_min)
            .await
            .map_err(ApiError::too_many_requests),
        None => Ok(()),
    }
}

/// The account if it may act now; the same words whatever is wrong, so nothing leaks.
fn usable(acc: Option<Account>) -> Result<Account, ApiError> {
    let Some(acc) = acc else {
        return Err(ApiError::unauthorized("unknown account"));
    };
    if acc.status != AccountStatus::Active {
        return Err(ApiError::unauthorized(format!(
            "service account '{}' is {}",
            acc.name,
            acc.status.as_str()
        )));
    }
    if acc.secret_expires_ms.is_some_and(|exp| exp <= now_ms()) {
        return Err(ApiError::unauthorized(format!(
            "the secret of service account '{}' has expired",
            acc.name
        )));
    }
    Ok(acc)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}
